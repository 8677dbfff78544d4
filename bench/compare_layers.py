#!/usr/bin/python3
"""Side by side: bench_layers (this library's CNN and R-GCN energies, the CNN paired with its GEMM
floor) and torch_layers.py (PyTorch), in alternating rounds in one session, then a markdown table
of medians over rounds. PyTorch's time is its best setting here: the faster of its default CPU
path (mkldnn convolutions) and its native path, and of 1 and 2 intra-op threads.

usage: bench/compare_layers.py BENCH_LAYERS_BINARY [--rounds 3] [--chain-threads 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CNN = ["forward", "grad_x", "langevin20", "train_step"]
RGCN = ["langevin_step", "train_step"]


def run_ours(binary, chain_threads):
    cmd = [binary, f"--chain_threads={chain_threads}", "--benchmark_format=json", "--benchmark_min_time=0.5"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    res = {}
    for b in out["benchmarks"]:
        name = b["run_name"].split("/iterations:")[0]
        if name.startswith("pair/"):
            res[name] = {k: b[k] for k in ("ours_s", "floor_s", "floor_over_ours", "gemm_flops_per_run",
                                           "page_faults_per_step")}
        else:
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            res[name] = {"ours_s": b["real_time"] * scale, "page_faults_per_step": b["page_faults_per_step"]}
    return res


def run_torch(threads):
    cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_layers.py"), f"--threads={threads}"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--chain-threads", type=int, default=2)
    args = ap.parse_args()
    ours, torch_t = {}, {}
    settings = None
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}: ours", file=sys.stderr)
        for k, v in run_ours(args.binary, args.chain_threads).items():
            ours.setdefault(k, []).append(v)
        for threads in (1, 2):
            print(f"round {r + 1}/{args.rounds}: PyTorch, {threads} thread(s)", file=sys.stderr)
            t = run_torch(threads)
            settings = t.pop("_settings")
            for k, v in t.items():
                torch_t.setdefault(f"{k}@{threads}", []).append(v)
    med = statistics.median
    fmt_t = lambda s: f"{s * 1e3:.2f} ms"

    def best_torch(kind, w):
        cands = {f"{path} {th}T": med(torch_t[f"{path}/{kind}/{w}@{th}"])
                 for path in ("torch", "torch-nomkldnn") for th in (1, 2) if f"{path}/{kind}/{w}@{th}" in torch_t}
        name = min(cands, key=cands.get)
        return cands[name], name.replace("torch-nomkldnn", "native").replace("torch", "mkldnn")

    print(f"PyTorch {settings['torch']}; medians of {args.rounds} alternating rounds; ours' chains on "
          f"{args.chain_threads} thread(s); the CNN's GEMM floor paired with ours in blocks (floor / ours "
          f"the median of the paired ratios).\n")
    print("| workload | BLAS threads | ours | GEMM floor | floor / ours | ours: GEMM GFLOP/s | PyTorch (best setting) | "
          "PyTorch / ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    faults = []
    for w in CNN:
        tt, where = best_torch("cnn", w)
        for bt in (1, 2):
            runs = ours.get(f"pair/cnn/{w}/{bt}")
            if not runs:
                continue
            o = med([x["ours_s"] for x in runs])
            fl = med([x["floor_s"] for x in runs])
            ratio = med([x["floor_over_ours"] for x in runs])
            faults += [x["page_faults_per_step"] for x in runs]
            gf = runs[0]["gemm_flops_per_run"] / o / 1e9
            print(f"| cnn/{w} | {bt} | {fmt_t(o)} | {fmt_t(fl)} | {100 * ratio:.0f}% | {gf:.0f} | {fmt_t(tt)} ({where}) | "
                  f"{tt / o:.2f} |")
    for w in RGCN:
        tt, where = best_torch("rgcn", w)
        for bt in (1, 2):
            runs = ours.get(f"rgcn/{w}/{bt}")
            if not runs:
                continue
            o = med([x["ours_s"] for x in runs])
            faults += [x["page_faults_per_step"] for x in runs]
            print(f"| rgcn/{w} | {bt} | {fmt_t(o)} | | | | {fmt_t(tt)} ({where.split()[-1]}) | {tt / o:.2f} |")
    print(f"\nPage faults per step of ours in the steady state (every workload, every round): max {max(faults):g}.")


if __name__ == "__main__":
    main()
