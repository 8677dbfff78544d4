"""Shared fixtures: float64 PyTorch as the oracle, seeded inputs, and where the C++ build is."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # Debian's python3-torch (scripts/install-deps.sh installs it)
torch.set_default_dtype(torch.float64)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def build_dir():
    """The CMake build folder (CTest sets EBL_BUILD_DIR)."""
    d = os.environ.get("EBL_BUILD_DIR")
    if not d:
        pytest.skip("EBL_BUILD_DIR is not set (CTest sets it): the C++ binaries are not at hand")
    return d


def close(a, b, rtol=1e-12, atol=1e-12):
    """Equal to rounding in float64: the same formula evaluated in another order."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b.detach().numpy() if hasattr(b, "detach") else b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
