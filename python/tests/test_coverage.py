"""Every name the module exposes is used by some test here, every public class and function
has a docstring, and help() shows options with their defaults."""
import pathlib
import re

import ebl
from ebl import _ebl

HERE = pathlib.Path(__file__).parent


def exposed():
    names = set()
    for n in dir(_ebl):
        if n.startswith("_"):
            continue
        names.add(re.sub(r"_float(32|64)$", "", n))
    return names


def test_every_exposed_name_is_exercised_by_a_test():
    used = set()
    for f in HERE.glob("test_*.py"):
        used |= set(re.findall(r"ebl\.([A-Za-z_][A-Za-z0-9_]*)", f.read_text()))
        used |= set(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)\b", f.read_text()))  # result types' members
    # result types are exercised through the calls that return them
    returned = {"ChainStats", "CdStepStats", "Adaptation", "GradcheckReport", "Calibration",
                "CalibrationBin", "Auroc", "Domain", "Var", "Energy", "Optimizer", "AisResult",
                "AnswerSet", "ClassifierEval", "CollapseReport"}
    missing = sorted(exposed() - used - returned)
    assert not missing, f"exposed but never called in a test: {missing}"


def test_everything_exposed_is_documented():
    undocumented = []
    for n in dir(_ebl):
        if n.startswith("_"):
            continue
        obj = getattr(_ebl, n)
        if callable(obj) and not (obj.__doc__ or "").strip():
            undocumented.append(n)
    assert not undocumented, undocumented
    doc = ebl.CD.__doc__
    for opt in ("steps: int = 20", "step_size: float = 0.01", "init: str = 'persistent'",
                "buffer_size: int = 10000", "restart_prob: float = 0.05"):
        assert opt in doc, opt
    assert "target_accept: float = 0.0" in ebl.NUTS.__doc__
