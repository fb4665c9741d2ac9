#!/usr/bin/env python3
"""Checks the CUDA backend's fused attention kernel on the CPU: compiles its file,
Sources/MegatronCUDA/Kernels/fused_attention.cu (the one NVRTC compiles), with scripts/fused_attention_emulator.cpp
(which emulates a block's threads, barriers, warp shuffles and mma.sync m16n8k16 from the PTX ISA's fragment
layouts) and runs it
against attention computed in double: padded batches with masks (a padded tail, no key kept, every third key),
packed sequences of many lengths, head sizes 16-128, q/k/v in one (N, 3H) buffer.

    python3 scripts/check_fused_attention.py [--compiler c++]

Exits non-zero when a case is off by more than its bound (FP16 1e-2, BF16 6e-2) or the kernel does not build.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def kernel_text():
    """The kernel exactly as NVRTC compiles it: Sources/MegatronCUDA/Kernels/fused_attention.cu. Its device primitives
    (PTX conversions and mma.sync, Kernels/fused_attention_mma.cuh) are the emulator's own."""
    return open(os.path.join(ROOT, "Sources/MegatronCUDA/Kernels/fused_attention.cu")).read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--compiler", default=next((c for c in ("clang++", "g++", "c++") if shutil.which(c)), "c++"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "fused_attention_kernel.inc"), "w") as f:
            f.write(kernel_text())
        binary = os.path.join(work, "emulator")
        build = subprocess.run([args.compiler, "-std=c++20", "-O1", "-pthread", "-I", work,
                                os.path.join(ROOT, "scripts/fused_attention_emulator.cpp"), "-o", binary],
                               capture_output=True, text=True)
        if build.returncode != 0:
            print(build.stdout + build.stderr)
            print("the emulator did not build")
            return 1
        return subprocess.run([binary]).returncode


if __name__ == "__main__":
    sys.exit(main())
