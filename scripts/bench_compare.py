#!/usr/bin/env python3
"""Side-by-side benchmark: `megatron-bert bench --random-weights` against PyTorch (scripts/bench_pytorch.py)
on the same grid, in one run. Each point runs in a fresh process per engine (so peak RSS is that point's),
alternating Swift and PyTorch for --rounds rounds to spread the machine's noise over both. The table shows,
per engine, the best run over all rounds (the steadier figure: a shared machine's noise only slows runs down)
and the median of the rounds' medians, and the ratio of the best figures.

    swift build -c release
    /tmp/ref/bin/python scripts/bench_compare.py [--rounds 3] [--dtypes fp32,bf16,int8] [--threads 2] [--baseline OLD_BINARY]

Each dtype gets its own table against PyTorch in the same precision (bench_pytorch.py's fp32, autocast bf16,
quantize_dynamic int8); --dtype fp16 compares our fp16 with PyTorch fp32 (PyTorch has no fp16 CPU path).

With --lengths FILE (e.g. scripts/mixed-lengths-16.txt) each table ends with the mixed-length batch: ours packed
without padding, PyTorch padded to the longest with an attention mask, both the encoder and pooler only, tokens/s
counting real tokens (`--points ''` runs it alone).

With --baseline, a second megatron-bert binary (an earlier build) runs in the same alternating rounds and the
table adds its best figure and the ratio new / baseline: before-and-after on the same machine, in one run.
--baseline-env NAME=VALUE (repeatable) runs the baseline with those settings, e.g. the same binary with a path
turned off: `--baseline-env MEGATRON_BERT_PANEL_PRODUCTS=0` (--baseline defaults to --binary then).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(command, settings=()):
    environment = dict(os.environ, **dict(s.split("=", 1) for s in settings))
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=environment).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dtypes", "--dtype", default="fp32", help="comma-separated: fp32, fp16, bf16, int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", default="3")
    parser.add_argument("--points", default="1x8,1x128,8x128,32x32")
    parser.add_argument("--baseline", help="an earlier megatron-bert binary to run beside --binary")
    parser.add_argument("--baseline-env", action="append", default=[], metavar="NAME=VALUE",
                        help="settings for the baseline's runs (repeatable); without --baseline, the baseline is --binary")
    parser.add_argument("--lengths", help="a file of sequence lengths: one more row, the mixed-length batch")
    args = parser.parse_args()
    if args.baseline_env and not args.baseline:
        args.baseline = args.binary
    for setting in args.baseline_env:
        if "=" not in setting:
            parser.error(f"--baseline-env takes NAME=VALUE, not {setting!r}")
    points = [tuple(int(v) for v in p.split("x")) for p in args.points.split(",") if p]
    if args.lengths:
        points.append("mixed")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8"]
    print(f"{cpu}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}; "
          f"{args.rounds} alternating rounds, each point a fresh process (>= {args.min_seconds} s of runs); "
          f"best run and median of round medians; PyTorch with {args.threads} threads")
    if args.baseline:
        print(f"baseline: {args.baseline}" + (f" with {' '.join(args.baseline_env)}" if args.baseline_env else ""))
    for dtype in args.dtypes.split(","):
        table(args, points, dtype)


def table(args, points, dtype):
    reference = "fp32" if dtype == "fp16" else dtype
    print(f"\nSwift --dtype {dtype} vs PyTorch {reference}")
    extra = " Baseline best tok/s | Swift / baseline |" if args.baseline else ""
    print("| batch x seq | Swift best tok/s | PyTorch best tok/s | Swift / PyTorch | Swift median | PyTorch median "
          "| Swift peak RSS MB | PyTorch peak RSS MB | kernels |" + extra)
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.baseline else ""))

    def shape(point):
        return ["--lengths", args.lengths] if point == "mixed" else ["--batch", str(point[0]), "--seq", str(point[1])]

    def swift_run(binary, point, settings=()):
        return run([binary, "bench", "--random-weights", "--device", "cpu", *shape(point), "--dtype",
                    dtype, "--json", "--min-seconds", args.min_seconds], settings)

    for point in points:
        swift, torch, baseline = [], [], []
        for _ in range(args.rounds):
            swift.append(swift_run(args.binary, point))
            if args.baseline:
                baseline.append(swift_run(args.baseline, point, args.baseline_env))
            torch.append(run([sys.executable, os.path.join(HERE, "bench_pytorch.py"), *shape(point),
                              "--dtype", reference, "--threads", str(args.threads), "--json", "--min-seconds", args.min_seconds]))
        label = (f"mixed: {swift[0]['batch']} sequences, {swift[0]['tokens']} tokens (padded {swift[0]['batch'] * swift[0]['seq']})"
                 if point == "mixed" else f"{point[0]} x {point[1]}")
        sb = max(r["best_tokens_per_second"] for r in swift)
        pb = max(r["best_tokens_per_second"] for r in torch)
        sm = statistics.median(r["tokens_per_second"] for r in swift)
        pm = statistics.median(r["tokens_per_second"] for r in torch)
        kernels = ", ".join(sorted({k for r in swift for k in r.get("kernels", [])}))
        row = (f"| {label} | {sb:.1f} | {pb:.1f} | {sb / pb:.2f} | {sm:.1f} | {pm:.1f} | "
               f"{max(r['peak_rss_bytes'] for r in swift) / 2**20:.0f} | {max(r['peak_rss_bytes'] for r in torch) / 2**20:.0f} | {kernels} |")
        if args.baseline:
            ob = max(r["best_tokens_per_second"] for r in baseline)
            row += f" {ob:.1f} | {sb / ob:.2f} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
