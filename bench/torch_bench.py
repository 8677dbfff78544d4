#!/usr/bin/python3
"""The workloads of bench_mlp.cpp in PyTorch, timed the same way (median over repetitions of
a timed block), printed as JSON: {"name": seconds, ...} with names like "torch/f32/cd_step/config:0".

PyTorch runs in its best setting here: its default intra-op thread count (recorded in the
output), OpenBLAS's own thread pool left alone.
"""
import argparse
import json
import statistics
import sys
import time

import torch

CONFIGS = [(2, 128, 256), (64, 256, 128), (784, 512, 128)]
CHAIN_STEPS = 20


def mlp(d, h, dtype):
    return torch.nn.Sequential(
        torch.nn.Linear(d, h), torch.nn.SiLU(), torch.nn.Linear(h, h), torch.nn.SiLU(), torch.nn.Linear(h, 1)
    ).to(dtype)


def workloads(d, h, n, dtype):
    torch.manual_seed(0)
    f = mlp(d, h, dtype)
    x0 = torch.randn(n, d, dtype=dtype)
    opt = torch.optim.Adam(f.parameters(), lr=1e-4)
    eps, alpha = 1e-4, 0.1

    def forward():
        with torch.no_grad():
            f(x0).sum()

    def grad_theta():
        f.zero_grad(set_to_none=True)
        f(x0).sum().backward()

    def grad_x():
        x = x0.clone().requires_grad_(True)
        torch.autograd.grad(f(x).sum(), x)

    def chain(x):
        for _ in range(CHAIN_STEPS):
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(f(x).sum(), x)
            x = x - eps * g + (2 * eps) ** 0.5 * torch.randn_like(x)
        return x.detach()

    def langevin20():
        chain(x0.clone())

    def cd_step():
        x_neg = chain(x0.clone())
        e_pos, e_neg = f(x0), f(x_neg)
        loss = e_pos.mean() - e_neg.mean() + alpha * ((e_pos ** 2).mean() + (e_neg ** 2).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"forward": forward, "grad_theta": grad_theta, "grad_x": grad_x, "langevin20": langevin20, "cd_step": cd_step}


def per_op():
    x0 = torch.randn(16)

    def run():
        x = x0.clone().requires_grad_(True)
        y = x
        for _ in range(50):
            y = torch.sigmoid(y) * 1.01 + 0.01
        y.sum().backward()

    return run


def time_it(fn, reps, min_time):
    fn()  # warm-up
    n, t0 = 1, time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(min_time / one))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.05)
    ap.add_argument("--filter", default="")
    args = ap.parse_args()
    out = {"_settings": {"torch": torch.__version__, "intra_op_threads": torch.get_num_threads()}}
    for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
        for ci, (d, h, n) in enumerate(CONFIGS):
            for name, fn in workloads(d, h, n, dtype).items():
                key = f"torch/{tag}/{name}/config:{ci}"
                if args.filter in key:
                    out[key] = time_it(fn, args.repetitions, args.min_time)
    if args.filter in "torch/f32/per_op/config:0":
        out["torch/f32/per_op/config:0"] = time_it(per_op(), args.repetitions, args.min_time) / 100
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
