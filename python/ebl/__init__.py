"""ebl: energy-based learning from first principles, from Python.

The C++ library ebl with numpy arrays at its edges. Every heavy loop (tapes, samplers, trainers)
runs in C++, without the GIL; Ctrl-C interrupts a long call with KeyboardInterrupt.

    import numpy as np, ebl
    energy = ebl.MlpEnergy(2, [128, 128], dtype="float32", seed=1)
    opt = ebl.Adam(energy.parameters(), lr=1e-3)
    cd = ebl.CD(energy, opt, dim=2, seed=2, steps=20, step_size=0.005)
    stats = cd.step(batch)                      # batch: [n, 2] numpy array
    x, chain = ebl.MALA(energy, steps=100).run(x0, ebl.Rng(3))

Classes exist for float32 and float64 (`MlpEnergy_float32`, ...); the names below choose one:
energies by their `dtype=` argument (default float64, the dtype of gradient checks), samplers and
trainers by the dtype of the energy they are given. Tape ops (ebl.exp, ebl.matmul, ...) take the
Vars of either dtype.
"""

from . import _ebl
from ._ebl import *  # noqa: F401,F403  (the ops, diagnostics, metrics, Rng, Checkpoint, ...)
from ._ebl import __version__  # noqa: F401

__all__ = [n for n in dir(_ebl) if not n.startswith("_") and not n.endswith(("_float32", "_float64"))]

_DTYPES = ("float32", "float64")


def _dtype_name(dtype):
    import numpy as np

    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise TypeError(f"ebl: dtype must be float32 or float64, not {name}")
    return name


def _named(make, name, classes, header):
    """Gives a dtype-choosing constructor its name, the classes it picks from, and their docs
    (the float64 class's description and constructor signature, with every option's default)."""
    make.__name__ = make.__qualname__ = name
    doc = classes["float64"]
    make.__doc__ = f"{header}\n\n{doc.__doc__ or ''}\n\n{doc.__init__.__doc__ or ''}"
    make.classes = classes
    return make


def _by_dtype(name):
    """A constructor that picks name_float32 or name_float64 from its dtype= argument."""
    classes = {d: getattr(_ebl, f"{name}_{d}") for d in _DTYPES}

    def make(*args, dtype="float64", **kwargs):
        return classes[_dtype_name(dtype)](*args, **kwargs)

    return _named(make, name, classes, f"{name}(..., dtype='float64'): builds {name}_float32 or {name}_float64.")


def _by_energy(name):
    """A constructor that picks name_float32 or name_float64 from the dtype of its first argument
    (an energy)."""
    classes = {d: getattr(_ebl, f"{name}_{d}") for d in _DTYPES}

    def make(energy, *args, **kwargs):
        dt = getattr(energy, "dtype", None)
        if dt not in classes:
            raise TypeError(f"{name}: the first argument must be an ebl energy, got {type(energy).__name__}")
        return classes[dt](energy, *args, **kwargs)

    return _named(make, name, classes, f"{name}(energy, ...): the {name} of the energy's dtype.")


def _by_params(name):
    """An optimizer of the dtype of the parameters it is given."""
    classes = {d: getattr(_ebl, f"{name}_{d}") for d in _DTYPES}

    def make(params, *args, **kwargs):
        params = list(params)
        dts = {p.dtype for p in params}
        if len(dts) != 1:
            raise TypeError(f"{name}: parameters of one dtype expected, got {sorted(dts) or 'none'}")
        return classes[dts.pop()](params, *args, **kwargs)

    return _named(make, name, classes, f"{name}(params, ...): the {name} of the parameters' dtype.")


# energies and tape objects, by dtype=
Tape = _by_dtype("Tape")
Parameter = _by_dtype("Parameter")
MlpEnergy = _by_dtype("MlpEnergy")
GaussianEnergy = _by_dtype("GaussianEnergy")
TapeEnergy = _by_dtype("TapeEnergy")
ExternalEnergy = _by_dtype("ExternalEnergy")
DiscreteAnswerEnergy = _by_dtype("DiscreteAnswerEnergy")
CnnEnergy = _by_dtype("CnnEnergy")
GraphEnergy = _by_dtype("GraphEnergy")
ClassifierEbm = _by_dtype("ClassifierEbm")


def CnnClassifierEbm(*args, dtype="float64", **kwargs):
    """A CNN classifier read as an EBM (ClassifierEbm_<dtype>.cnn)."""
    return getattr(_ebl, f"ClassifierEbm_{_dtype_name(dtype)}").cnn(*args, **kwargs)


JemTrainer = _by_energy("JemTrainer")
# samplers and trainers, by their energy's dtype
Langevin = _by_energy("Langevin")
MALA = _by_energy("MALA")
HMC = _by_energy("HMC")
NUTS = _by_energy("NUTS")
AdaptiveMALA = _by_energy("AdaptiveMALA")
ParallelTempering = _by_energy("ParallelTempering")
# optimizers, by their parameters' dtype; trainers by their energy's
Adam = _by_params("Adam")
SGD = _by_params("SGD")
CD = _by_energy("CD")
ObjectiveTrainer = _by_energy("ObjectiveTrainer")


def _installed_data_dir():
    """<prefix>/share/ebl when this package is installed under <prefix>/lib/python3.X/...: where
    `make install` put the digits (the library's own lookup knows the running program's prefix,
    which for Python is the interpreter's, not ours)."""
    import os
    import pathlib

    if os.environ.get("EBL_DATA_DIR"):
        return ""
    d = pathlib.Path(__file__).resolve().parents[4] / "share" / "ebl"
    return str(d) if (d / "digits.csv.gz").is_file() else ""


def digits_path(data_dir=""):
    """The digits file load_digits(data_dir) reads."""
    return _ebl.digits_path(data_dir or _installed_data_dir())


def load_digits(data_dir=""):
    """The 8x8 digits (1,797 images, pixels in [0, 1]) carried with the library: (x [n, 64] float32,
    labels, classes). Read from data_dir if given, else $EBL_DATA_DIR, else the installed copy
    (<prefix>/share/ebl), else the source tree's datasets/data."""
    return _ebl.load_digits(data_dir or _installed_data_dir())


def grid_1d(lo, hi, n, dtype="float64"):
    """Midpoints of n equal cells of [lo, hi] (a Domain, for log_partition and nll)."""
    return getattr(_ebl, f"grid_1d_{_dtype_name(dtype)}")(lo, hi, n)


def grid_2d(lo0, hi0, n0, lo1, hi1, n1, dtype="float64"):
    """The n0 x n1 grid of cell midpoints of [lo0, hi0] x [lo1, hi1] (a Domain)."""
    return getattr(_ebl, f"grid_2d_{_dtype_name(dtype)}")(lo0, hi0, n0, lo1, hi1, n1)


def binary_cube(dim, dtype="float64"):
    """The 2^dim points of {0, 1}^dim (a Domain for enumeration)."""
    return getattr(_ebl, f"binary_cube_{_dtype_name(dtype)}")(dim)


def toy2d_sample(name, n, rng, dtype="float64"):
    """n draws [n, 2] of the toy 2-D set `name` (toy2d_names()) from the generator rng."""
    return getattr(_ebl, f"toy2d_sample_{_dtype_name(dtype)}")(name, n, rng)


__all__ += [
    "Tape", "Parameter", "MlpEnergy", "GaussianEnergy", "TapeEnergy", "ExternalEnergy", "Langevin",
    "MALA", "HMC", "NUTS", "AdaptiveMALA", "ParallelTempering", "Adam", "SGD", "CD",
    "ObjectiveTrainer", "DiscreteAnswerEnergy", "CnnEnergy", "GraphEnergy", "ClassifierEbm",
    "CnnClassifierEbm", "JemTrainer", "digits_path", "load_digits", "grid_1d", "grid_2d", "binary_cube", "toy2d_sample",
]
