#!/usr/bin/python3
"""The Python module against the same calls from C++, and the toy2d loop against PyTorch.

1. Overhead: a CD step and a 20-step Langevin chain called from Python (ebl.CD.step,
   ebl.Langevin.run) against bench_mlp's ebl/f32/cd_step and ebl/f32/langevin20 — the same
   workloads (MLP in-h-h-1 with SiLU, float32, CD from the data with alpha = 0.1, step 1e-4,
   chains on 2 threads) at the three sizes of bench_mlp. The two run in alternating rounds in one
   session; per round the ratio Python / C++, and the median over rounds.
2. The toy2d training loop (experiments/toy2d's defaults: MLP 2-128-128-1, SiLU, batch 256,
   persistent chains from a buffer of 10,000 restarted with probability 0.05, 20 Langevin steps
   of 0.005, alpha = 0.01, Adam) driven from Python through ebl, against the same loop written in
   PyTorch (its default intra-op threads); seconds per training step, alternating, medians.

usage: bench/python_bench.py BUILD_DIR [--rounds 3] [--json out.json]
Prints a markdown table (and writes the numbers as JSON with --json).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CONFIGS = {0: (2, 128, 256), 1: (64, 256, 128), 2: (784, 512, 128)}


def time_block(fn, min_time=0.2, reps=5):
    """Median over reps of the mean time of a block of calls lasting at least min_time."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_time / 4:
        fn()
        n += 1
    n = max(1, int(n * 4 * 1.0))
    means = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        means.append((time.perf_counter() - t0) / n)
    return statistics.median(means)


def cxx_times(build):
    exe = os.path.join(build, "bench", "bench_mlp")
    cmd = [exe, "--chain_threads=2", "--benchmark_format=json", "--benchmark_min_time=0.3",
           "--benchmark_repetitions=3", "--benchmark_report_aggregates_only=true",
           "--benchmark_filter=^ebl/f32/(langevin20|cd_step)/config:[012]$"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    res = {}
    for b in out["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"]
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
        res[name] = b["real_time"] * scale
    return res


def python_times(ebl):
    res = {}
    for k, (d, h, n) in CONFIGS.items():
        rng = ebl.Rng(0)
        e = ebl.MlpEnergy(d, [h, h], activation="silu", seed=0, dtype="float32")
        x0 = rng.normal_array([n, d], dtype="float32")
        chain = ebl.Langevin(e, steps=20, step_size=1e-4, threads=2)
        res[f"ebl/f32/langevin20/config:{k}"] = time_block(lambda: chain.run(x0, rng))
        opt = ebl.Adam(e.parameters(), lr=1e-4)
        cd = ebl.CD(e, opt, dim=d, seed=1, init="data", alpha=0.1, steps=20, step_size=1e-4, threads=2)
        res[f"ebl/f32/cd_step/config:{k}"] = time_block(lambda: cd.step(x0))
    return res


def toy2d_ebl(ebl, steps):
    train = ebl.toy2d_sample("8gaussians", 50000, ebl.Rng(0), dtype="float32")
    e = ebl.MlpEnergy(2, [128, 128], activation="silu", seed=1, dtype="float32")
    opt = ebl.Adam(e.parameters(), lr=1e-3)
    cd = ebl.CD(e, opt, dim=2, seed=2, steps=20, step_size=0.005, alpha=0.01, noise_lo=-4,
                noise_hi=4, buffer_size=10000, restart_prob=0.05, threads=2)
    for _ in range(5):
        cd.step(train[cd.rng.below(len(train), size=256)])
    t0 = time.perf_counter()
    for _ in range(steps):
        cd.step(train[cd.rng.below(len(train), size=256)])
    return (time.perf_counter() - t0) / steps


def toy2d_torch(steps):
    import torch

    torch.manual_seed(0)
    g = np.random.default_rng(0)
    a = g.integers(0, 8, 50000) * np.pi / 4
    train = torch.tensor(np.stack([2 * np.cos(a), 2 * np.sin(a)], 1) + 0.25 * g.standard_normal((50000, 2)),
                         dtype=torch.float32)
    f = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.SiLU(), torch.nn.Linear(128, 128),
                            torch.nn.SiLU(), torch.nn.Linear(128, 1))
    opt = torch.optim.Adam(f.parameters(), lr=1e-3)
    buf = torch.rand(10000, 2) * 8 - 4
    eps, alpha = 0.005, 0.01

    def step():
        idx = torch.randint(0, 50000, (256,))
        x_pos = train[idx]
        bi = torch.randint(0, 10000, (256,))
        x = buf[bi].clone()
        restart = torch.rand(256) < 0.05
        x[restart] = torch.rand(int(restart.sum()), 2) * 8 - 4
        for _ in range(20):
            x = x.detach().requires_grad_(True)
            (gx,) = torch.autograd.grad(f(x).sum(), x)
            x = x - eps * gx + (2 * eps) ** 0.5 * torch.randn_like(x)
        x = x.detach()
        e_pos, e_neg = f(x_pos).reshape(-1), f(x).reshape(-1)
        loss = e_pos.mean() - e_neg.mean() + alpha * ((e_pos**2).mean() + (e_neg**2).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        buf[bi] = x

    for _ in range(5):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps, torch.get_num_threads()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--toy2d-steps", type=int, default=300)
    ap.add_argument("--json")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python"))
    import ebl

    ratios, cxx_all, py_all, toy_ratios, toy_ebl, toy_torch = {}, {}, {}, [], [], []
    threads = None
    for r in range(args.rounds):
        c = cxx_times(args.build)
        p = python_times(ebl)
        for k in c:
            ratios.setdefault(k, []).append(p[k] / c[k])
            cxx_all.setdefault(k, []).append(c[k])
            py_all.setdefault(k, []).append(p[k])
        te = toy2d_ebl(ebl, args.toy2d_steps)
        tt, threads = toy2d_torch(args.toy2d_steps)
        toy_ebl.append(te)
        toy_torch.append(tt)
        toy_ratios.append(tt / te)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    med = statistics.median
    print(f"ebl {ebl.__version__}, {args.rounds} alternating rounds, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(auto)')}\n")
    print("| workload (in, hidden, batch) | C++ | Python | Python / C++ |")
    print("|---|---:|---:|---:|")
    for k in sorted(ratios, key=lambda s: (s.split("/")[2], s)):
        wl, cfg = k.split("/")[2], int(k.split(":")[1])
        print(f"| {wl} {CONFIGS[cfg]} | {med(cxx_all[k]) * 1e3:.3f} ms | {med(py_all[k]) * 1e3:.3f} ms "
              f"| {med(ratios[k]):.3f} |")
    print(f"\n| toy2d CD step (8gaussians, defaults) | ebl from Python | PyTorch ({threads} threads) "
          f"| PyTorch / ebl |")
    print("|---|---:|---:|---:|")
    print(f"| seconds per step | {med(toy_ebl) * 1e3:.2f} ms | {med(toy_torch) * 1e3:.2f} ms "
          f"| {med(toy_ratios):.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"python_over_cxx": {k: med(v) for k, v in ratios.items()},
                       "cxx_s": {k: med(v) for k, v in cxx_all.items()},
                       "python_s": {k: med(v) for k, v in py_all.items()},
                       "toy2d_ebl_s": med(toy_ebl), "toy2d_torch_s": med(toy_torch),
                       "torch_threads": threads, "torch_over_ebl": med(toy_ratios)}, f, indent=1)


if __name__ == "__main__":
    main()
