"""Training from Python: the toy2d binary's CD run, written as a Python loop, reaches the same test
NLL at every evaluation (the same numbers: the streams are shared); a checkpoint the binary wrote
loads into the Python trainer (and the final parameters give the binary's final NLL); the
MCMC-free objectives train; a diverging run raises DivergenceError before changing anything."""
import json
import os
import subprocess

import numpy as np
import pytest

import ebl
from conftest import build_dir


def toy2d_in_python(cfg, eval_every, stop_after=None):
    """experiments/toy2d/main.cpp's CD loop (serial), from its config.json (stopped after
    stop_after steps of the run's schedule, if given)."""
    data_rng = ebl.Rng(cfg["seed"])
    train = ebl.toy2d_sample(cfg["dataset"], cfg["train_size"], data_rng, dtype="float32")
    test = ebl.toy2d_sample(cfg["dataset"], cfg["test_size"], data_rng, dtype="float32")
    energy = ebl.MlpEnergy(2, [cfg["hidden"]] * cfg["layers"], activation=cfg["activation"],
                           seed=cfg["seed"] + 1, dtype="float32")
    opt = ebl.Adam(energy.parameters(), lr=cfg["lr"])
    cd = ebl.CD(energy, opt, dim=2, seed=cfg["seed"] + 2, init=cfg["init"],
                steps=cfg["langevin_steps"], step_size=cfg["step_size"],
                temperature=cfg["temperature"], grad_clip=cfg["grad_clip"], threads=cfg["threads"],
                alpha=cfg["alpha"], noise_lo=-cfg["noise_box"], noise_hi=cfg["noise_box"],
                buffer_size=cfg["buffer"], restart_prob=cfg["restart"])
    box, n = cfg["box"], cfg["grid"]
    grid = ebl.grid_2d(-box, box, n, -box, box, n, dtype="float32")
    steps, lr0, lr1 = cfg["steps"], cfg["lr"], cfg["lr_final"]
    nlls = []
    for s in range(steps if stop_after is None else stop_after):
        batch = train[cd.rng.below(len(train), size=cfg["batch"])]
        opt.lr = lr0 + (lr1 - lr0) * s / max(1, steps - 1)
        cd.step(batch)
        if (s + 1) % eval_every == 0 or s + 1 == steps:
            nlls.append((s + 1, ebl.nll(energy, grid, test)))
    return energy, cd, nlls


def run_toy2d(tmp_path, *flags):
    exe = os.path.join(build_dir(), "experiments", "toy2d")
    p = subprocess.run([exe, "--smoke", "--out", str(tmp_path), *flags], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    (run,) = (tmp_path / "toy2d").iterdir()
    cfg = json.loads((run / "config.json").read_text())
    rows = [l.split(",") for l in (run / "eval.csv").read_text().split()[1:]]
    return run, cfg, [(int(r[0]), float(r[1])) for r in rows]


def test_the_toy2d_cd_loop_from_python_reaches_the_binary_s_nll(tmp_path):
    run, cfg, binary = run_toy2d(tmp_path)
    energy, cd, mine = toy2d_in_python(cfg, cfg["eval_every"])
    assert [s for s, _ in mine] == [s for s, _ in binary] and len(mine) >= 2
    for (_, a), (_, b) in zip(mine, binary):
        assert abs(a - b) <= 1e-8 * abs(b), (mine, binary)  # equal to the digits the CSV keeps

    # the binary's last checkpoint restores into this trainer: the same state, the same NLL
    c = ebl.Checkpoint.load(str(run / "checkpoint.bin"))
    fresh = ebl.MlpEnergy(2, [cfg["hidden"]] * cfg["layers"], seed=99, dtype="float32")
    cd2 = ebl.CD(fresh, ebl.Adam(fresh.parameters()), dim=2, buffer_size=cfg["buffer"])
    cd2.restore(c)
    assert cd2.steps_done == cfg["steps"]
    for p, q in zip(fresh.parameters(), energy.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
    assert cd2.rng.state == cd.rng.state


def test_the_binary_resumes_a_run_python_started(tmp_path):
    """Python trains half the smoke run and saves its checkpoint with the run's configuration;
    the C++ binary resumes it and ends where an uninterrupted binary run ends."""
    _, cfg, whole = run_toy2d(tmp_path / "whole")
    energy, cd, _ = toy2d_in_python(cfg, cfg["eval_every"], stop_after=cfg["steps"] // 2)
    c = cd.checkpoint()
    c.put_text("config", json.dumps(cfg))
    assert json.loads(c.strings["config"]) == cfg
    path = tmp_path / "from_python.bin"
    c.save(str(path))
    _, _, resumed = run_toy2d(tmp_path / "resumed", "--resume", str(path))
    assert resumed[-1][0] == whole[-1][0] and resumed[-1][1] == whole[-1][1], (resumed, whole)


@pytest.mark.parametrize("sampler", ["mala", "pt"])
def test_cd_with_the_other_dream_samplers(sampler):
    data = ebl.toy2d_sample("8gaussians", 1000, ebl.Rng(0), dtype="float32")
    e = ebl.MlpEnergy(2, [16], seed=1, dtype="float32")
    cd = ebl.CD(e, ebl.Adam(e.parameters()), dim=2, sampler=sampler, steps=5, step_size=0.01,
                tempering_ladder=[1, 2, 4] if sampler == "pt" else [], buffer_size=200)
    st = cd.step(data[:64])
    # Metropolis-adjusted: proposals counted (unadjusted Langevin counts none)
    assert st.chain.proposals > 0 and 0 < st.chain.acceptance <= 1 and st.chain.gradient_evals >= 5
    c = cd.checkpoint()
    assert ("dream/replicas" in c.arrays) == (sampler == "pt")


def test_checkpoints_round_trip_and_resume_exactly(tmp_path):
    def make():
        e = ebl.MlpEnergy(2, [16], seed=3, dtype="float32")
        opt = ebl.Adam(e.parameters(), lr=1e-2)
        return e, ebl.CD(e, opt, dim=2, seed=4, steps=5, buffer_size=100)

    data = ebl.toy2d_sample("moons", 500, ebl.Rng(1), dtype="float32")
    e1, cd1 = make()
    for s in range(6):
        cd1.step(data[s * 32:(s + 1) * 32])
        if s == 2:
            path = tmp_path / "mid.bin"
            cd1.checkpoint().save(str(path))
    e2, cd2 = make()
    cd2.restore(ebl.Checkpoint.load(str(path)))
    assert cd2.steps_done == 3
    for s in range(3, 6):
        cd2.step(data[s * 32:(s + 1) * 32])
    for p, q in zip(e1.parameters(), e2.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
    np.testing.assert_array_equal(cd1.negatives, cd2.negatives)
    c = ebl.Checkpoint.load(str(path))
    assert "param/layer0.W" in c.arrays and c.integers["step"] == 3
    bad = tmp_path / "bad.bin"
    bad.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ebl.IoError):
        ebl.Checkpoint.load(str(bad))
    with pytest.raises(OSError):
        ebl.Checkpoint.load(str(tmp_path / "missing.bin"))


@pytest.mark.parametrize("kind", ["sm", "dsm", "ssm", "ed"])
def test_mcmc_free_objectives_lower_the_exact_nll(kind):
    data = ebl.toy2d_sample("8gaussians", 2000, ebl.Rng(0))
    test = ebl.toy2d_sample("8gaussians", 500, ebl.Rng(1))
    e = ebl.MlpEnergy(2, [32, 32], seed=1)
    grid = ebl.grid_2d(-5, 5, 60, -5, 5, 60)
    before = ebl.nll(e, grid, test)
    tr = ebl.ObjectiveTrainer(e, ebl.Adam(e.parameters(), lr=3e-3), kind=kind, seed=2,
                              dsm_sigmas=[0.3])
    rng = ebl.Rng(3)
    for _ in range(150):
        loss, gnorm = tr.step(data[rng.below(len(data), size=128)])
        assert np.isfinite(loss) and gnorm >= 0
    assert tr.steps_done == 150
    assert ebl.nll(e, grid, test) < before - 0.3


def test_a_diverging_step_raises_before_any_change():
    e = ebl.MlpEnergy(2, [8], seed=0)
    opt = ebl.SGD(e.parameters(), lr=0.1)
    cd = ebl.CD(e, opt, dim=2, steps=2, loss_bound=1e-12)  # any loss is "too large"
    before = [p.value for p in e.parameters()]
    with pytest.raises(ebl.DivergenceError, match="diverged at step 1"):
        cd.step(np.ones((8, 2)))
    assert isinstance(ebl.DivergenceError("x"), RuntimeError)
    for p, b in zip(e.parameters(), before):
        np.testing.assert_array_equal(p.value, b)
    with pytest.raises(ValueError, match="unknown chain init"):
        ebl.CD(e, opt, dim=2, init="everywhere")
    with pytest.raises(ValueError, match="unknown objective"):
        ebl.ObjectiveTrainer(e, opt, kind="mle")
    with pytest.raises(TypeError, match="one dtype"):
        ebl.Adam([])
