#!/usr/bin/env python3
"""Checks the CUDA backend's fused attention kernel on the CPU: extracts it from
Sources/MegatronCUDA/CUDAKernelSource.swift, compiles it with scripts/fused_attention_emulator.cpp (which emulates
a block's threads, barriers, warp shuffles and mma.sync m16n8k16 from the PTX ISA's fragment layouts) and runs it
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
    source = open(os.path.join(ROOT, "Sources/MegatronCUDA/CUDAKernelSource.swift")).read()
    start = source.index("#define FA_ROWS")
    end = source.index("#define FUSED(T, D)")
    text = source[start:end]
    # The device primitives (PTX conversions and mma.sync) are the emulator's own.
    first = text.index("template <typename T> __device__ __forceinline__ unsigned pack2")
    body = text.index("template <typename T, int D>")
    return text[:first] + text[body:]


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
