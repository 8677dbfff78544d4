"""Hostile input from Python: shapes, sizes, options and files that make no sense each raise one
Python exception with the library's message, and none crashes the interpreter. The calls run in
a child interpreter, so that a crash fails this test instead of ending the test run."""
import subprocess
import sys
import textwrap

CALLS = textwrap.dedent(
    r"""
    import numpy as np, ebl
    e = ebl.MlpEnergy(2, [4], seed=0)
    t = ebl.Tape()
    v22, v4 = t.input(np.zeros((2, 2))), t.input(np.zeros(4))
    opt = lambda: ebl.Adam(e.parameters())
    r3 = ebl.RBM(3, 2)
    calls = [
     lambda: e.energy(np.zeros((3, 0))),
     lambda: e.energy(np.zeros((0, 2))),
     lambda: e.energy(np.zeros((2, 2, 2))),
     lambda: e.grad_theta(np.zeros((3, 5))),
     lambda: ebl.MlpEnergy(2, [4], activation="nope"),
     lambda: ebl.Langevin(e, steps=-1),
     lambda: ebl.Langevin(e, steps=10**12),
     lambda: ebl.Langevin(e, step_size=float("nan")),
     lambda: ebl.Langevin(e, threads=0),
     lambda: ebl.Langevin(e).run(np.zeros((0, 2)), ebl.Rng(0)),
     lambda: ebl.NUTS(e, steps=1, warmup=1).run(np.zeros((0, 2)), ebl.Rng(0)),
     lambda: ebl.HMC(e, leapfrog_steps=-3),
     lambda: ebl.ParallelTempering(e, temperatures=[1, 2], step_sizes=[0.1]),
     lambda: ebl.CD(e, opt(), dim=2, buffer_size=0),
     lambda: ebl.CD(e, opt(), dim=3).step(np.zeros((4, 2))),
     lambda: ebl.CD(e, opt(), dim=2).step(np.zeros((0, 2))),
     lambda: ebl.CD(e, opt(), dim=2, sampler="pt"),
     lambda: ebl.ObjectiveTrainer(e, opt(), kind="dsm", dsm_sigmas=[]).step(np.zeros((4, 2))),
     lambda: ebl.ObjectiveTrainer(e, opt(), kind="ssm", ssm_projections=0).step(np.zeros((4, 2))),
     lambda: ebl.ObjectiveTrainer(e, opt(), kind="ed", ed_m=0).step(np.zeros((4, 2))),
     lambda: ebl.grid_2d(0, 1, 0, 0, 1, 0),
     lambda: ebl.log_partition(e, ebl.grid_1d(0, 1, 5)),
     lambda: ebl.binary_cube(100),
     lambda: ebl.mmd2_unbiased(np.zeros((1, 2)), np.zeros((1, 2)), [1.0]),
     lambda: ebl.bulk_ess(np.zeros((0, 0))),
     lambda: ebl.split_rhat(np.zeros((2, 1))),
     lambda: ebl.toy2d_sample("8gaussians", -1, ebl.Rng(0)),
     lambda: ebl.Rng(0).below(-5),
     lambda: ebl.Rng(0).below(0),
     lambda: ebl.Rng(0).normal_array([10**12, 10**12]),
     lambda: ebl.rbm_ais(r3, np.zeros(5), 10, 10, ebl.Rng(0)),
     lambda: ebl.rbm_ais(r3, np.zeros(3), 0, 0, ebl.Rng(0)),
     lambda: ebl.rbm_reverse_ais(r3, np.zeros(3), np.zeros((0, 3)), 10, ebl.Rng(0)),
     lambda: ebl.RBMTrainer(r3, ebl.SGD(r3.parameters()), k=0).step(np.zeros((2, 3))),
     lambda: ebl.calibration(np.zeros(3), np.zeros(2, bool)),
     lambda: ebl.auroc(np.zeros(0), np.zeros(3)),
     lambda: ebl.graph_mmd([[[5]]], [[[]]]),
     lambda: ebl.graph_mmd([[[-1]]], [[[]]]),
     lambda: ebl.graph_mmd([[[1], [1]]], [[[]]]),
     lambda: ebl.clustering_coefficients([[1], [7]]),
     lambda: ebl.answers(t.input(np.zeros((2, 3))), np.array([5, 0])),
     lambda: ebl.split_labeled(np.zeros((3, 2), np.float32), np.array([0, 1, 2]), 3, 3, 0),
     lambda: ebl.ClassifierEbm(2, 1),
     lambda: ebl.JemTrainer(ebl.ClassifierEbm(2, 2), dim=2).step(np.zeros((2, 2)), np.array([0, 9])),
     lambda: ebl.GraphEnergy(0, 0, 0),
     lambda: ebl.CnnEnergy(1, 2, 2, [(4, 5)]),
     lambda: ebl.CnnEnergy(1, 4, 4, [(4, 3, 0)]),
     lambda: ebl.Checkpoint.load("/dev/null"),
     lambda: ebl.Checkpoint.load("/"),
     lambda: ebl.reshape(v4, [3, -1]),
     lambda: ebl.transpose(v4),
     lambda: ebl.sum(v22, axis=5),
     lambda: ebl.permute(v22, [0, 0]),
     lambda: ebl.concat([], 0),
     lambda: ebl.gather(v22, [9, 9]),
     lambda: ebl.cols(v22, [9]),
     lambda: ebl.rows(v22, [-1]),
     lambda: ebl.conv2d(t.input(np.zeros((1, 1, 2, 2))), t.input(np.zeros((1, 1, 3, 3))), t.input(np.zeros(1))),
     lambda: ebl.avg_pool2d(t.input(np.zeros((1, 1, 2, 2))), 0),
     lambda: ebl.avg_pool2d(t.input(np.zeros((1, 1, 2, 2))), 3),
     lambda: ebl.hvp(ebl.sum(v22, 1), v22, np.zeros(3)),
     lambda: t.grad(v4),
     lambda: ebl.gradcheck(lambda tp, x: 1, [np.zeros(2)]),
     lambda: ebl.gradcheck(lambda tp, x: t.input(np.zeros(2)), [np.zeros(2)]),
     lambda: ebl.Parameter("p", np.zeros(2)).__setattr__("value", np.zeros(3)),
     lambda: ebl.And([]),
     lambda: ebl.Or([e], s=0.0),
     lambda: ebl.Mixture([e], [-1.0], [0.0]),
     lambda: ebl.TapeEnergy(lambda tp, x: x).energy(np.zeros((2, 2))),
     lambda: ebl.MALA(ebl.TapeEnergy(lambda tp, x: 1 / 0), steps=3).run(np.zeros((2, 2)), ebl.Rng(0)),
     lambda: ebl.Langevin(ebl.ExternalEnergy(lambda x: (None, None)), threads=2).run(np.zeros((4, 2)), ebl.Rng(0)),
     lambda: ebl.Langevin(ebl.ExternalEnergy(lambda x: (np.zeros(3), x))).run(np.zeros((4, 2)), ebl.Rng(0)),
    ]
    for i, c in enumerate(calls):
        try:
            c()
            print(f"{i}: no error")
        except (ValueError, TypeError, OSError, ZeroDivisionError, RuntimeError, MemoryError) as ex:
            print(f"{i}: {type(ex).__name__}: {ex}".splitlines()[0])
    print("done")
    """
)


def test_hostile_calls_raise_and_never_crash():
    p = subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert lines[-1] == "done"
    quiet = [l for l in lines[:-1] if l.endswith("no error")]
    assert not quiet, f"calls that should have raised: {quiet}"
    # the messages are the library's: they name what is wrong
    text = p.stdout
    for phrase in ["linear: x [3,0]", "unknown activation 'nope'", "steps >= 0", "threads must be >= 1",
                   "base biases [5] for 3", "lists neighbour 5", "lists neighbour -1", "too large", "block 0 needs", "it is a directory",
                   "not an ebl checkpoint", "label 9 of 2 classes", "must have shape [2]",
                   "ZeroDivisionError", "external_energy"]:
        assert phrase in text, phrase
    # no message from deep inside the standard library
    assert "vector::" not in text and "basic_filebuf" not in text, text
