#!/usr/bin/python3
"""Two losses of LeCun et al.'s table compared on the 8x8 digits, as a researcher would from a
notebook: the same E(W, Y, X) network (one energy per class), the same split, batches and seeds,
trained with each loss; test error and the mean energy gap E(Ybar) - E(Y) per epoch, and whether
the energies collapsed (a flat E over the answers: the failure the tutorial warns of for losses
without a contrastive term, such as the energy loss).

    PYTHONPATH=build/python python3 examples/python/compare_losses.py --losses hinge nll [--smoke]
"""
import argparse

import ebl


def main():
    names = [l["name"] for l in ebl.loss_table()]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--losses", nargs="+", default=["hinge", "energy"], choices=names)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.epochs, a.seeds = 2, 1

    x, y, classes = ebl.load_digits()
    x_train, y_train, x_test, y_test = ebl.split_labeled(x, y, classes, 500, 0)
    print(f"digits: {len(x_train)} training and {len(x_test)} test images, {classes} classes")
    table = {l["name"]: l for l in ebl.loss_table()}
    results = {}
    for loss in a.losses:
        finals = []
        for seed in range(a.seeds):
            model = ebl.DiscreteAnswerEnergy(64, [a.hidden], classes, activation="relu", seed=seed,
                                             dtype="float32")
            curve = []
            ok = ebl.train_classifier(model, loss, x_train, y_train, x_test, y_test, epochs=a.epochs,
                                      rng=ebl.Rng(100 + seed),
                                      on_epoch=lambda epoch, ev: curve.append(ev))
            last = curve[-1] if curve else None
            finals.append((ok, last))
        results[loss] = finals
        errs = [f.error for ok, f in finals if ok and f]
        gaps = [f.mean_gap for ok, f in finals if ok and f]
        collapsed = sum(1 for ok, f in finals if ok and f and f.collapse.collapsed)
        diverged = sum(1 for ok, _ in finals if not ok)
        err = f"{sum(errs) / len(errs):.3f}" if errs else "-"
        gap = f"{sum(gaps) / len(gaps):+.3f}" if gaps else "-"
        print(f"{loss:14s} {table[loss]['equation']:>5s}  test error {err}  mean gap {gap}  "
              f"collapsed {collapsed}/{a.seeds}  diverged {diverged}/{a.seeds}   "
              f"[{table[loss]['formula']}]")


if __name__ == "__main__":
    main()
