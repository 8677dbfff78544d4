"""Energies from Python: the MLP energy's E, grad_x E and grad_theta E equal PyTorch's on the same
weights (float64, to rounding; float32 to its precision), parameters read and set as arrays,
composition against its formulas, energies written in Python (on the tape, or as a black box
such as a PyTorch module), and exact log Z against the Gaussian's closed form."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ebl
from conftest import close


def torch_mlp(energy, x):
    """The same MLP in torch, from the energy's parameters (layer l: x W_l + b_l, silu between)."""
    ps = {p.name: torch.tensor(p.value.astype(np.float64), requires_grad=True) for p in energy.parameters()}
    h = torch.tensor(x, requires_grad=True)
    out, n = h, len(ps) // 2
    for l in range(n):
        out = out @ ps[f"layer{l}.W"] + ps[f"layer{l}.b"]
        if l + 1 < n:
            out = F.silu(out)
    return h, ps, out.reshape(-1)


@pytest.mark.parametrize("hidden", [[16], [32, 32]])
def test_mlp_energy_and_both_gradients_equal_torch(hidden):
    e = ebl.MlpEnergy(3, hidden, activation="silu", seed=5)
    x = np.random.default_rng(1).standard_normal((7, 3))
    h, ps, te = torch_mlp(e, x)
    close(e.energy(x), te)
    te.sum().backward()
    en, gx = e.grad_x(x)
    close(en, te)
    close(gx, h.grad)
    for p, g in zip(e.parameters(), e.grad_theta(x)):
        close(g, ps[p.name].grad)
        assert not p.grad.any()  # grad_theta leaves .grad untouched


def test_float32_energy_matches_to_float32_precision():
    e = ebl.MlpEnergy(2, [64, 64], seed=2, dtype="float32")
    assert e.dtype == "float32" and e.parameters()[0].value.dtype == np.float32
    x = np.random.default_rng(3).standard_normal((50, 2))  # float64 in: converted
    h, ps, te = torch_mlp(e, x.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(e.energy(x), te.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_parameters_are_read_and_set_as_arrays():
    e = ebl.MlpEnergy(2, [4], seed=0)
    p = e.parameters()[0]
    assert p.name == "layer0.W" and p.shape == [2, 4]
    x = np.ones((1, 2))
    before = e.energy(x)
    p.value = np.zeros((2, 4))
    for q in e.parameters():
        q.value = np.zeros(q.shape)
    assert e.energy(x)[0] == 0.0 and before[0] != 0.0
    del e  # a parameter keeps its energy alive
    assert (p.value == 0).all()


def test_composition_matches_its_formulas():
    a = ebl.GaussianEnergy(np.array([1.0, 0.0]), np.array([[1.0, 0.5], [0.0, 1.2]]))
    b = ebl.GaussianEnergy(np.array([-0.5, 1.0]), np.array([[0.8, 0.0], [0.3, 0.6]]))
    x = np.random.default_rng(4).standard_normal((6, 2))
    ea, eb = a.energy(x), b.energy(x)
    close(ebl.And([a, b], [0.5, 2.0]).energy(x), 0.5 * ea + 2.0 * eb)
    close(ebl.Or([a, b], s=2.0).energy(x), -np.logaddexp(-2 * ea, -2 * eb) / 2)
    lz = [a.log_z(), b.log_z()]
    close(ebl.Mixture([a, b], [0.3, 0.7], lz).energy(x),
          -np.logaddexp(np.log(0.3) - ea - lz[0], np.log(0.7) - eb - lz[1]))
    close(ebl.Not(a, b, 0.5).energy(x), ea - 0.5 * eb)
    close(ebl.Temper(a, 0.25).energy(x), 0.25 * ea)
    # trees nest, and a composite's parameters are its parts' union
    tree = ebl.Or([ebl.And([a, b]), ebl.Temper(a, 2.0)])
    assert len(tree.parameters()) == 4
    assert ebl.gradcheck(lambda t, v: tree(t, v), [x]).ok
    with pytest.raises(ValueError, match="MIXTURE"):
        ebl.Mixture([a, b], [0.3], lz)


def test_gaussian_log_z_by_quadrature_equals_the_closed_form():
    g = ebl.GaussianEnergy(np.array([0.3, -0.2]), np.array([[1.0, 0.4], [0.0, 0.9]]))
    grid = ebl.grid_2d(-9, 9, 300, -9, 9, 300)
    assert len(grid) == 90000 and grid.points.shape == (90000, 2)
    assert abs(ebl.log_partition(g, grid) - g.log_z()) < 1e-9
    data = np.random.default_rng(5).standard_normal((10, 2))
    assert abs(ebl.nll(g, grid, data) - (g.energy(data).mean() + g.log_z())) < 1e-9
    p = ebl.density(g, grid)
    assert abs(p.sum() * np.exp(grid.log_cell) - 1) < 1e-9
    # 1-D: the standard normal's log Z on a grid of midpoints
    std = ebl.GaussianEnergy(np.zeros(1), np.eye(1))
    g1 = ebl.grid_1d(-10, 10, 2000)
    assert g1.points.shape == (2000, 1) and abs(g1.log_cell - np.log(0.01)) < 1e-12
    assert abs(ebl.log_partition(std, g1) - 0.5 * np.log(2 * np.pi)) < 1e-9
    # at beta = 2: log Z(2) = log Z(1) - (d/2) log 2
    assert abs(ebl.log_partition(g, grid, beta=2.0) - g.log_z(2.0)) < 1e-9
    # on an enumerable set: log Z is a log-sum-exp
    cube = ebl.binary_cube(3)
    e3 = ebl.MlpEnergy(3, [5], seed=1)
    ev = e3.energy(cube.points)
    assert abs(ebl.log_partition(e3, cube) - np.log(np.exp(-ev).sum())) < 1e-12


def test_an_energy_written_on_the_tape_trains_and_differentiates():
    w = ebl.Parameter("w", np.array([[1.0, 0.2], [0.0, 0.7]]))

    def quad(t, x):
        return ebl.sum(ebl.square(x @ t.param(w)), 1) * 0.5

    e = ebl.TapeEnergy(quad, [w])
    x = np.random.default_rng(6).standard_normal((5, 2))
    close(e.energy(x), 0.5 * ((x @ w.value) ** 2).sum(1))
    (gw,) = e.grad_theta(x)
    tw = torch.tensor(w.value, requires_grad=True)
    (0.5 * ((torch.tensor(x) @ tw) ** 2).sum()).backward()
    close(gw, tw.grad)
    assert ebl.gradcheck(lambda t, v: e(t, v), [x], params=[w]).ok
    # its second derivatives exist (it is made of tape ops): exact score matching runs
    sm = ebl.ObjectiveTrainer(e, ebl.SGD([w], lr=0.01), kind="sm")
    loss, gnorm = sm.step(x)
    assert np.isfinite(loss) and gnorm > 0
    with pytest.raises(ValueError, match="must return a float64 Var"):
        ebl.TapeEnergy(lambda t, x: 3.0).energy(x)


def test_a_torch_module_sampled_as_an_external_energy():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def energy_and_grad(x):
        xt = torch.tensor(x, requires_grad=True)
        e = net(xt).reshape(-1)
        (g,) = torch.autograd.grad(e.sum(), xt)
        return e.detach().numpy(), g.numpy()

    ext = ebl.ExternalEnergy(energy_and_grad)
    x = np.random.default_rng(7).standard_normal((4, 2))
    en, g = ext.grad_x(x)
    close(en, energy_and_grad(x)[0])
    close(g, energy_and_grad(x)[1])
    assert ext.parameters() == []
    xs, stats = ebl.MALA(ext, steps=20, step_size=0.05).run(x, ebl.Rng(1))
    assert xs.shape == (4, 2) and 0 < stats.acceptance <= 1
    bad = ebl.ExternalEnergy(lambda x: (np.zeros(len(x) + 1), x))
    with pytest.raises(ValueError, match=r"external_energy.*\[4\]"):
        bad.energy(x)
    with pytest.raises(ValueError, match=r"\(energies, gradients\)"):
        ebl.ExternalEnergy(lambda x: 1.0).energy(x)
    with pytest.raises(ZeroDivisionError):  # the callable's own error comes through
        ebl.ExternalEnergy(lambda x: 1 / 0).energy(x)
