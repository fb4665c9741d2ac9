#!/usr/bin/env python3
"""The embed job side by side: `megatron-bert embed --input sentences.jsonl --json` against the same job in
transformers (same model directory, same tokenizer files, same batch size, the same length-sorted batches,
mean pooling, JSON Lines written out), each in its own process, on the same machine in the same run.

    /tmp/ref/bin/python scripts/bench_embed.py [--sentences 10000] [--model DIR] [--batch-size 32] [--dtype fp32|int8]

--dtype int8: ours with `--dtype int8`, PyTorch with torch.ao.quantization.quantize_dynamic on every nn.Linear.

Without --model it writes the 345M Megatron-BERT shape with random weights (transformers' initialisation) and
the cased vocabulary to /tmp/megatron-bert-345m-random (1.3 GB, once). Prints sentences/s, tokens/s and peak
resident memory of each process, and checks that both wrote the same vectors (cosine).
"""
import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ("the a of and to in is was for on with as by at from that this it his her their new first city river "
         "government company music film team school university war season album county village population "
         "John Mary Paris London Berlin France Germany American British National German French century "
         "played released built located known called became founded elected won born died moved during after "
         "before between under over two three several many most early late large small old young north south "
         "Megatron NVIDIA trained language model parameters layers attention transformer Swift Linux").split()


def sentences(n, seed=7):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 40))]
        out.append(" ".join(words).capitalize() + rng.choice([".", ".", "?", "!"]))
    return out


def ensure_random_model(path):
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return path
    import torch
    from transformers import MegatronBertConfig, MegatronBertModel
    torch.manual_seed(0)
    config = MegatronBertConfig(vocab_size=29056, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                intermediate_size=4096, max_position_embeddings=512, layer_norm_eps=1e-5,
                                architectures=["MegatronBertModel"])
    MegatronBertModel(config).save_pretrained(path)
    vocab = os.path.join(ROOT, "vocab", "megatron-bert-cased-vocab.txt")
    with open(vocab) as src, open(os.path.join(path, "vocab.txt"), "w") as dst:
        dst.write(src.read())
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": False, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}, f)
    return path


def torch_job(model_dir, input_path, output_path, batch_size, threads, dtype="fp32"):
    """The same job in transformers: read JSONL, sort by length, batch, mean-pool, write JSONL in input order."""
    import torch
    from transformers import AutoModel, BertTokenizerFast
    from transformers.models.bert.tokenization_bert import load_vocab
    torch.set_num_threads(threads)
    start = time.perf_counter()
    tokenizer = BertTokenizerFast(vocab=load_vocab(os.path.join(model_dir, "vocab.txt")),
                                  do_lower_case=False, model_max_length=512) \
        if not os.path.exists(os.path.join(model_dir, "tokenizer.json")) else BertTokenizerFast.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    if dtype == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    loaded = time.perf_counter()
    with open(input_path) as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: (lengths[i], i))
    vectors = [None] * len(texts)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            rows = order[s:s + batch_size]
            enc = tokenizer([texts[i] for i in rows], padding=True, truncation=True, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1)
            for i, v in zip(rows, pooled.tolist()):
                vectors[i] = v
    with open(output_path, "w") as f:
        for v in vectors:
            f.write(json.dumps({"embedding": v}) + "\n")
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - start, "job_s": done - loaded, "tokens": sum(lengths)}))


def measured(command, stdout_path):
    """Runs a command in a fresh wrapper process of its own (so that peak RSS is this command's alone), its
    standard output into a file; returns wall seconds and peak resident bytes."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "r = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1], 'w')); "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, r.returncode)")
    out = subprocess.run([sys.executable, "-c", probe, stdout_path] + command, stdout=subprocess.PIPE, text=True).stdout
    seconds, peak, code = out.split()
    if int(code) != 0:
        sys.exit(f"{command[0]} failed (exit {code})")
    return float(seconds), int(peak)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=10000)
    parser.add_argument("--model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "megatron-bert"))
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "int8"])
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return torch_job(args.worker[0], args.worker[1], args.worker[2], args.batch_size, args.threads, args.dtype)

    model = args.model or ensure_random_model("/tmp/megatron-bert-345m-random")
    work = "/tmp/bench-embed"
    os.makedirs(work, exist_ok=True)
    texts = sentences(args.sentences)
    input_path = os.path.join(work, "sentences.jsonl")
    with open(input_path, "w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")

    ours_path, theirs_path = os.path.join(work, "swift.jsonl"), os.path.join(work, "torch.jsonl")
    results = {
        "pytorch": measured([sys.executable, __file__, "--batch-size", str(args.batch_size), "--threads",
                             str(args.threads), "--dtype", args.dtype, "--worker", model, input_path, theirs_path],
                            os.path.join(work, "torch.stdout")),
        "swift": measured([args.binary, "embed", "--model", model, "--input", input_path, "--json", "--quiet",
                           "--device", "cpu", "--dtype", args.dtype, "--batch-size", str(args.batch_size)], ours_path),
    }
    tokens = json.loads(open(os.path.join(work, "torch.stdout")).read())["tokens"]
    import numpy as np
    ours = np.array([json.loads(l)["embedding"] for l in open(ours_path)])
    theirs = np.array([json.loads(l)["embedding"] for l in open(theirs_path)])
    cosine = (ours * theirs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
    print(f"model {model}; dtype {args.dtype}; {len(texts)} sentences, {tokens} tokens; batch size {args.batch_size}; "
          f"{args.threads} threads; whole process (load + job + JSON Lines out)")
    print(f"{'engine':8} {'seconds':>8} {'sentences/s':>12} {'tokens/s':>9} {'peak RSS':>9}")
    for name, (seconds, peak) in results.items():
        print(f"{name:8} {seconds:8.1f} {len(texts) / seconds:12.1f} {tokens / seconds:9.0f} {peak / 2**30:7.2f} GB")
    print(f"speed-up {results['pytorch'][0] / results['swift'][0]:.2f}x; cosine(swift, pytorch) min {cosine.min():.6f}")


if __name__ == "__main__":
    main()
