#!/usr/bin/python3
"""Run bench_mlp and print a markdown table: medians of our time and of the GEMM floor, the
fraction of the floor we reach (floor time / our time), and achieved GEMM GFLOP/s.

usage: bench/report.py BENCH_BINARY [--repetitions N]
"""
import argparse
import json
import subprocess
import sys

CONFIGS = {0: "(2, 128, 256)", 1: "(64, 256, 128)", 2: "(784, 512, 128)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--repetitions", type=int, default=15)
    args = ap.parse_args()
    try:
        out = subprocess.run(
            [args.binary, "--benchmark_format=json", f"--benchmark_repetitions={args.repetitions}",
             "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.05",
             "--benchmark_enable_random_interleaving=true"],
            check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"report.py: cannot run {args.binary}: {e}")
    medians = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]  # e.g. ebl/f32/forward/config:0
        who, dtype, mode, cfg = name.split("/")
        medians[(who, dtype, mode, int(cfg.split(":")[1]))] = (b["real_time"], b.get("gemm_flops", 0.0))
    for (who, dtype, _, _), (_, fl) in sorted(medians.items()):
        if who == "peak":
            print(f"BLAS peak ({dtype} GEMM 1024x1024x1024, same run): {fl / 1e9:.1f} GFLOP/s\n")
    print("| config (in, hidden, batch) | dtype | workload | ours (µs) | GEMM floor (µs) | floor / ours | ours GEMM GFLOP/s |")
    print("|---|---|---|---:|---:|---:|---:|")
    for (who, dtype, mode, cfg), (t, fl) in sorted(medians.items(), key=lambda kv: (kv[0][3], kv[0][1], kv[0][2])):
        if who != "ebl":
            continue
        floor = medians.get(("floor", dtype, mode, cfg), (float("nan"), 0))[0]
        print(f"| {CONFIGS[cfg]} | {dtype} | {mode} | {t:.1f} | {floor:.1f} | {100 * floor / t:.0f}% | {fl / 1e9:.1f} |")


if __name__ == "__main__":
    main()
