"""Image and graph energies and JEM from Python: the CNN energy and the MLP classifier read as an
EBM against PyTorch on the same weights (float64); the graph energy's gradients and its invariance
to the order of the nodes; JEM's trainer training, sampling and resuming; the graph MMDs against
their definitions on sets with a known answer."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ebl
from conftest import close


def test_cnn_energy_equals_torch():
    e = ebl.CnnEnergy(2, 8, 7, [(4, 3, 1, 1, 2), (5, 3, 2, 1)], hidden=[16], activation="silu", seed=3)
    p = {q.name: torch.tensor(q.value, requires_grad=True) for q in e.parameters()}
    x = np.random.default_rng(0).standard_normal((3, 2 * 8 * 7))
    tx = torch.tensor(x, requires_grad=True)
    h = tx.reshape(3, 2, 8, 7)
    h = F.avg_pool2d(F.silu(F.conv2d(h, p["cnn.conv0.W"], p["cnn.conv0.b"], padding=1)), 2)
    h = F.silu(F.conv2d(h, p["cnn.conv1.W"], p["cnn.conv1.b"], stride=2, padding=1))
    h = F.silu(h.reshape(3, -1) @ p["cnn.fc0.W"] + p["cnn.fc0.b"])
    te = (h @ p["cnn.fc1.W"] + p["cnn.fc1.b"]).reshape(-1)
    close(e.energy(x), te)
    te.sum().backward()
    en, gx = e.grad_x(x)
    close(gx, tx.grad)
    for q, g in zip(e.parameters(), e.grad_theta(x)):
        close(g, p[q.name].grad)
    with pytest.raises(ValueError, match="CNN block"):
        ebl.CnnEnergy(1, 8, 8, [()])


def test_classifier_ebm_equals_torch():
    m = ebl.ClassifierEbm(5, 3, hidden=[8], seed=1)
    p = {q.name: torch.tensor(q.value) for q in m.parameters()}
    x = np.random.default_rng(1).standard_normal((4, 5))
    tx = torch.tensor(x, requires_grad=True)
    f = F.silu(tx @ p["layer0.W"] + p["layer0.b"]) @ p["layer1.W"] + p["layer1.b"]
    close(m.logits(x), f)
    close(m.probabilities(x), torch.softmax(f, 1))
    e = -torch.logsumexp(f, 1)
    close(m.marginal_energy().energy(x), e)
    close(m.class_energy(2).energy(x), -f[:, 2])
    s = m.ood_scores(x)
    close(s["log_px"], -e)
    close(s["max_prob"], torch.softmax(f, 1).max(1).values)
    (g,) = torch.autograd.grad(e.sum(), tx)
    close(s["neg_grad_norm"], -g.norm(dim=1))
    adv = m.pgd_attack(x, np.array([0, 1, 2, 0]), eps=0.1, steps=5, lo=-10, hi=10, rng=ebl.Rng(0))
    assert np.abs(adv - x).max() <= 0.1 + 1e-12
    cnn = ebl.CnnClassifierEbm(1, 8, 8, [(4,)], classes=10, seed=0)
    assert cnn.logits(np.zeros((2, 64))).shape == (2, 10) and cnn.classes == 10
    with pytest.raises(ValueError, match="class 3 of 3"):
        m.class_energy(3)


def test_jem_trains_samples_and_resumes(tmp_path):
    x, y, _ = ebl.load_digits()
    x = 2 * x[:256] - 1  # JEM's inputs live in [-1, 1]
    y = y[:256]

    def make():
        m = ebl.ClassifierEbm(64, 10, hidden=[64], seed=2, dtype="float32")
        return m, ebl.JemTrainer(m, dim=64, seed=3, lr=1e-3, warmup_steps=5, sgld_steps=5,
                                 buffer_size=128)

    m1, j1 = make()
    stats = [j1.step(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]) for i in range(6)]
    assert all(np.isfinite(s["loss"]) for s in stats) and j1.steps_done == 6
    path = tmp_path / "jem.bin"
    j1.checkpoint().save(str(path))
    for i in range(6, 8):
        j1.step(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32])
    m2, j2 = make()
    j2.restore(ebl.Checkpoint.load(str(path)))
    for i in range(6, 8):
        j2.step(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32])
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
    s = j1.sample(4, 10, rng=ebl.Rng(5))
    s3 = j1.sample(4, 10, y=3, rng=ebl.Rng(5))
    assert s.shape == (4, 64) and s3.shape == (4, 64) and not np.array_equal(s, s3)
    # the baseline learns to classify: accuracy on its own batches rises
    mb = ebl.ClassifierEbm(64, 10, hidden=[64], seed=2, dtype="float32")
    base = ebl.JemTrainer(mb, dim=64, generative=False, lr=3e-3, warmup_steps=1)
    acc = [base.step(x[(i % 8) * 32:(i % 8 + 1) * 32], y[(i % 8) * 32:(i % 8 + 1) * 32])["accuracy"]
           for i in range(40)]
    assert np.mean(acc[-8:]) > 0.8
    with pytest.raises(ebl.ShapeError, match="JemTrainer::step"):
        base.step(x[:3], y[:4])


def test_graph_energy_is_invariant_to_node_order():
    n, nt, et = 5, 3, 2
    g = ebl.GraphEnergy(n, nt, et, hidden=8, depth=2, seed=4)
    rng = np.random.default_rng(2)
    X = np.eye(nt)[rng.integers(0, nt, n)]
    adj = np.triu(rng.integers(0, 2, (n, n)), 1)
    adj = adj + adj.T
    A = np.stack([adj, 1 - adj])  # bond channel, then "no edge"

    def pack(X, A):
        return np.concatenate([X.reshape(-1), A.reshape(-1)])[None, :]

    perm = rng.permutation(n)
    e1 = g.energy(pack(X, A))
    e2 = g.energy(pack(X[perm], A[:, perm][:, :, perm]))
    assert abs(e1[0] - e2[0]) < 1e-12
    assert ebl.gradcheck(lambda t, v: g(t, v), [pack(X, A)]).ok
    g.update_spectral_norm()
    with pytest.raises(ebl.ShapeError, match="GraphEnergy"):
        g.energy(np.zeros((1, 7)))


def test_graph_mmds_on_sets_with_known_answers():
    ring = [[(i - 1) % 6, (i + 1) % 6] for i in range(6)]
    star = [[1, 2, 3, 4, 5]] + [[0]] * 5
    r = ebl.graph_mmd([ring] * 4, [ring] * 4)
    assert r.degree == 0 and r.clustering == 0 and r.orbit == 0
    r2 = ebl.graph_mmd([ring] * 4, [star] * 4)
    # degree: one histogram each (ring: all 2; star: one 5, five 1): MMD^2 = 2 - 2 k(ring, star)
    h_ring = np.array(ebl.degree_histogram(ring))
    h_star = np.array(ebl.degree_histogram(star))
    assert isinstance(r2, ebl.GraphMmd)
    assert list(h_star[:2]) == [0, 5]  # counts of nodes by degree
    L = max(len(h_ring), len(h_star))
    a, b = np.pad(h_ring, (0, L - len(h_ring))), np.pad(h_star, (0, L - len(h_star)))
    a, b = a / a.sum(), b / b.sum()  # the kernel compares distributions
    emd = np.abs(np.cumsum(a) - np.cumsum(b)).sum()
    assert abs(r2.degree - (2 - 2 * np.exp(-emd**2 / 2))) < 1e-12
    assert ebl.clustering_coefficients(star) == [0.0] * 6
    assert ebl.connected_components(ring) == 1 and ebl.connected_components([[], []]) == 2
    assert abs(ebl.wasserstein1([0.0, 1.0], [0.5, 1.5]) - 0.5) < 1e-12
    with pytest.raises(ValueError, match="empty"):
        ebl.graph_mmd([ring], [[]])
