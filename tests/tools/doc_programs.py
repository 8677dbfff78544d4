#!/usr/bin/python3
"""Turns the C++ blocks of README.md and docs/*.md into a CMake project of programs.

A ```cpp block is a complete program, unless the line before it is `<!-- program: NAME -->`: then
it is a part of program NAME, and the parts of one name are joined in the order they appear.
Every program must define main(). Writes <out>/CMakeLists.txt (one executable per program,
linking ebl::ebl from find_package(ebl)) and <out>/programs.txt (their names, one per line).

usage: doc_programs.py <source dir> <out dir>
"""
import pathlib
import re
import sys

src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
pages = [src / "README.md"] + sorted((src / "docs").glob("*.md"))
programs = {}
block = re.compile(r"(?:<!-- program: ([A-Za-z0-9_]+) -->\n)?```cpp\n(.*?)```", re.S)
for page in pages:
    for k, m in enumerate(block.finditer(page.read_text())):
        name = m.group(1) or f"{page.stem.lower()}_{k}"
        programs.setdefault(name, []).append(f"// from {page.name}\n{m.group(2)}")
bad = [n for n, parts in programs.items() if not any(re.search(r"\bint main\(", p) for p in parts)]
if bad:
    sys.exit(f"doc_programs: no main() in {', '.join(bad)} (mark fragments with <!-- program: NAME -->)")
lines = ["cmake_minimum_required(VERSION 3.25)", "project(doc_programs CXX)",
         "find_package(ebl 0.3 REQUIRED)"]
for name, parts in programs.items():
    (out / f"{name}.cpp").write_text("\n".join(parts))
    lines += [f"add_executable({name} {name}.cpp)", f"target_link_libraries({name} PRIVATE ebl::ebl)"]
(out / "CMakeLists.txt").write_text("\n".join(lines) + "\n")
(out / "programs.txt").write_text("\n".join(programs) + "\n")
print(f"{len(programs)} programs from {len(pages)} pages: {', '.join(programs)}")
