#!/usr/bin/env python3
"""The architecture's rules, checked on Package.swift and the sources (run by scripts/test.sh; standard library only).

- MegatronBackend (the protocol) and everything it depends on are plain Swift targets with no system library, C target,
  package product or linker setting: it links nothing but Foundation.
- The model (MegatronModel) and the backend checks depend on the protocol, never on a backend, and no file of theirs
  imports one; every backend (MegatronCPU, MegatronCUDA) depends on the protocol and on no other backend or the model.
- Only MegatronBERT (the one place that opens a device) and the executable name the backends.
- Every target has a row in the README's Layout table and is named in docs/architecture.md.

    swift package dump-package | python3 scripts/check_targets.py
"""
import json
import pathlib
import re
import sys

package = json.load(sys.stdin)
targets = {t["name"]: t for t in package["targets"]}
problems = []


def dependencies(name):
    """The target names `name` depends on directly, and the package products it uses."""
    names, products = [], []
    for dependency in targets[name]["dependencies"]:
        kind, value = next(iter(dependency.items()))
        (products if kind == "product" else names).append(value[0])
    return names, products


def closure(name):
    seen, stack = set(), [name]
    while stack:
        for dependency in dependencies(stack.pop())[0]:
            if dependency not in seen:
                seen.add(dependency)
                stack.append(dependency)
    return seen


backends = {"MegatronCPU", "MegatronCUDA"}
for name in ["MegatronBackend", *sorted(closure("MegatronBackend"))]:
    target = targets[name]
    _, products = dependencies(name)
    if target["type"] != "regular" or products or target.get("settings"):
        problems.append(f"MegatronBackend must link nothing but Foundation, but it depends on {name} "
                        f"({target['type']}, products {products}, settings {target.get('settings')})")
    source = pathlib.Path(target.get("path") or f"Sources/{name}")
    if any(f.suffix in (".c", ".h", ".cpp") for f in source.rglob("*")):
        problems.append(f"{name} (under MegatronBackend) holds C sources")

for name in ["MegatronModel", "MegatronBackendChecks"]:
    reached = closure(name)
    if reached & (backends | {"MegatronBERT"}):
        problems.append(f"{name} must see the Backend protocol only, but depends on {sorted(reached & (backends | {'MegatronBERT'}))}")
    for file in pathlib.Path(f"Sources/{name}").rglob("*.swift"):
        for backend in backends | {"MegatronBERT"}:
            if re.search(rf"^\s*(@\w+\s+)*import\s+{backend}\b", file.read_text(), re.M):
                problems.append(f"{file} imports {backend}: the model and the checks see the Backend protocol only")

for backend in backends:
    others = closure(backend) & (backends | {"MegatronModel", "MegatronBERT"})
    if others:
        problems.append(f"{backend} must depend on the protocol, not on {sorted(others)}")
    if "MegatronBackend" not in dependencies(backend)[0]:
        problems.append(f"{backend} does not depend on MegatronBackend")

for name, target in targets.items():
    if target["type"] in ("test", "system") or name == "TestSupport":
        continue
    if backends & set(dependencies(name)[0]) and name not in ("MegatronBERT", "megatron-bert") and name not in backends:
        problems.append(f"{name} names a backend directly; only MegatronBERT (Device) opens backends")

# Settings: the environment is read in one place (MegatronBackend/Settings.swift); serve's flags fall back on TEI's
# variables where ArgumentParser declares them.
for file in pathlib.Path("Sources").rglob("*.swift"):
    if file.name in ("Settings.swift", "ServeCommand.swift"):
        continue
    text = file.read_text()
    if "processInfo.environment" in text or re.search(r"\bgetenv\(\s*\"MEGATRON_BERT", text):
        problems.append(f"{file} reads the environment: read it through Settings (MegatronBackend/Settings.swift)")

readme = pathlib.Path("README.md").read_text()
layout = readme.split("## Layout", 1)[-1]
note = pathlib.Path("docs/architecture.md")
for name, target in targets.items():
    if target["type"] == "test" or name == "TestSupport":
        continue
    if f"`{name}`" not in layout:
        problems.append(f"target {name} has no row in the README's Layout table")
    if target["type"] != "system" and note.exists() and name not in note.read_text():
        problems.append(f"target {name} is not named in docs/architecture.md")
if not note.exists():
    problems.append("docs/architecture.md is missing")

for problem in problems:
    print("check_targets:", problem, file=sys.stderr)
print(f"check_targets: {len(targets)} targets, {len(problems)} problems")
sys.exit(1 if problems else 0)
