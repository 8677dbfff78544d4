"""Datasets and metrics from Python against independent numpy computations: the 8-gaussians
density, unbiased MMD², calibration error and AUROC (the Mann-Whitney statistic)."""
import numpy as np
import pytest

import ebl


def test_toy2d_sets_and_their_exact_density():
    names = ebl.toy2d_names()
    assert {"8gaussians", "checkerboard", "rings", "moons", "2spirals", "pinwheel"} <= set(names)
    x = ebl.toy2d_sample("8gaussians", 300, ebl.Rng(0))
    assert x.shape == (300, 2) and x.dtype == np.float64
    a = np.arange(8) * np.pi / 4
    c = 2.0 * np.stack([np.cos(a), np.sin(a)], 1)
    s = 0.25
    d2 = ((x[:, None, :] - c[None]) ** 2).sum(-1)
    logp = np.log(np.exp(-d2 / (2 * s * s)).sum(1) / 8) - np.log(2 * np.pi * s * s)
    assert abs(ebl.toy2d_true_nll("8gaussians", x) + logp.mean()) < 1e-10
    x32 = ebl.toy2d_sample("8gaussians", 300, ebl.Rng(0), dtype="float32")
    np.testing.assert_array_equal(x32, x.astype(np.float32))  # the same draws in either dtype
    with pytest.raises(ValueError, match="unknown"):
        ebl.toy2d_sample("circles", 3, ebl.Rng(0))


def test_unbiased_mmd2_equals_numpy():
    g = np.random.default_rng(1)
    x, y = g.standard_normal((40, 3)), g.standard_normal((30, 3)) + 0.5
    bws = [0.5, 1.0]

    def k(a, b):
        r2 = ((a[:, None] - b[None]) ** 2).sum(-1)
        return sum(np.exp(-r2 / (2 * h * h)) for h in bws)

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    ref = ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
           - 2 * kxy.mean())
    assert abs(ebl.mmd2_unbiased(x, y, bws) - ref) < 1e-12
    with pytest.raises(ValueError, match="mmd2_unbiased"):
        ebl.mmd2_unbiased(x, np.ones((5, 2)), bws)


def test_calibration_and_auroc_equal_their_definitions():
    g = np.random.default_rng(2)
    conf = g.uniform(0, 1, 1000)
    correct = g.uniform(0, 1, 1000) < conf**1.5
    cal = ebl.calibration(conf, correct, bins=10)
    edges = np.histogram_bin_edges(conf, bins=10, range=(0, 1))
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, 9)
    gaps = [abs(conf[idx == b].mean() - correct[idx == b].mean()) * (idx == b).mean()
            for b in range(10) if (idx == b).any()]
    assert abs(cal.ece - sum(gaps)) < 1e-12 and len(cal.bins) == 10
    assert sum(b.count for b in cal.bins) == 1000

    a, b = g.standard_normal(200) + 1.0, g.standard_normal(150)
    mw = (a[:, None] > b[None]).mean() + 0.5 * (a[:, None] == b[None]).mean()
    r = ebl.auroc(a, b)
    assert abs(r.auroc - mw) < 1e-12 and 0 < r.std_err < 0.05
    with pytest.raises(ValueError, match="NaN"):
        ebl.auroc(np.array([np.nan]), b)
