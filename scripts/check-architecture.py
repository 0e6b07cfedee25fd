#!/usr/bin/env python3
"""Checks that docs/ARCHITECTURE.md tells the truth about the module structure.

cmake/outrider_module.cmake holds the allowed-dependency table that the build
enforces; docs/ARCHITECTURE.md states the same table for readers, and its
folder table lists every module folder under src/. This script compares them
and exits non-zero naming each difference. Run by CTest (architecture_doc).
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
cmake = (root / "cmake/outrider_module.cmake").read_text()
doc = (root / "docs/ARCHITECTURE.md").read_text()

allowed = {}
for name, deps in re.findall(r'^set\(OUTRIDER_ALLOWED_(\w+)\s*"?([^")]*)"?\)', cmake, re.M):
    allowed[name] = set(deps.split())

documented = {}
for line in doc.splitlines():
    m = re.match(r"^\|\s*(\w+)\s*\|\s*(.*?)\s*\|\s*$", line)
    if not m or m.group(1) not in allowed:
        continue
    text = re.sub(r"\([^)]*\)", "", m.group(2))  # drop remarks in parentheses
    if text.strip().startswith("every module"):
        documented[m.group(1)] = None  # "every module below it": checked below
        continue
    documented[m.group(1)] = {w.strip() for w in text.split(",") if re.fullmatch(r"\w+", w.strip())}

problems = []
for name, deps in sorted(allowed.items()):
    if name not in documented:
        problems.append(f"module '{name}' is in cmake/outrider_module.cmake but not in the table of docs/ARCHITECTURE.md")
    elif documented[name] is None:
        missing = set(allowed) - deps - {name, "testing"}
        if missing:
            problems.append(f"'{name}' is documented as depending on every module but may not use: {sorted(missing)}")
    elif documented[name] != deps:
        problems.append(f"module '{name}': cmake allows {sorted(deps)}, docs/ARCHITECTURE.md says {sorted(documented[name])}")

modules_in_src = {p.parent.name for p in (root / "src").glob("*/CMakeLists.txt")}
for name in sorted(modules_in_src - set(allowed)):
    problems.append(f"src/{name}/ is not in cmake/outrider_module.cmake")
for name in sorted(modules_in_src):
    if f"`src/{name}/`" not in doc:
        problems.append(f"src/{name}/ is missing from the folder table of docs/ARCHITECTURE.md")

for p in problems:
    print("architecture:", p)
sys.exit(1 if problems else 0)
