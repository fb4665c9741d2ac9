#!/usr/bin/env python3
"""Writes the NER fixtures into a folder:

- entity-metrics.json: random true and predicted tag sequences and what seqeval reports for them — as `evaluate`'s
  seqeval metric (what transformers' run_ner uses) lays it out: per entity type precision, recall, f1 and number,
  overall precision, recall, f1 and token accuracy — in its default mode (any tags) and in strict mode for each scheme
  (tags drawn from the scheme's prefixes).
- token-alignment.json: random word_ids as a fast tokenizer gives them (words of 0 to 3 tokens, special tokens, a cut
  at max_length) with random word tags, and the token labels run_ner's `tokenize_and_align_labels` makes of them,
  with and without `label_all_tokens` (its rule restated below, as transformers' examples/pytorch/token-classification
  /run_ner.py has it).

    /tmp/ref/bin/pip install seqeval
    /tmp/ref/bin/python scripts/make_ner_fixtures.py Tests/MegatronTrainingTests/Fixtures
"""
import importlib.metadata
import json
import os
import random
import sys
import warnings

from seqeval.metrics import accuracy_score, classification_report
from seqeval.scheme import BILOU, IOB1, IOB2, IOBES, IOE1, IOE2

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/MegatronTrainingTests/Fixtures"
SCHEMES = {"IOB1": (IOB1, "IOB"), "IOB2": (IOB2, "IOB"), "IOE1": (IOE1, "IOE"), "IOE2": (IOE2, "IOE"),
           "IOBES": (IOBES, "IOBES"), "BILOU": (BILOU, "BILOU")}
TYPES = ["PER", "LOC", "ORG", "MISC-X"]  # one type with a '-' in its name


def tags(rng, prefixes, length):
    out = []
    for _ in range(length):
        prefix = rng.choice("O" * 4 + prefixes.replace("O", ""))
        out.append("O" if prefix == "O" else f"{prefix}-{rng.choice(TYPES[:rng.randint(1, len(TYPES))])}")
    return out


def seqeval_scores(truth, predicted, mode, scheme):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(truth, predicted, output_dict=True, mode=mode, scheme=scheme, zero_division=0)
    overall = report.pop("micro avg")
    report.pop("macro avg", None)
    report.pop("weighted avg", None)
    scores = {}
    for name, score in report.items():
        scores.update({f"{name}_precision": score["precision"], f"{name}_recall": score["recall"], f"{name}_f1": score["f1-score"],
                       f"{name}_number": float(score["support"])})
    scores.update(overall_precision=overall["precision"], overall_recall=overall["recall"], overall_f1=overall["f1-score"],
                  overall_accuracy=accuracy_score(truth, predicted))
    return {k: float(v) for k, v in scores.items()}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(2026)
    cases = []
    for mode in ["lenient"] + list(SCHEMES):
        prefixes = "OBIES" if mode == "lenient" else SCHEMES[mode][1] + "O"
        count = 1200 if mode == "lenient" else 300
        while count > 0:
            sentences = rng.randint(1, 4)
            lengths = [rng.randint(1, 12) for _ in range(sentences)]
            truth = [tags(rng, prefixes, n) for n in lengths]
            # Predictions: the truth with some tags redrawn (so that many entities match), or drawn afresh.
            noise = rng.choice([0.1, 0.3, 1.0])
            predicted = [[t if rng.random() > noise else tags(rng, prefixes, 1)[0] for t in sentence] for sentence in truth]
            if not any(t != "O" for s in truth + predicted for t in s):
                continue  # seqeval's report needs an entity somewhere
            scheme = None if mode == "lenient" else SCHEMES[mode][0]
            expected = seqeval_scores(truth, predicted, None if mode == "lenient" else "strict", scheme)
            cases.append(dict(mode=mode, truth=truth, predicted=predicted, expected=expected))
            count -= 1
    with open(os.path.join(OUT, "entity-metrics.json"), "w") as f:
        json.dump(dict(source=f"scripts/make_ner_fixtures.py with seqeval {importlib.metadata.version('seqeval')}",
                       cases=cases), f, separators=(",", ":"))

    alignment()


LABELS = ["B-LOC", "B-MISC", "B-ORG", "B-PER", "I-LOC", "I-ORG", "I-PER", "O"]  # sorted, as run_ner sorts them; no I-MISC


def align(word_ids, word_labels, label_all_tokens):
    """run_ner's tokenize_and_align_labels for one sentence: the first token of a word gets the word's label, its
    other tokens -100 (or, with label_all_tokens, the label with B- turned into I- where that label exists),
    special tokens -100."""
    b_to_i = [LABELS.index(l.replace("B-", "I-")) if l.startswith("B-") and l.replace("B-", "I-") in LABELS else i
              for i, l in enumerate(LABELS)]
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(-100)
        elif word != previous:
            labels.append(LABELS.index(word_labels[word]))
        else:
            labels.append(b_to_i[LABELS.index(word_labels[word])] if label_all_tokens else -100)
        previous = word
    return labels


def alignment():
    rng = random.Random(77)
    cases = []
    for _ in range(2000):
        words = rng.randint(1, 20)
        tags = [rng.choice(LABELS) for _ in range(words)]
        pieces = [w for w in range(words) for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))]
        if rng.random() < 0.3:
            pieces = pieces[:rng.randint(0, len(pieces))]  # cut at max_length
        word_ids = [None] + pieces + [None]
        cases.append(dict(word_ids=[-1 if w is None else w for w in word_ids], tags=tags,
                          first=align(word_ids, tags, False), all=align(word_ids, tags, True)))
    with open(os.path.join(OUT, "token-alignment.json"), "w") as f:
        json.dump(dict(source="scripts/make_ner_fixtures.py (run_ner's rule)", labels=LABELS, cases=cases), f, separators=(",", ":"))


if __name__ == "__main__":
    main()
