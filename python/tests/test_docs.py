"""The Python blocks of the docs are programs: each runs as written (in a scratch folder)."""
import pathlib
import re
import subprocess
import sys

import os

import pytest

import ebl

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def blocks():
    for page in PAGES:
        for k, m in enumerate(re.finditer(r"```python\n(.*?)```", page.read_text(), re.S)):
            yield pytest.param(m.group(1), id=f"{page.name}:{k}")


@pytest.mark.parametrize("code", list(blocks()))
def test_python_block_runs(code, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(ebl.__file__).resolve().parents[1]))
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
