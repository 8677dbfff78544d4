#!/usr/bin/python3
"""RBM training time per epoch: bench_rbm (this library) against scikit-learn's BernoulliRBM at
its default batch size (10), on the same data (the binarised 8x8 digits, the 1297-image training
split, read from datasets/data/digits.csv.gz with the same threshold), same settings (256 hidden units,
learning rate 0.1, persistent CD-1, float32 on both sides), in alternating rounds; medians.

usage: bench/rbm_vs_sklearn.py BENCH_RBM_BINARY [--rounds 3]
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import time

import numpy as np
from sklearn.neural_network import BernoulliRBM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_train():
    # The epoch time depends on the number of images and their binarisation, not on which 1297
    # of the 1797 are used (the C++ side uses its seeded split).
    rows = np.loadtxt(gzip.open(os.path.join(ROOT, "datasets/data/digits.csv.gz")), delimiter=",")
    x = (rows[:1297, :64] / 16.0 > 0.5).astype(np.float32)
    return x


def sklearn_epoch(x, epochs=5):
    # fit() runs n_iter epochs of PCD-1 over mini-batches of batch_size: time it and divide
    rbm = BernoulliRBM(n_components=256, learning_rate=0.1, batch_size=10, n_iter=epochs, random_state=0)
    t0 = time.perf_counter()
    rbm.fit(x)
    return (time.perf_counter() - t0) / epochs


def ours_epoch(binary):
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_repetitions=5",
                          "--benchmark_report_aggregates_only=true"], check=True, capture_output=True, text=True).stdout
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            return b["real_time"] * {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    raise RuntimeError("no median in bench_rbm output")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    x = digits_train()
    ours, sk = [], []
    for _ in range(args.rounds):
        ours.append(ours_epoch(args.binary))
        sk.append(sklearn_epoch(x))
    o, s = statistics.median(ours), statistics.median(sk)
    import sklearn
    print(f"RBM epoch, 1297 binarised digits, 256 hidden, PCD-1, batch 10, lr 0.1, float32 "
          f"(scikit-learn {sklearn.__version__}, {args.rounds} alternating rounds, medians):")
    print(f"| ours | scikit-learn BernoulliRBM | scikit-learn / ours |\n|---:|---:|---:|\n| {o * 1e3:.2f} ms | {s * 1e3:.2f} ms | {s / o:.1f} |")


if __name__ == "__main__":
    main()
