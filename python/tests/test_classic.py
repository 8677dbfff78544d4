"""The classic models from Python: the ten losses of LeCun et al.'s table against their formulas
(numpy) and their gradients against PyTorch; a classifier trained on the digits; the digits and
their fixed split; binary RBMs: exact log Z equal to enumeration of the free energy, AIS
bracketing it within its standard errors, training by CD-1 and PCD raising the exact
log-likelihood."""
import numpy as np
import pytest
import torch

import ebl
from conftest import close


def test_the_loss_table_matches_its_formulas():
    table = ebl.loss_table()
    assert [l["name"] for l in table] == ["energy", "perceptron", "hinge", "log", "lvq2", "mce",
                                          "square-square", "square-exp", "nll", "mee"]
    e = np.random.default_rng(0).standard_normal((6, 4))
    y = np.array([0, 3, 1, 2, 2, 0])
    n = len(y)
    ep = e[np.arange(n), y]
    masked = e.copy()
    masked[np.arange(n), y] = np.inf
    en = masked.min(1)
    m, M, g, b = 0.7, 0.4, 1.3, 2.0
    lse = np.log(np.exp(-b * e).sum(1))
    expect = {
        "energy": ep, "perceptron": ep - e.min(1), "hinge": np.maximum(0, m + ep - en),
        "log": np.log1p(np.exp(ep - en)), "lvq2": np.minimum(M, np.maximum(0, ep - en)),
        "mce": 1 / (1 + np.exp(-(ep - en))), "square-square": ep**2 + np.maximum(0, m - en) ** 2,
        "square-exp": ep**2 + g * np.exp(-en), "nll": ep + lse / b, "mee": 1 - np.exp(-b * ep - lse),
    }
    for name, want in expect.items():
        t = ebl.Tape()
        ev = t.input(e, requires_grad=True)
        a = ebl.answers(ev, y)
        assert list(a.y_pos) == list(y) and list(a.y_neg) == list(np.where(np.isinf(masked), np.inf, masked).argmin(1))
        assert a.all.shape == [6, 4] and a.e_pos.shape == [6] and a.e_neg.shape == [6]
        per = ebl.per_sample_loss(name, a, margin=m, saturation=M, gamma=g, beta=b)
        close(per.value, want)
        bl = ebl.batch_loss(name, a, margin=m, saturation=M, gamma=g, beta=b)
        assert abs(bl.item() - want.mean()) < 1e-12
    # gradients of two against torch
    te = torch.tensor(e, requires_grad=True)
    for name in ["hinge", "nll"]:
        tep = te[torch.arange(n), torch.tensor(y)]
        t = ebl.Tape()
        ev = t.input(e, requires_grad=True)
        loss = ebl.batch_loss(name, ebl.answers(ev, y), margin=m, beta=b)
        t.backward(loss, [ev])
        te.grad = None
        if name == "hinge":
            ybar = torch.tensor(masked.argmin(1))
            torch.clamp(m + tep - te[torch.arange(n), ybar], min=0).mean().backward()
        else:
            (tep + torch.logsumexp(-b * te, 1) / b).mean().backward()
        close(t.grad(ev), te.grad)
    t = ebl.Tape()
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        ebl.batch_loss("l2", ebl.answers(t.input(e), y))
    with pytest.raises(ebl.ShapeError, match="answers"):
        ebl.answers(t.input(e), y[:3])


def test_a_classifier_trained_on_the_digits():
    x, y, classes = ebl.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and classes == 10
    assert ebl.digits_path().endswith("datasets/data/digits.csv.gz")  # the source tree's, here
    assert 0 <= x.min() and x.max() <= 1
    xtr, ytr, xte, yte = ebl.split_labeled(x, y, classes, 500, 0)
    assert len(xtr) == 1297 and len(xte) == 500
    xtr2, _, _, _ = ebl.split_labeled(x, y, classes, 500, 0)
    np.testing.assert_array_equal(xtr, xtr2)
    m = ebl.DiscreteAnswerEnergy(64, [32], 10, seed=1, dtype="float32")
    assert m.energies(xte).shape == (500, 10) and m.answers == 10
    errors = []
    ok = ebl.train_classifier(m, "hinge", xtr, ytr, xte, yte, epochs=4, rng=ebl.Rng(0),
                              on_epoch=lambda e, ev: errors.append(ev.error))
    assert ok and len(errors) == 4 and errors[-1] < 0.15  # chance is 0.9
    ev = ebl.evaluate_classifier(m, xte, yte)
    assert ev.error == errors[-1] and ev.mean_gap > 0 and not ev.collapse.collapsed
    # the tape view: the same energies
    t = ebl.Tape(dtype="float32")
    np.testing.assert_array_equal(m(t, t.input(xte)).value, m.energies(xte))
    with pytest.raises(ebl.IoError, match="not a directory"):
        ebl.load_digits(data_dir="/nonexistent")


def test_rbm_log_z_exact_and_by_ais():
    r = ebl.RBM(10, 6, seed=0, init_std=0.5)
    lz = r.exact_log_z()
    assert abs(lz - ebl.log_partition(r.as_energy(), ebl.binary_cube(10))) < 1e-10
    v = ebl.binary_cube(10).points
    f = r.free_energy(v)
    assert abs(lz - np.log(np.exp(-f).sum())) < 1e-10
    assert ebl.gradcheck(lambda t, x: r.as_energy()(t, x), [v[:5]]).ok
    base = ebl.base_rate_bias(v[:200])
    fwd = ebl.rbm_ais(r, base, 200, 300, ebl.Rng(1))
    rev = ebl.rbm_reverse_ais(r, base, r.exact_samples(200, ebl.Rng(2)), 300, ebl.Rng(3))
    assert abs(fwd.log_z - lz) < 4 * fwd.std_err + 1e-3
    assert abs(rev.log_z - lz) < 4 * rev.std_err + 1e-3
    assert fwd.log_z_bound <= lz + 4 * fwd.bound_std_err and rev.log_z_bound >= lz - 4 * rev.bound_std_err
    assert fwd.runs == 200 and fwd.temperatures == 300


@pytest.mark.parametrize("persistent,betas", [(False, []), (True, []), (True, [1.0, 0.7, 0.4])],
                         ids=["cd", "pcd", "tempering"])
def test_rbm_training_raises_the_exact_loglik(persistent, betas):
    x, _, _ = ebl.load_digits()
    v = (x[:600] > 0.5).astype(np.float64)
    r = ebl.RBM(64, 8, seed=0)
    before = r.average_loglik(v, r.exact_log_z())
    tr = ebl.RBMTrainer(r, ebl.SGD(r.parameters(), lr=0.05), k=1, persistent=persistent,
                        tempering_betas=betas, seed=1)
    rng = ebl.Rng(4)
    for _ in range(300):
        tr.step(v[rng.below(len(v), size=32)])
    after = r.average_loglik(v, r.exact_log_z())
    assert after > before + 5, (before, after)
    assert r.pseudo_loglik(v) < 0
    if persistent:
        assert tr.chains.shape == (32, 64)
    with pytest.raises(ebl.ShapeError, match=r"\[n, 64\]"):
        tr.step(np.zeros((3, 5)))


def test_gaussian_rbm_exact_log_z_ais_and_training():
    g = ebl.GaussianRBM(2, 3, seed=1, init_std=0.8)
    for p in g.parameters()[1:]:
        p.value = np.random.default_rng(2).normal(0, 0.5, p.shape)
    lz = g.exact_log_z()
    grid = ebl.grid_2d(-12, 12, 500, -12, 12, 500)
    assert abs(ebl.log_partition(g, grid) - lz) < 1e-6
    x = np.random.default_rng(3).standard_normal((4, 2))
    np.testing.assert_allclose(g.free_energy(x), g.energy(x), rtol=1e-12)
    v, h = g.gibbs(np.zeros((2000, 2)), 40, ebl.Rng(4))
    assert v.shape == (2000, 2) and set(np.unique(h)) <= {0.0, 1.0}
    mean, var = ebl.base_moments(v)
    a = g.ais(mean, var, 300, 500, ebl.Rng(5))
    assert isinstance(a, ebl.GbrbmAis) and a.runs == 300
    assert abs(a.log_z - lz) < 4 * a.std_err
    # training on two clusters raises the exact log-likelihood
    rng = np.random.default_rng(6)
    right = rng.uniform(size=2000) < 0.5
    data = np.stack([np.where(right, 1.5, -1.5), np.where(right, 1.0, 0.0)], 1) + 0.4 * rng.standard_normal((2000, 2))
    m = ebl.GaussianRBM(2, 4, seed=7, init_std=0.1)
    before = m.average_loglik(data, m.exact_log_z())
    tr = ebl.GaussianRBMTrainer(m, ebl.Adam(m.parameters(), lr=0.02), k=1, seed=8)
    r = ebl.Rng(9)
    for _ in range(800):
        tr.step(data[r.below(2000, size=64)])
    assert m.average_loglik(data, m.exact_log_z()) > before + 1.0
    with pytest.raises(ValueError, match="base moments"):
        g.ais([0.0], [1.0], 10, 10, ebl.Rng(0))
