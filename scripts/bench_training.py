#!/usr/bin/env python3
"""Fine-tuning throughput side by side: `megatron-bert bench-train` against PyTorch doing what the Hugging Face Trainer
does per step (forward with dropout, the task's loss, backward, clip_grad_norm_ 1.0, AdamW), the same model shape
(345M Megatron-BERT with the task's head, random weights, or --model's encoder with a new head), the same batches, 2
threads, alternating the two engines for --rounds rounds, each with two warm-up steps; each engine's best and median
tokens/s and peak RSS. --task: classify (2 labels), ner (9 labels per token), qa (start and end), multiple-choice
(B sequences as B/4 examples of 4 choices), mlm (15% of the tokens labelled, the same positions on both sides).

    swift build -c release
    /tmp/ref/bin/python scripts/bench_training.py [--points 8x128] [--rounds 2] [--min-seconds 20] [--model DIR] [--bf16] [--task T]
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


CLASSES = {"classify": "SequenceClassification", "ner": "TokenClassification", "qa": "QuestionAnswering",
           "multiple-choice": "MultipleChoice", "mlm": "MaskedLM"}


def pytorch(point, min_seconds, min_runs, threads, model_path, bf16, task):
    """One point in this process's child: returns best and median seconds per step and the peak RSS."""
    labels = 9 if task == "ner" else 2
    if model_path:
        build = f"""model = transformers.AutoModelFor{CLASSES[task]}.from_pretrained({model_path!r}, num_labels={labels}).train()
vocab = model.config.vocab_size"""
    else:
        build = f"""config = transformers.MegatronBertConfig(vocab_size=29056, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
    intermediate_size=4096, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-5, num_labels={labels})
model = transformers.MegatronBertFor{CLASSES[task]}(config).train()
vocab = 29056"""
    code = f"""
import json, resource, time, torch, transformers
torch.set_num_threads({threads}); torch.manual_seed(0)
b, s = {point[0]}, {point[1]}
{build}
optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.0)
ids = torch.randint(1000, vocab - 56, (b, s)); ids[:, 0] = 2
task = {task!r}
if task == "ner":
    targets = dict(labels=(torch.arange(b * s) % 9).reshape(b, s))
elif task == "qa":
    starts = 1 + torch.arange(b) % (s - 1)
    targets = dict(start_positions=starts, end_positions=torch.clamp(starts + 2, max=s - 1))
elif task == "multiple-choice":
    ids = ids.reshape(b // 4, 4, s); targets = dict(labels=torch.arange(b // 4) % 4)
elif task == "mlm":
    flat = torch.arange(b * s); chosen = ((flat * 7) % 100 < 15) & (flat % s != 0)
    targets = dict(labels=torch.where(chosen, ids.reshape(-1), torch.full_like(flat, -100)).reshape(b, s))
else:
    targets = dict(labels=torch.arange(b) % 2)
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled={bf16}):
        loss = model(input_ids=ids, **targets).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step(); optimizer.zero_grad()
step(); step()  # two warm-up steps, as bench-train: allocators and the optimizer's moments settle
times = []; started = time.time()
while len(times) < {min_runs} or time.time() - started < {min_seconds}:
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps(dict(best=times[0], median=times[len(times) // 2], runs=len(times), rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ours(binary, point, min_seconds, min_runs, threads, model_path, bf16, task):
    env = dict(os.environ, MEGATRON_BERT_THREADS=str(threads))
    out = subprocess.run([binary, "bench-train", "--task", task] + (["--model", model_path] if model_path else ["--random-weights"]) + (["--bf16"] if bf16 else []) + ["--points", f"{point[0]}x{point[1]}", "--min-seconds",
                          str(min_seconds), "--min-runs", str(min_runs), "--json"], check=True, capture_output=True, text=True,
                         env=env).stdout
    line = json.loads(out.strip().splitlines()[-1])
    tokens = point[0] * point[1]
    return dict(best=tokens / line["best_tokens_per_second"], median=line["median_seconds"], runs=line["runs"], rss=line["peak_rss_bytes"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--points", default="8x128")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=20)
    parser.add_argument("--min-runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="ours with --bf16 against PyTorch under torch.autocast(bfloat16)")
    parser.add_argument("--model", help="a Hugging Face BERT directory both load, with a new head (default: the 345M Megatron-BERT, random weights)")
    parser.add_argument("--task", default="classify", choices=sorted(CLASSES))
    args = parser.parse_args()
    flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split() if os.path.exists("/proc/cpuinfo") else []
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"{model}, {os.cpu_count()} cores, flags: {' '.join(f for f in ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'amx_tile'] if f in flags)}; "
          f"{args.rounds} alternating rounds, each point a fresh process; training steps (forward, loss, backward, clip, AdamW) of the "
          f"{args.model or '345M Megatron-BERT'} for {args.task}, {'bf16 (PyTorch: autocast)' if args.bf16 else 'fp32'}, dropout 0.1, {args.threads} threads")
    print("| batch x seq | ours best tok/s | PyTorch best tok/s | ours / PyTorch | ours median | PyTorch median | ours peak RSS MB | PyTorch peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for text in args.points.split(","):
        point = tuple(int(x) for x in text.split("x"))
        runs = {"ours": [], "pytorch": []}
        for _ in range(args.rounds):
            runs["ours"].append(ours(args.binary, point, args.min_seconds, args.min_runs, args.threads, args.model, args.bf16, args.task))
            runs["pytorch"].append(pytorch(point, args.min_seconds, args.min_runs, args.threads, args.model, args.bf16, args.task))
        tokens = point[0] * point[1]
        best = {k: tokens / min(r["best"] for r in v) for k, v in runs.items()}
        median = {k: tokens / statistics.median(r["median"] for r in v) for k, v in runs.items()}
        rss = {k: max(r["rss"] for r in v) / 2**20 for k, v in runs.items()}
        print(f"| {point[0]} x {point[1]} | {best['ours']:.1f} | {best['pytorch']:.1f} | {best['ours'] / best['pytorch']:.2f} | "
              f"{median['ours']:.1f} | {median['pytorch']:.1f} | {rss['ours']:.0f} | {rss['pytorch']:.0f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
