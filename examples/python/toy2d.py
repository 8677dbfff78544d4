#!/usr/bin/python3
"""The flagship study from Python: learn a 2-D density with an MLP energy by persistent contrastive
divergence with Langevin dreams, and measure it exactly (the test NLL with log Z by quadrature).

The loop is experiments/toy2d's (the same data, initialisation, batches and learning-rate
schedule, drawn from the same generator streams), so at the same flags it reaches the same test
NLL as the C++ binary, number for number (python/tests/test_training.py checks it).

    PYTHONPATH=build/python python3 examples/python/toy2d.py --dataset 8gaussians
    python3 examples/python/toy2d.py --smoke          # seconds: the binary's --smoke sizes

Writes <out>/<dataset>-seed<seed>/ (a new folder; an existing one is never overwritten): eval.csv
(step, test NLL, log Z), samples.csv (model samples from noise) and metrics.json.
"""
import argparse
import csv
import json
import os
import pathlib
import tempfile
import time

import numpy as np

import ebl


def write_atomic(path, text):
    """Write to a temporary file beside path, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def new_run_dir(out, name):
    base = pathlib.Path(out) / name
    d, k = base, 1
    while d.exists():
        k += 1
        d = base.with_name(f"{base.name}-{k}")
    d.mkdir(parents=True)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="8gaussians", choices=ebl.toy2d_names())
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-final", type=float, default=1e-4)
    ap.add_argument("--langevin-steps", type=int, default=20)
    ap.add_argument("--step-size", type=float, default=0.005)
    ap.add_argument("--alpha", type=float, default=None, help="default: 0.1 on the thin sets, else 0.01")
    ap.add_argument("--buffer", type=int, default=10000)
    ap.add_argument("--grid", type=int, default=200)
    ap.add_argument("--train-size", type=int, default=50000)
    ap.add_argument("--test-size", type=int, default=5000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--sample-steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/python-toy2d")
    ap.add_argument("--smoke", action="store_true", help="the C++ binary's --smoke sizes")
    a = ap.parse_args()
    if a.smoke:
        a.steps, a.hidden, a.eval_every, a.grid = 30, 32, 15, 40
        a.train_size, a.test_size, a.eval_samples, a.sample_steps, a.buffer = 2000, 500, 200, 50, 500
    if a.alpha is None:
        a.alpha = 0.1 if a.dataset in ("rings", "moons", "2spirals") else 0.01
    box, noise_box = 4.0, 4.0

    # data, model, trainer: the binary's streams (data: seed, weights: seed + 1, CD: seed + 2)
    data_rng = ebl.Rng(a.seed)
    train = ebl.toy2d_sample(a.dataset, a.train_size, data_rng, dtype="float32")
    test = ebl.toy2d_sample(a.dataset, a.test_size, data_rng, dtype="float32")
    energy = ebl.MlpEnergy(2, [a.hidden, a.hidden], activation="silu", seed=a.seed + 1, dtype="float32")
    opt = ebl.Adam(energy.parameters(), lr=a.lr)
    cd = ebl.CD(energy, opt, dim=2, seed=a.seed + 2, steps=a.langevin_steps, step_size=a.step_size,
                alpha=a.alpha, noise_lo=-noise_box, noise_hi=noise_box, buffer_size=a.buffer,
                threads=a.threads)
    grid = ebl.grid_2d(-box, box, a.grid, -box, box, a.grid, dtype="float32")

    run = new_run_dir(a.out, f"{a.dataset}-seed{a.seed}")
    print(f"toy2d (Python, ebl {ebl.__version__}): {a.dataset} -> {run}")
    rows, t_train = [], 0.0
    for s in range(a.steps):
        batch = train[cd.rng.below(len(train), size=a.batch)]
        opt.lr = a.lr + (a.lr_final - a.lr) * s / max(1, a.steps - 1)
        t0 = time.perf_counter()
        st = cd.step(batch)
        t_train += time.perf_counter() - t0
        if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
            log_z = ebl.log_partition(energy, grid)
            nll = ebl.mean_energy(energy, test) + log_z
            rows.append((s + 1, nll, log_z))
            print(f"step {s + 1:6d}  loss {st.loss:+.3f}  test NLL {nll:.4f}  ({t_train:.1f} s)")

    # samples of the model from noise, by its own sampler, long chains
    srng = ebl.Rng(a.seed + 3)
    x0 = srng.uniform_array([a.eval_samples, 2], -noise_box, noise_box, dtype="float32")
    samples, _ = ebl.Langevin(energy, steps=a.sample_steps, step_size=a.step_size,
                              threads=a.threads).run(x0, srng)
    data_nll = ebl.toy2d_true_nll(a.dataset, test)
    metrics = {
        "dataset": a.dataset, "steps": a.steps, "test_nll_model": rows[-1][1],
        "test_nll_data": data_nll, "nll_gap": None if data_nll is None else rows[-1][1] - data_nll,
        "log_z": rows[-1][2], "mmd2_samples_vs_test": ebl.mmd2_unbiased(samples, test[: a.eval_samples],
                                                                        [0.1, 0.3, 1.0]),
        "train_seconds": t_train, "config": vars(a),
    }
    lines = ["step,test_nll,log_z"] + [f"{s},{n:.9g},{z:.9g}" for s, n, z in rows]
    write_atomic(run / "eval.csv", "\n".join(lines) + "\n")
    write_atomic(run / "samples.csv", "x,y\n" + "".join(f"{p[0]:.6g},{p[1]:.6g}\n" for p in samples))
    write_atomic(run / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    gap = "" if data_nll is None else f" (data's own {data_nll:.4f})"
    print(f"test NLL {rows[-1][1]:.4f}{gap}, MMD^2 {metrics['mmd2_samples_vs_test']:.4f}, "
          f"{t_train:.1f} s of training -> {run}")


if __name__ == "__main__":
    main()
