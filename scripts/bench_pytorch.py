#!/usr/bin/env python3
"""The PyTorch side of the benchmark: the same grid and model shape as `megatron-bert bench --random-weights`
(MegatronBertForPreTraining at the 345M size, random weights, MLM logits at every position, NSP head),
eval mode, no grad, a fixed number of threads. Precisions, each PyTorch's own CPU path for it:
  fp32  the model as it is;
  bf16  torch.autocast("cpu", dtype=torch.bfloat16) (products in BF16 through oneDNN, the rest FP32);
  int8  torch.ao.quantization.quantize_dynamic on every nn.Linear (qint8 weights, activations quantized at run
        time, fbgemm or onednn, whichever torch.backends.quantized.engine is).

On a GPU (--device cuda): fp32 (true FP32: TF32 off), fp16 and bf16 are the model converted with .half() /
.to(bfloat16), as transformers users run it in eager mode; timings wait for the GPU (torch.cuda.synchronize), the
logits stay on the GPU, and peak_device_bytes is torch.cuda.max_memory_allocated for the point.
    /tmp/ref/bin/python scripts/bench_pytorch.py [--threads 2] [--batch B --seq S | --points 1x8,1x128]
        [--device cpu|cuda] [--dtype fp32|bf16|int8|fp16] [--compile] [--json]

--compile runs the model through torch.compile(mode="reduce-overhead") (Inductor kernels, and CUDA graphs on a GPU):
the issue's second PyTorch reference on a GPU. Each point's first runs compile and record (three warm-up runs, not
timed; a new shape compiles again), so a point takes a minute or more the first time.

--lengths FILE (e.g. scripts/mixed-lengths-16.txt) adds a mixed-length point as `megatron-bert bench --lengths`
does: the same ids, one batch padded to the longest with an attention mask (as transformers users batch), the
encoder and pooler only (model.bert), and tokens/s counting the real tokens only.

Prints one line (or one JSON object) per point, in the same format as the Swift bench.
"""
import argparse
import json
import resource
import statistics
import time

import contextlib

import torch
from transformers import MegatronBertConfig, MegatronBertForPreTraining


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--seq", type=int)
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "int8", "fp16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--points", help="comma-separated BxS points, e.g. 1x8,1x128")
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--min-runs", type=int, default=3)
    parser.add_argument("--lengths", help="a file of sequence lengths: one more point, padded to the longest")
    parser.add_argument("--compile", action="store_true", help='torch.compile(mode="reduce-overhead")')
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = MegatronBertConfig(vocab_size=29056, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                intermediate_size=4096, max_position_embeddings=512, layer_norm_eps=1e-5)
    model = MegatronBertForPreTraining(config).eval()
    autocast = contextlib.nullcontext
    cuda = args.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        model = model.to({"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]).cuda()
    elif args.dtype == "fp16":
        parser.error("--dtype fp16 is for --device cuda")
    elif args.dtype == "bf16":
        autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    elif args.dtype == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    if args.compile and args.dtype == "int8":
        parser.error("--compile is for fp32, bf16 and fp16 (quantize_dynamic's modules do not compile)")
    # What runs: the model (all heads) and its encoder (the mixed-length point), compiled when asked.
    whole, encoder = model, model.bert
    if args.compile:
        whole, encoder = (torch.compile(m, mode="reduce-overhead") for m in (model, model.bert))
    points = [(args.batch, args.seq)] if args.batch else ([] if args.lengths else [(1, 8), (1, 128), (8, 128), (1, 512)])
    if args.points:
        points = [tuple(int(n) for n in p.split("x")) for p in args.points.split(",")]
    mixed = None
    if args.lengths:
        with open(args.lengths) as f:
            mixed = [int(n) for line in f for n in line.split("#")[0].replace(",", " ").split()]
        points.append((len(mixed), max(mixed)))
    if not args.json:
        engine = f", quantized engine {torch.backends.quantized.engine}" if args.dtype == "int8" else ""
        where = f"{torch.cuda.get_device_name(0)}" if cuda else f"{args.threads} threads"
        compiled = ", torch.compile(mode=reduce-overhead)" if args.compile else ""
        print(f"model: PyTorch {torch.__version__} MegatronBertForPreTraining 345M random, {args.dtype}{engine}{compiled}, {where}")
        print("batch  seq  runs   median ms   tokens/s   best tok/s   peak RSS MB")
    for index, (b, s) in enumerate(points):
        ids = torch.randint(1000, config.vocab_size, (b, s))
        is_mixed = mixed is not None and index == len(points) - 1
        tokens = sum(mixed) if is_mixed else b * s
        mask = (torch.arange(s)[None, :] < torch.tensor(mixed)[:, None]).long() if is_mixed else None
        if cuda:
            ids = ids.cuda()
            mask = mask.cuda() if mask is not None else None
            torch.cuda.reset_peak_memory_stats()
        forward = (lambda: encoder(input_ids=ids, attention_mask=mask)) if is_mixed else (lambda: whole(input_ids=ids))
        # Compiled code runs under no_grad (inference tensors and compiled graphs mix less well).
        with (torch.no_grad() if args.compile else torch.inference_mode()), autocast():
            for _ in range(3 if args.compile else 1):  # warm-up (and, compiled, compile and record)
                forward()
            sync()
            times = []
            started = time.perf_counter()
            while len(times) < args.min_runs or time.perf_counter() - started < args.min_seconds:
                t0 = time.perf_counter()
                forward()
                sync()
                times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if args.json:
            print(json.dumps({"batch": b, "seq": s, **({"mixed": True, "tokens": tokens, "packed": False} if is_mixed else {}),
                              "dtype": args.dtype, "runs": len(times), "median_seconds": median,
                              "tokens_per_second": tokens / median, "best_tokens_per_second": tokens / min(times), "peak_rss_bytes": rss, "engine": "pytorch-compile" if args.compile else "pytorch", "device": args.device,
                              **({"peak_device_bytes": torch.cuda.max_memory_allocated(), "gpu": torch.cuda.get_device_name(0)} if cuda else {})}))
        else:
            print(f"{b:5d} {s:4d} {len(times):5d} {median * 1000:11.1f} {tokens / median:10.1f} {tokens / min(times):12.1f} "
                  f"{rss / 1048576:13.0f}" + (f"   mixed: {tokens} tokens, longest {s}, padded" if is_mixed else ""))


if __name__ == "__main__":
    main()
