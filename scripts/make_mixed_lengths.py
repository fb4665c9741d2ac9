#!/usr/bin/env python3
"""Writes the committed mixed-length distributions that `megatron-bert bench --lengths` and
`scripts/bench_pytorch.py --lengths` run: sequence lengths drawn log-uniformly between 8 and 512 tokens (seed 0),
as real corpora skew short. The first 16 of the 128 are the CPU-sized batch.

    python3 scripts/make_mixed_lengths.py    # scripts/mixed-lengths-128.txt, scripts/mixed-lengths-16.txt
"""
import math
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
rng = random.Random(0)
lengths = [int(round(math.exp(rng.uniform(math.log(8), math.log(512))))) for _ in range(128)]
for count in (128, 16):
    path = os.path.join(ROOT, "scripts", f"mixed-lengths-{count}.txt")
    with open(path, "w") as f:
        f.write("# " + f"{count} sequence lengths, log-uniform in [8, 512], seed 0 (scripts/make_mixed_lengths.py)\n")
        f.write(" ".join(str(n) for n in lengths[:count]) + "\n")
    chosen = lengths[:count]
    print(f"{path}: {count} sequences, {sum(chosen)} tokens, longest {max(chosen)}, padded {count * max(chosen)} "
          f"({sum(chosen) / (count * max(chosen)) * 100:.0f}% useful)")
