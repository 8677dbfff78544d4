#!/usr/bin/env python3
"""Data-parallel CD over MPI on this machine: strong and weak scaling from 1 to 2 ranks, and a
cost model for N machines checked against the 2-rank measurement.

Usage: bench/mpi_scaling.py build/bench/bench_mpi [--rounds 5]

Model. A data-parallel step on N ranks with b rows each costs
    t(N, b) = c(b) + A(N),   A(N) = 2 (N - 1) alpha + 2 (N - 1) / N * P * 8 bytes / BW
c(b), the compute of one rank's step, is linear in b, fitted to the 1-rank steps at b = 256 and
128; A(N) is a ring allreduce of the P parameters' gradients in double (the packed buffer), with
latency alpha and bandwidth BW fitted to the allreduce sweep on this machine (2 ranks). The model's
2-rank prediction is compared with the measured 2-rank step; then it predicts N = 8 and 64
machines on a 10 Gbit/s network (alpha = 25 us, TCP over Ethernet) and on 100 Gbit/s (alpha = 2
us, RDMA), nominal bandwidths, one rank per machine.
"""
import argparse
import json
import os
import subprocess
import sys

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OPENBLAS_NUM_THREADS="1")


def run(binary, ranks, *args):
    cmd = ([binary] if ranks == 1 else ["mpirun", "-np", str(ranks), binary]) + list(args)
    out = subprocess.run(cmd, env=ENV, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    a = ap.parse_args()
    r = ["--rounds", str(a.rounds), "--steps", str(a.steps)]
    one_256 = run(a.binary, 1, "--batch", "256", *r)
    one_128 = run(a.binary, 1, "--batch", "128", *r)
    strong = run(a.binary, 2, "--batch", "128", *r)
    weak = run(a.binary, 2, "--batch", "256", *r)
    sweep = run(a.binary, 2, "--allreduce-sweep")["allreduce"]
    P = one_256["parameters"]

    print("| run | ranks | rows per rank | global batch | step (ms) | of which allreduce + wait (ms) "
          "| speed-up | efficiency |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    t1 = one_256["step_ms"]
    for name, m, ref_rows in [("1 rank", one_256, 256), ("strong: 2 ranks, same global batch", strong, 256),
                              ("weak: 2 ranks, twice the global batch", weak, 512)]:
        speedup = t1 / m["step_ms"] * (ref_rows / 256)  # rows per second against 1 rank
        print(f"| {name} | {m['ranks']} | {m['batch_per_rank']} | {m['global_batch']} | "
              f"{m['step_ms']:.3f} | {m['allreduce_ms']:.3f} | {speedup:.2f}x | "
              f"{100 * speedup / m['ranks']:.0f}% |")

    # allreduce on this machine: t = 2 alpha + bytes / BW fitted over the sweep (N = 2) by least
    # squares of the relative error (weights 1/t^2), so that small and large messages count alike
    xs = [s["bytes"] for s in sweep]
    ys = [s["seconds"] for s in sweep]
    w = [1 / y ** 2 for y in ys]
    sw, sx, sy = sum(w), sum(wi * x for wi, x in zip(w, xs)), sum(wi * y for wi, y in zip(w, ys))
    sxx = sum(wi * x * x for wi, x in zip(w, xs))
    sxy = sum(wi * x * y for wi, x, y in zip(w, xs, ys))
    slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
    intercept = (sy - slope * sx) / sw
    alpha_local = max(0.0, intercept / 2)
    bw_local = 1 / slope
    print()
    print("| allreduce, 2 ranks on this machine | " + " | ".join(f"{s['bytes']:,} B" for s in sweep) + " |")
    print("|---|" + "---:|" * len(sweep))
    print("| time (us) | " + " | ".join(f"{1e6 * s['seconds']:.1f}" for s in sweep) + " |")
    print(f"\nfit: alpha = {1e6 * alpha_local:.2f} us, BW = {bw_local / 1e9:.2f} GB/s (shared memory)")

    # compute: c(b) = c0 + c1 b from the two 1-rank runs
    c1 = (one_256["compute_ms"] - one_128["compute_ms"]) / 128
    c0 = one_256["compute_ms"] - 256 * c1

    def allreduce_ms(N, alpha, bw):
        return 1e3 * (2 * (N - 1) * alpha + 2 * (N - 1) / N * P * 8 / bw)

    def step_ms(N, b, alpha, bw):
        return c0 + c1 * b + allreduce_ms(N, alpha, bw)

    pred2 = step_ms(2, 128, alpha_local, bw_local)
    print(f"\ncompute per rank c(b) = {c0:.3f} ms + {1e3 * c1:.2f} us x b;  P = {P:,} parameters, "
          f"{8 * P / 1e3:.0f} kB per allreduce")
    print(f"\n2 ranks, 128 rows each: model {pred2:.3f} ms, measured {strong['step_ms']:.3f} ms "
          f"({100 * (pred2 / strong['step_ms'] - 1):+.0f}%)")
    print()
    print("| machines N | network | strong (global batch 256): step ms, speed-up | weak (256 rows each): step ms, efficiency |")
    print("|---:|---|---:|---:|")
    for N in (8, 64):
        for net, alpha, bw in (("10 Gbit/s, alpha 25 us", 25e-6, 1.25e9), ("100 Gbit/s, alpha 2 us", 2e-6, 12.5e9)):
            ts = step_ms(N, 256 / N, alpha, bw)
            tw = step_ms(N, 256, alpha, bw)
            print(f"| {N} | {net} | {ts:.3f} ms, {t1 / ts:.2f}x | {tw:.3f} ms, "
                  f"{100 * (c0 + c1 * 256) / tw:.0f}% |")


if __name__ == "__main__":
    sys.exit(main())
