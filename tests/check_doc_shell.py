#!/usr/bin/python3
"""Runs the shell commands of README.md and docs/ that a user would paste, so that none can drift.

Commands are run in order in a scratch folder where `build` points at the build tree, the
experiments at their smoke sizes (`--smoke` appended: a command's own flags still hold, so
`--resume` and `--learned` find the runs that earlier commands made). What cannot run here is
listed with the reason (and where it is exercised instead); an unknown command fails the test,
so a new block must be runnable or explained.

usage: check_doc_shell.py <build dir> <source dir> <scratch dir>
"""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time

build, src, scratch = (pathlib.Path(a).resolve() for a in sys.argv[1:4])
if scratch.exists():
    shutil.rmtree(scratch)
scratch.mkdir(parents=True)
(scratch / "build").symlink_to(build)

# Not run here, and why (each is exercised elsewhere, or needs what a test machine lacks).
ELSEWHERE = [
    (r"^make test\b", "CI's own command (.ci/run runs it)"),
    (r"^make install && python3", "install_and_use imports the installed package"),
    (r"^make install\b", "CTest's install_and_use installs the build to a prefix and uses it"),
    (r"^PYTHONPATH=build/python python3", "the pytest suite imports the module the same way"),
    (r"--fashion\b", "downloads Debian's Fashion-MNIST (a network install), not done in tests"),
    (r"--hostfile\b", "needs several machines"),
]

# the README first, toy2d before the pages that read its runs, MPI last (its runs take the
# default folder names that a page's --resume expects from its own serial run)
first, last = ["install.md", "toy2d.md"], ["mpi.md"]
pages = [src / "README.md"] + sorted(
    (src / "docs").glob("*.md"),
    key=lambda p: (1 if p.name in first else 2 if p.name not in last else 3,
                   first.index(p.name) if p.name in first else 0, p.name))
commands = []
for page in pages:
    for m in re.finditer(r"```sh\n(.*?)```", page.read_text(), re.S):
        for line in m.group(1).splitlines():
            cmd = re.sub(r"\s+#.*$", "", line).strip()
            if cmd and not cmd.startswith("#"):
                commands.append((page.name, cmd))

mpi_flags = ["--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
failed = 0
for page, cmd in commands:
    reason = next((why for pat, why in ELSEWHERE if re.search(pat, cmd)), None)
    if reason:
        print(f"[{page}] {cmd}\n    not run here: {reason}")
        continue
    argv = shlex.split(cmd)
    if argv[:2] == ["make", "run"]:  # its job (the build is the one under test)
        argv = ["build/experiments/toy2d"]
    if argv[0] == "mpirun":
        if shutil.which("mpirun") is None or not (build / "tests" / "test_mpi").exists():
            print(f"[{page}] {cmd}\n    not run here: MPI is not built")
            continue
        argv = argv[:1] + mpi_flags + argv[1:]
    elif not argv[0].startswith("build/experiments/"):
        print(f"[{page}] {cmd}\n    FAIL: a command this test does not know how to run")
        failed += 1
        continue
    if "--help" not in argv:
        argv.append("--smoke")
    t = time.time()
    p = subprocess.run(argv, cwd=scratch, capture_output=True, text=True, timeout=900)
    status = "ok" if p.returncode == 0 else f"FAIL (exit {p.returncode}): {p.stderr.strip()[-400:]}"
    print(f"[{page}] {' '.join(argv)}\n    {status} ({time.time() - t:.0f} s)")
    failed += p.returncode != 0
print(f"{len(commands)} commands, {failed} failed")
sys.exit(1 if failed else 0)
