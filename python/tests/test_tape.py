"""The tape from Python: every op of the op table against PyTorch in float64 (values and
gradients, to rounding), Python's operators, gradients of gradients, the gradient checker, and
the errors a user can provoke (each a Python exception with the library's message)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ebl
from conftest import close


def run_both(ebl_fn, torch_fn, *arrays, wrt=None):
    """y = fn(inputs) on an ebl tape and in torch; compares y and the gradients of sum(w * y)."""
    t = ebl.Tape()
    xs = [t.input(a, requires_grad=True) for a in arrays]
    y = ebl_fn(*xs)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ty = torch_fn(*ts)
    close(y.value, ty)
    w = np.random.default_rng(7).standard_normal(y.shape)
    loss = ebl.sum(y * t.constant(w))
    t.backward(loss, xs)
    (ty * torch.tensor(w)).sum().backward()
    for k, (x, tx) in enumerate(zip(xs, ts)):
        if wrt is not None and k not in wrt:
            continue
        close(t.grad(x), tx.grad)


def r(*shape, seed=0, off_zero=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    if off_zero:
        a = np.where(a >= 0, a + 0.1, a - 0.1)
    return a


def test_elementwise_ops_match_torch():
    a, b = r(4, 3, seed=1), r(4, 3, seed=2)
    pos = np.abs(r(4, 3, seed=3)) + 0.5
    run_both(ebl.add, torch.add, a, r(3, seed=4))  # broadcast
    run_both(ebl.sub, torch.sub, a, r(1, 3, seed=5))
    run_both(ebl.mul, torch.mul, a, b)
    run_both(ebl.div, torch.div, a, pos)
    run_both(ebl.neg, torch.neg, a)
    run_both(lambda x: ebl.affine(x, 2.5, -1.0), lambda x: 2.5 * x - 1.0, a)
    run_both(lambda x: ebl.rdiv(3.0, x), lambda x: 3.0 / x, pos)
    run_both(ebl.exp, torch.exp, a)
    run_both(ebl.log, torch.log, pos)
    run_both(ebl.sqrt, torch.sqrt, pos)
    run_both(ebl.square, torch.square, a)
    run_both(lambda x: ebl.pow(x, 2.5), lambda x: x**2.5, pos)
    run_both(ebl.abs, torch.abs, r(4, 3, seed=6, off_zero=True))
    run_both(ebl.relu, torch.relu, r(4, 3, seed=7, off_zero=True))
    run_both(lambda x: ebl.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2), r(4, 3, seed=8, off_zero=True))
    run_both(ebl.sigmoid, torch.sigmoid, a)
    run_both(ebl.tanh, torch.tanh, a)
    run_both(ebl.softplus, F.softplus, a)
    run_both(ebl.silu, F.silu, a)
    run_both(lambda x: ebl.clamp(x, -0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5), a)


def test_reductions_and_softmax_match_torch():
    a = r(3, 4, 5, seed=11)
    run_both(ebl.sum, torch.sum, a)
    run_both(lambda x: ebl.sum(x, axis=1), lambda x: x.sum(1), a)
    run_both(lambda x: ebl.sum(x, axis=-1, keepdims=True), lambda x: x.sum(-1, keepdim=True), a)
    run_both(ebl.mean, torch.mean, a)
    run_both(lambda x: ebl.mean(x, axis=2), lambda x: x.mean(2), a)
    run_both(lambda x: ebl.mean(x, [1, 2]), lambda x: x.mean((1, 2)), a)
    run_both(lambda x: ebl.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1), a)
    run_both(lambda x: ebl.log_softmax(x, 2), lambda x: F.log_softmax(x, 2), a)
    run_both(lambda x: ebl.softmax(x, 0), lambda x: F.softmax(x, 0), a)
    run_both(lambda x: ebl.max(x, 1), lambda x: x.max(1).values, a)
    run_both(lambda x: ebl.min(x, 2, keepdims=True), lambda x: x.min(2, keepdim=True).values, a)


def test_products_shapes_and_indexing_match_torch():
    a, b = r(4, 3, seed=21), r(3, 5, seed=22)
    run_both(ebl.matmul, torch.matmul, a, b)
    run_both(lambda x, y: x @ y, torch.matmul, a, b)
    run_both(lambda x, y: ebl.matmul(x, y, trans_a=True), lambda x, y: x.T @ y, r(3, 4, seed=23), b)
    run_both(lambda x, y: ebl.matmul(x, y, trans_b=True), lambda x, y: x @ y.T, a, r(5, 3, seed=24))
    run_both(ebl.linear, lambda x, w, c: x @ w + c, a, b, r(5, seed=25))
    run_both(ebl.bmm, torch.bmm, r(2, 4, 3, seed=26), r(2, 3, 5, seed=27))
    run_both(lambda x: ebl.reshape(x, [2, -1]), lambda x: x.reshape(2, -1), a)
    run_both(ebl.transpose, lambda x: x.T, a)
    run_both(lambda x: ebl.permute(x, [2, 0, 1]), lambda x: x.permute(2, 0, 1), r(2, 3, 4, seed=28))
    run_both(lambda x: ebl.rows(x, [3, 0, 3]), lambda x: x[[3, 0, 3]], a)
    run_both(lambda x: ebl.cols(x, [2, 2, 0]), lambda x: x[:, [2, 2, 0]], a)
    run_both(lambda x: ebl.gather(x, [0, 2, 1, 2]), lambda x: x[torch.arange(4), torch.tensor([0, 2, 1, 2])], a)
    run_both(lambda x, y: ebl.concat([x, y], 1), lambda x, y: torch.cat([x, y], 1), a, r(4, 2, seed=29))


def test_images_match_torch():
    x, w, b = r(2, 3, 7, 6, seed=31), r(4, 3, 3, 3, seed=32), r(4, seed=33)
    run_both(lambda *v: ebl.conv2d(*v, stride=2, padding=1), lambda *v: F.conv2d(*v, stride=2, padding=1), x, w, b)
    run_both(lambda v: ebl.avg_pool2d(v, 2), lambda v: F.avg_pool2d(v, 2), r(2, 3, 6, 4, seed=34))
    # conv2d's VJPs as ops: the gradients torch computes
    gy = r(2, 4, 4, 3, seed=35)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    F.conv2d(tx, tw, torch.tensor(b), stride=2, padding=1).backward(torch.tensor(gy))
    t = ebl.Tape()
    close(ebl.conv2d_input_grad(t.input(gy), t.input(w), 7, 6, 2, 1).value, tx.grad)
    close(ebl.conv2d_weight_grad(t.input(x), t.input(gy), 3, 3, 2, 1).value, tw.grad)
    tp = torch.tensor(r(2, 3, 6, 4, seed=34), requires_grad=True)
    gp = r(2, 3, 3, 2, seed=36)
    F.avg_pool2d(tp, 2).backward(torch.tensor(gp))
    close(ebl.avg_pool2d_grad(t.input(gp), 6, 4, 2, 2).value, tp.grad)


def test_python_operators_with_scalars_and_float32():
    a = r(3, 2, seed=41)
    run_both(lambda x: (2.0 * x + 1.0) / 3.0 - x * x, lambda x: (2.0 * x + 1.0) / 3.0 - x * x, a)
    run_both(lambda x: 1.0 - x, lambda x: 1.0 - x, a)
    run_both(lambda x: -(x**3.0), lambda x: -(x**3.0), a)
    run_both(lambda x: 2.0 / (ebl.square(x) + 1.0), lambda x: 2.0 / (x * x + 1.0), a)
    t = ebl.Tape(dtype="float32")
    x = t.input(a.astype(np.float32), requires_grad=True)
    y = ebl.sum(ebl.tanh(x))
    t.backward(y)
    assert t.grad(x).dtype == np.float32
    np.testing.assert_allclose(t.grad(x), 1 - np.tanh(a) ** 2, rtol=1e-6)
    assert y.dtype == "float32" and isinstance(y.item(), float)


def test_parameters_on_the_tape():
    w = ebl.Parameter("w", r(2, 3, seed=51))
    t = ebl.Tape()
    x = t.input(r(4, 2, seed=52))
    y = ebl.sum(ebl.tanh(x @ t.param(w)))
    t.backward(y)
    tw = torch.tensor(w.value, requires_grad=True)
    torch.tanh(torch.tensor(x.value) @ tw).sum().backward()
    close(w.grad, tw.grad)
    t.clear()
    y2 = ebl.sum(ebl.tanh(t.input(r(4, 2, seed=52)) @ t.param(w)))
    t.backward(y2, [], [w])  # accumulates
    close(w.grad, 2 * tw.grad)
    w.zero_grad()
    assert not w.grad.any()
    with pytest.raises(ValueError, match=r"Parameter 'w'.*\[3,2\].*\[2,3\]"):
        w.value = np.zeros((3, 2))
    w.value = np.ones((2, 3))
    assert (w.value == 1).all() and w.shape == [2, 3]


def test_gradients_of_gradients_match_torch():
    a = r(5, 3, seed=61)
    v = r(5, 3, seed=62)
    t = ebl.Tape()
    x = t.input(a, requires_grad=True)
    e = ebl.sum(ebl.softplus(x) * ebl.tanh(x), 1)  # energies [n]
    (g,) = ebl.gradients(ebl.sum(e), [x])
    hv = ebl.hvp(e, x, v)
    lap = ebl.laplacian(e, x)
    tx = torch.tensor(a, requires_grad=True)
    te = (F.softplus(tx) * torch.tanh(tx)).sum(1)
    (tg,) = torch.autograd.grad(te.sum(), tx, create_graph=True)
    close(g.value, tg)
    (thv,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx, retain_graph=True)
    close(hv.value, thv)
    # the Laplacian: diagonal of the Hessian, which is diagonal here (the energy is separable)
    (tdiag,) = torch.autograd.grad(tg.sum(), tx, retain_graph=True)
    close(lap.value, tdiag.sum(1))
    # a gradient recorded on the tape is differentiated again by backward
    t.backward(ebl.sum(ebl.grad_norm_sq(e, x)), [x])
    (tgn,) = torch.autograd.grad((tg**2).sum(), tx)
    close(t.grad(x), tgn)


def test_gradcheck_passes_and_catches_a_wrong_gradient():
    rep = ebl.gradcheck(lambda t, x, y: ebl.tanh(x @ y) * 2.0, [r(3, 2, seed=71), r(2, 4, seed=72)])
    assert rep.ok and rep.checked == 14 and bool(rep)
    p = ebl.Parameter("p", r(2, seed=73))
    rep = ebl.gradcheck(lambda t, x: ebl.silu(x * t.param(p)), [r(3, 2, seed=74)], params=[p])
    assert rep.ok and rep.checked == 8
    assert ebl.second_order_gradcheck(lambda t, x: ebl.sum(ebl.softplus(x) * x, 1), [r(4, 3, seed=75)]).ok

    # an external energy whose gradient is wrong by a factor: the checker fails and says where
    bad = ebl.ExternalEnergy(lambda x: (0.5 * (x**2).sum(1), 1.1 * x))
    rep = ebl.gradcheck(lambda t, x: bad(t, x), [r(3, 2, seed=76)])
    assert not rep.ok and "input 0" in rep.worst_where and "FAILED" in repr(rep)


def test_errors_are_python_exceptions_with_the_library_message():
    t = ebl.Tape()
    a, b = t.input(np.zeros((256, 3))), t.input(np.zeros((2, 128)))
    with pytest.raises(ebl.ShapeError, match=r"matmul: \[256,3\] x \[2,128\]"):
        a @ b
    with pytest.raises(ValueError):  # a ShapeError is a ValueError
        ebl.add(t.input(np.zeros((2, 3))), t.input(np.zeros((4, 3))))
    other = ebl.Tape()
    with pytest.raises(ValueError, match="different tapes"):
        a + other.input(np.zeros((256, 3)))
    stale = t.input(np.ones(3))
    t.clear()
    with pytest.raises(ValueError, match="cleared"):
        stale.value
    x = ebl.Tape().input(np.ones(2))
    import gc

    gc.collect()
    with pytest.raises(ValueError, match="no longer exists"):
        ebl.exp(x)
    with pytest.raises(TypeError):  # float32 and float64 Vars do not mix
        ebl.add(ebl.Tape(dtype="float32").input(np.ones(2)), ebl.Tape().input(np.ones(2)))
    with pytest.raises(ValueError, match="item"):
        t.input(np.ones(3)).item()
    t2 = ebl.Tape()
    x2 = t2.input(np.ones((2, 2)), requires_grad=True)
    y2 = ebl.sum(x2)
    t2.backward(y2, [x2])
    with pytest.raises(Exception, match="."):
        t2.grad(t2.input(np.ones(2)))  # a leaf that was not asked for
    # a missing differentiable VJP is named
    ext = ebl.ExternalEnergy(lambda x: ((x**2).sum(1), 2 * x))
    t3 = ebl.Tape()
    x3 = t3.input(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(ValueError, match="external_energy"):
        ebl.gradients(ebl.sum(ext(t3, x3)), [x3])
    with pytest.raises(ValueError, match="rows: indices must be >= 0"):
        ebl.rows(t3.input(np.ones((2, 2))), [-1])
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        ebl.Tape(dtype="int32")
