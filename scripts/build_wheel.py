#!/usr/bin/env python3
"""Writes the pip wheel from the release bundle (scripts/package.sh calls it): the Python package of
integrations/python (the workers and `megatron_bert.Model`) plus the bundle's binary and libraries.

    scripts/build_wheel.py --bundle .build/package/megatron-bert-0.1.0-linux-x86_64 --glibc 2.35 --out dist

Layout (the bundle's, so that the binary's run path $ORIGIN/../lib holds in the wheel and where pip installs it):
    megatron_bert/*.py                  the Python package (workers, `Model`)
    megatron_bert/bin/megatron-bert     the binary
    megatron_bert/lib/*.so*             the libraries it needs beyond the base system
    megatron_bert-V.dist-info/…         METADATA, WHEEL, RECORD, entry_points.txt (the `megatron-bert` command on the
                                        environment's PATH: megatron_bert.__main__ replaces itself with the binary),
                                        licenses/ (the libraries' licences)
The tag is py3-none-manylinux_<glibc>_x86_64 (`--glibc`: the newest GLIBC_ symbol version the files ask for).
Name, version, summary and extras come from integrations/python/pyproject.toml; the file is reproducible
(entries sorted, times from $SOURCE_DATE_EPOCH or 2026-01-01). Standard library only.
"""
import argparse
import base64
import hashlib
import os
import re
import stat
import sys
import time
import tomllib
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, "..", "integrations", "python")


def metadata(project, readme):
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}",
             f"Summary: {project['description']}", f"Requires-Python: {project['requires-python']}"]
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    for extra, requirements in sorted(project.get("optional-dependencies", {}).items()):
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in requirements]
    lines.append("Description-Content-Type: text/markdown")
    return "\n".join(lines) + "\n\n" + readme


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="the unpacked release bundle (bin/, lib/, LICENSES/)")
    parser.add_argument("--glibc", required=True, help="the newest glibc version the files need, e.g. 2.35")
    parser.add_argument("--out", default="dist")
    args = parser.parse_args()
    if not re.fullmatch(r"2\.\d+", args.glibc):
        sys.exit(f"--glibc {args.glibc!r}: expected 2.N")
    project = tomllib.load(open(os.path.join(PYTHON, "pyproject.toml"), "rb"))["project"]
    name, version = project["name"].replace("-", "_"), project["version"]
    tag = f"py3-none-manylinux_{args.glibc.replace('.', '_')}_x86_64"
    info_dir = f"{name}-{version}.dist-info"

    files = []  # (name in the wheel, bytes, mode)
    package = os.path.join(PYTHON, "megatron_bert")
    for entry in sorted(os.listdir(package)):
        if entry.endswith(".py"):
            files.append((f"megatron_bert/{entry}", open(os.path.join(package, entry), "rb").read(), 0o644))
    binary = os.path.join(args.bundle, "bin", "megatron-bert")
    files.append(("megatron_bert/bin/megatron-bert", open(binary, "rb").read(), 0o755))
    libraries = os.path.join(args.bundle, "lib")
    for entry in sorted(os.listdir(libraries)):
        files.append((f"megatron_bert/lib/{entry}", open(os.path.join(libraries, entry), "rb").read(), 0o644))
    licences = os.path.join(args.bundle, "LICENSES")
    for entry in sorted(os.listdir(licences)) if os.path.isdir(licences) else []:
        files.append((f"{info_dir}/licenses/{entry}", open(os.path.join(licences, entry), "rb").read(), 0o644))
    readme = open(os.path.join(PYTHON, project.get("readme", "README.md")), encoding="utf-8").read()
    files.append((f"{info_dir}/METADATA", metadata(project, readme).encode(), 0o644))
    wheel = f"Wheel-Version: 1.0\nGenerator: megatron-bert scripts/build_wheel.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files.append((f"{info_dir}/WHEEL", wheel.encode(), 0o644))
    files.append((f"{info_dir}/top_level.txt", b"megatron_bert\n", 0o644))
    files.append((f"{info_dir}/entry_points.txt", b"[console_scripts]\nmegatron-bert = megatron_bert.__main__:main\n", 0o644))
    record = "\n".join([record_line(n, d) for n, d, _ in files] + [f"{info_dir}/RECORD,,"]) + "\n"
    files.append((f"{info_dir}/RECORD", record.encode(), 0o644))

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"{name}-{version}-{tag}.whl")
    when = max(int(os.environ.get("SOURCE_DATE_EPOCH", "1767225600")), 315532800)  # zip times start in 1980
    stamp = time.gmtime(when)[:6]
    with zipfile.ZipFile(path + ".partial", "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for entry, data, mode in files:
            info = zipfile.ZipInfo(entry, date_time=stamp)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    os.replace(path + ".partial", path)
    print(path)


if __name__ == "__main__":
    main()
