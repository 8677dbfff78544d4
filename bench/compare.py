#!/usr/bin/python3
"""Side by side: bench_mlp (this library, with its GEMM floor) and torch_bench.py (PyTorch), run
in alternating rounds in one session so that both see the same machine, then a markdown table of
medians over rounds: times, PyTorch / ours, and the fraction of the GEMM floor each reaches.
Ours and the floor come from bench_mlp's pair/ benchmarks, which alternate the two in blocks a
fraction of a second apart; floor / ours is the median of those paired ratios. The GEMM floor is
OpenBLAS on the whole products with its own threads; the split floor runs them on the batch's
row blocks, one thread each, OpenBLAS single-threaded; "best floor" is the faster of the two.

usage: bench/compare.py BENCH_BINARY [--rounds 3] [--repetitions 5] [--filter cd_step]
                        [--chain-threads 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {0: "(2, 128, 256)", 1: "(64, 256, 128)", 2: "(784, 512, 128)"}
ORDER = ["forward", "grad_theta", "grad_x", "langevin20", "cd_step"]


def run_ours(binary, flt, chain_threads):
    """pair/ benchmarks (each one run of several block pairs), the BLAS peak and per-op overhead."""
    cmd = [binary, f"--chain_threads={chain_threads}", "--benchmark_format=json", "--benchmark_min_time=0.2",
           f"--benchmark_filter=^(pair/.*{flt}.*|peak/.*|ebl/f32/per_op.*)$"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    res = {}
    for b in out["benchmarks"]:
        name = b["run_name"].split("/iterations:")[0]
        if name.startswith("pair/"):
            res[name] = {k: b[k] for k in ("ours_s", "floor_s", "split_floor_s", "floor_over_ours",
                                           "best_floor_over_ours", "page_faults_per_step",
                                           "gemm_flops_per_run")}
            continue
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        t = b["real_time"] * scale
        if "/per_op/" in name:
            t /= 100
        res[name] = {"time": t, "gemm_flops": b.get("gemm_flops", 0.0)}
    return res


def run_torch(reps, flt):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), f"--repetitions={reps}", f"--filter={flt}"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=5, help="PyTorch's timed blocks per round")
    ap.add_argument("--filter", default="")
    ap.add_argument("--chain-threads", type=int, default=2,
                    help="threads for our Langevin chains and CD theta-pass (LangevinOptions::threads)")
    args = ap.parse_args()
    ours, torch_t, settings = {}, {}, {}
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}: ours", file=sys.stderr)
        for k, v in run_ours(args.binary, args.filter, args.chain_threads).items():
            ours.setdefault(k, []).append(v)
        print(f"round {r + 1}/{args.rounds}: PyTorch", file=sys.stderr)
        t = run_torch(args.repetitions, args.filter)
        settings = t.pop("_settings")
        for k, v in t.items():
            torch_t.setdefault(k, []).append(v)
    med = lambda xs: statistics.median(xs)
    peak = {k.split("/")[1]: med([r["gemm_flops"] for r in v]) for k, v in ours.items() if k.startswith("peak/")}
    print(f"PyTorch {settings.get('torch')} with {settings.get('intra_op_threads')} intra-op thread(s); "
          f"ours: chains and CD step on {args.chain_threads} thread(s) (row blocks, BLAS single-threaded inside), "
          f"forward/grad workloads single-threaded around OpenBLAS's pool "
          f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}); "
          f"medians of {args.rounds} alternating rounds; ours and the GEMM floor paired in blocks "
          f"(bench_mlp pair/), floor / ours the median of the paired ratios.")
    for dt, f in sorted(peak.items()):
        print(f"BLAS peak ({dt}, 1024^3 GEMM): {f / 1e9:.0f} GFLOP/s")
    print()
    print("| config (in, hidden, batch) | dtype | workload | ours | PyTorch | PyTorch / ours | GEMM floor | floor / ours | "
          "floor / PyTorch | split floor | best floor / ours | ours: GEMM GFLOP/s (of peak) |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fmt_t = lambda s: f"{s * 1e3:.3f} ms" if s >= 1e-3 else f"{s * 1e6:.1f} µs"
    faults = []
    for cfg in range(3):
        for dt in ("f32", "f64"):
            for w in ORDER:
                key = f"{dt}/{w}/config:{cfg}"
                if f"pair/{key}" not in ours:
                    continue
                runs = ours[f"pair/{key}"]
                o = med([r["ours_s"] for r in runs])
                fl = med([r["floor_s"] for r in runs])
                ratio = med([r["floor_over_ours"] for r in runs])
                split = med([r["split_floor_s"] for r in runs])
                best = med([r["best_floor_over_ours"] for r in runs])
                gflops = runs[0]["gemm_flops_per_run"] / o / 1e9  # the products' flops per second of ours
                faults += [r["page_faults_per_step"] for r in runs]
                tt = med(torch_t[f"torch/{key}"]) if f"torch/{key}" in torch_t else float("nan")
                print(f"| {CONFIGS[cfg]} | {dt} | {w} | {fmt_t(o)} | {fmt_t(tt)} | {tt / o:.2f} | {fmt_t(fl)} | "
                      f"{100 * ratio:.0f}% | {100 * fl / tt:.0f}% | {fmt_t(split)} | {100 * best:.0f}% | "
                      f"{gflops:.0f} ({100 * gflops * 1e9 / peak.get(dt, float('nan')):.0f}%) |")
    if faults:
        print(f"\nPage faults per step of ours in the steady state (every workload, every round): max {max(faults):g}.")
    if "ebl/f32/per_op/config:0" in ours:
        o = med([r["time"] for r in ours["ebl/f32/per_op/config:0"]])
        tt = med(torch_t.get("torch/f32/per_op/config:0", [float("nan")]))
        print(f"\nPer elementwise op on 16 floats, forward + backward: ours {o * 1e9:.0f} ns, PyTorch {tt * 1e9:.0f} ns "
              f"(PyTorch / ours {tt / o:.1f}).")


if __name__ == "__main__":
    main()
