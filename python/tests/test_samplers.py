"""Samplers from Python against laws whose answer is known (a correlated 2-D Gaussian: MALA, HMC,
NUTS, adaptive MALA and parallel tempering exactly; Langevin with its known discretisation bias),
with tolerances derived from standard errors and fixed seeds; the diagnostics on draws of known
ESS; streams shared with C++; the GIL released and Ctrl-C honoured within a second."""
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import ebl

MU = np.array([1.0, -0.5])
A = np.array([[1.0, 0.5], [0.0, 1.2]])  # precision A^T A
COV = np.linalg.inv(A.T @ A)


def gaussian():
    return ebl.GaussianEnergy(MU, A)


def check_moments(x, mean, cov, z=5.0):
    """Mean and covariance of n independent draws within z standard errors of the truth."""
    n = len(x)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(x.mean(0) - mean) < z * se_mean), (x.mean(0), mean, se_mean)
    c = np.cov(x.T)
    # SE of a covariance entry for Gaussian draws: sqrt((S_ij^2 + S_ii S_jj) / n)
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert np.all(np.abs(c - cov) < z * se_cov), (c, cov, se_cov)


def start(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 2)) * 3.0


@pytest.mark.parametrize(
    "make",
    [
        lambda e: ebl.MALA(e, steps=300, step_size=0.3),
        lambda e: ebl.HMC(e, steps=60, leapfrog_steps=8, step_size=0.25),
        lambda e: ebl.NUTS(e, steps=30, warmup=150),
        lambda e: ebl.AdaptiveMALA(e, steps=100, warmup=200),
        lambda e: ebl.ParallelTempering(e, steps=300, temperatures=[1, 2, 4], step_size=0.3),
    ],
    ids=["mala", "hmc", "nuts", "adaptive_mala", "tempering"],
)
def test_exact_samplers_draw_the_gaussian(make):
    s = make(gaussian())
    x, stats = s.run(start(2000, 1), ebl.Rng(2))
    check_moments(x, MU, COV)
    assert 0.3 < stats.acceptance <= 1 and stats.gradient_evals > 0


def test_tempering_ladder():
    t = ebl.geometric_ladder(4, 8.0)
    np.testing.assert_allclose(t, [1, 2, 4, 8])
    s = ebl.ParallelTempering(gaussian(), steps=10)
    assert len(s.temperatures) == 8 and s.temperatures[-1] == 30  # the default ladder


def test_langevin_has_its_known_bias():
    # 1-D N(0, s^2): ULA's stationary variance is T s^2 / (1 - eps / (2 s^2))
    s2, eps = 1.0, 0.4
    e = ebl.GaussianEnergy(np.zeros(1), np.array([[1.0 / np.sqrt(s2)]]))
    x, stats = ebl.Langevin(e, steps=400, step_size=eps).run(np.zeros((4000, 1)), ebl.Rng(3))
    var = s2 / (1 - eps / (2 * s2))
    assert abs(x.var() - var) < 5 * var * np.sqrt(2 / len(x))
    assert stats.acceptance == 1 and len(stats.mean_energy) == 400


def test_traces_and_diagnostics():
    s = ebl.MALA(gaussian(), steps=400, step_size=0.5)
    x, stats, tr = s.run(start(4, 4), ebl.Rng(5), trace="energy")
    assert tr.shape == (4, 400)
    x, stats, tx = s.run(x, ebl.Rng(6), trace="x")
    assert tx.shape == (4, 400, 2)
    np.testing.assert_array_equal(tx[:, -1, :], x)  # the last draw is the returned state
    coord = tx[:, :, 0]
    assert 1.0 <= ebl.split_rhat(coord) < 1.05
    assert 0 < ebl.bulk_ess(coord) < 4 * 400 and 0 < ebl.tail_ess(coord)
    # independent draws: ESS about the number of draws (within a fifth), R-hat about 1
    iid = np.random.default_rng(7).standard_normal((4, 1000))
    assert abs(ebl.ess_basic(iid) / 4000 - 1) < 0.2
    assert abs(ebl.bulk_ess(iid) - ebl.effective_sample_size(iid)) == 0
    assert ebl.split_rhat(iid) < 1.01
    # an AR(1) chain with coefficient rho: ESS/n = (1 - rho) / (1 + rho)
    rho, n = 0.8, 20000
    z = np.random.default_rng(8).standard_normal((4, n))
    ar = np.zeros((4, n))
    for t in range(1, n):
        ar[:, t] = rho * ar[:, t - 1] + z[:, t]
    assert abs(ebl.ess_basic(ar) / (4 * n) - (1 - rho) / (1 + rho)) < 0.02
    acf = ebl.autocorrelation(ar, 3)
    assert abs(acf[1] - rho) < 0.02 and abs(acf[2] - rho**2) < 0.03
    with pytest.raises(ValueError, match="chains, draws"):
        ebl.bulk_ess(np.ones(5))


def test_nuts_reports_its_adaptation():
    s = ebl.NUTS(gaussian(), steps=50, warmup=200, target_accept=0.9)
    s.run(start(8, 9), ebl.Rng(10))
    a = s.adaptation
    assert a.target_accept == 0.9 and a.step_size > 0 and len(a.inverse_metric) == 2
    assert sum(s.depth_histogram) == 50 * 8 and s.mean_leapfrog_steps > 1
    assert ebl.NUTS(gaussian(), steps=1, warmup=1).run(start(2, 1), ebl.Rng(1))[1].acceptance >= 0
    s0 = ebl.NUTS(gaussian(), steps=1, warmup=5)
    s0.run(start(2, 1), ebl.Rng(1))
    assert s0.adaptation.target_accept == 0.8  # 0 means the sampler's default


def test_runs_repeat_exactly_and_leave_the_input_alone():
    e = gaussian()
    x0 = start(16, 11)
    keep = x0.copy()
    a, _ = ebl.Langevin(e, steps=50, step_size=0.05).run(x0, ebl.Rng(12))
    b, _ = ebl.Langevin(e, steps=50, step_size=0.05).run(x0, ebl.Rng(12))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x0, keep)
    # the generator is shared with C++: the same seed gives the same stream
    r1, r2 = ebl.Rng(5), ebl.Rng(5)
    assert r1.below(1000, size=10).tolist() == [r2.below(1000) for _ in range(10)]
    st = r1.state
    u = r1.uniform()
    r1.state = st
    assert r1.uniform() == u
    with pytest.raises(ValueError, match="all-zero"):
        r1.state = [0, 0, 0, 0]


def test_bad_input_raises():
    e = gaussian()
    with pytest.raises(ValueError, match="step size"):
        ebl.MALA(e, step_size=0.0)
    with pytest.raises(ValueError, match="maximum tree depth"):
        ebl.NUTS(e, max_depth=0)
    with pytest.raises(ValueError, match="target acceptance"):
        ebl.AdaptiveMALA(e, target_accept=1.5)
    with pytest.raises(ValueError, match="increase"):
        ebl.ParallelTempering(e, temperatures=[1, 1])
    with pytest.raises(ebl.ShapeError, match=r"\[n, d\]"):
        ebl.MALA(e).run(np.zeros(3), ebl.Rng(0))
    with pytest.raises(ebl.ShapeError, match=r"sub: shapes \[3,5\] and \[2\]"):
        ebl.MALA(e, steps=2).run(np.zeros((3, 5)), ebl.Rng(0))
    with pytest.raises(TypeError, match="ebl energy"):
        ebl.MALA("not an energy")
    with pytest.raises(ValueError, match="trace"):
        ebl.MALA(e).run(np.zeros((3, 2)), ebl.Rng(0), trace="everything")
    with pytest.raises(ValueError, match="observer needs threads = 1"):
        ebl.Langevin(e, threads=2).run(np.zeros((4, 2)), ebl.Rng(0), trace="energy")


def test_a_long_run_releases_the_gil():
    e = ebl.MlpEnergy(2, [256, 256], seed=0)
    s = ebl.Langevin(e, steps=300, step_size=0.01)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.002)

    th = threading.Thread(target=ticker)
    th.start()
    t0 = time.perf_counter()
    s.run(np.zeros((512, 2)), ebl.Rng(0))
    t1 = time.perf_counter()
    done.set()
    th.join()
    during = [t for t in ticks if t0 < t < t1]
    # the other thread kept ticking every few ms while the sampler ran
    assert t1 - t0 > 0.1 and len(during) >= 0.25 * (t1 - t0) / 0.002


INTERRUPTED = textwrap.dedent(
    """
    import sys, time, numpy as np, ebl
    e = ebl.MlpEnergy(2, [128, 128], seed=0, dtype="float32")
    kind = sys.argv[1]
    if kind == "nuts":
        call = lambda: ebl.NUTS(e, steps=10**7, warmup=10**6).run(np.zeros((64, 2)), ebl.Rng(0))
    elif kind == "langevin":
        call = lambda: ebl.Langevin(e, steps=10**8, threads=2).run(np.zeros((256, 2)), ebl.Rng(0))
    else:
        opt = ebl.Adam(e.parameters())
        cd = ebl.CD(e, opt, dim=2, steps=10**8, seed=1)
        before = [p.value.copy() for p in e.parameters()]
        call = lambda: cd.step(np.zeros((64, 2), dtype=np.float32))
    print("started", flush=True)
    t = time.perf_counter()
    try:
        call()
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - t:.3f}", flush=True)
    if kind == "cd":  # the step stopped before any update
        assert all((p.value == b).all() for p, b in zip(e.parameters(), before)) and cd.steps_done == 0
    # the interpreter is intact and the library usable
    x, st = ebl.MALA(e, steps=5).run(np.zeros((4, 2)), ebl.Rng(1))
    print("recovered", x.shape, flush=True)
    """
)


@pytest.mark.parametrize("kind", ["nuts", "langevin", "cd"])
def test_ctrl_c_interrupts_a_long_call_within_a_second(kind):
    # one OpenBLAS thread: on a loaded machine (CTest runs tests in parallel) OpenBLAS's own
    # threads make every product slow; the reaction time is what this test measures
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", INTERRUPTED, kind], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "started"
    time.sleep(0.5)
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    line = p.stdout.readline().strip()
    reacted = time.perf_counter() - sent
    p.wait(timeout=30)
    out, err = p.stdout.read(), p.stderr.read()  # (communicate would skip what readline buffered)
    assert line.startswith("interrupted"), (line, err)
    assert reacted < 1.0
    assert "recovered (4, 2)" in out, err
    assert p.returncode == 0, err
