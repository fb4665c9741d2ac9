#!/usr/bin/env python3
"""Writes the question-answering fixtures into a folder:

- qa-features.json: generated questions and contexts (long words, punctuation, accents, CJK, runs of spaces; answers
  at window edges, answers cut by a window, several answers, unanswerable questions) and the training features
  transformers' run_qa makes of them (`prepare_train_features` with --pad_to_max_length False): each window's
  input_ids and its start and end positions, from BertTokenizerFast on vocab/megatron-bert-cased-vocab.txt (the rule
  restated below, as examples/pytorch/question-answering/run_qa.py has it).
- squad-metrics.json: random gold answers and predictions and what the official SQuAD v2.0 evaluation computes for
  them — exact and F1 per pair, and the summary (exact, f1, total, HasAns_ / NoAns_ splits) per set — using
  transformers 4.46.3's data/metrics/squad_metrics.py (the official script's functions), loaded from its wheel.

    /tmp/ref/bin/pip download --no-deps transformers==4.46.3 -d /tmp/tf4
    /tmp/ref/bin/python scripts/make_qa_fixtures.py Tests/MegatronTrainingTests/Fixtures /tmp/tf4/transformers-4.46.3-py3-none-any.whl
"""
import json
import os
import random
import sys
import zipfile

import transformers
from transformers import BertTokenizerFast
from transformers.models.bert.tokenization_bert import load_vocab

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/MegatronTrainingTests/Fixtures"
WHEEL = sys.argv[2] if len(sys.argv) > 2 else "/tmp/tf4/transformers-4.46.3-py3-none-any.whl"
HERE = os.path.dirname(os.path.abspath(__file__))

WORDS = ["the", "cat", "sat", "on", "mat", "Paris", "France", "capital", "of", "is", "in", "1998", "3.14", "John",
         "lives", "river", "Seine", "café", "naïve", "Zürich", "東京", "北京", "antidisestablishmentarianism",
         "Pneumonoultramicroscopicsilicovolcanoconiosis", "well-known", "U.S.", "(", ")", ",", ".", "!", "?", "—", "'s",
         "don't", "e-mail", "x²", "Ωmega", "ŁÓDŹ", "straße"]
QUESTIONS = ["Where", "What", "Who", "When", "is", "the", "capital", "of", "does", "John", "live", "?", "Which", "river"]


def train_features(tokenizer, question, context, answers, max_length, stride):
    """run_qa's prepare_train_features for one example, unpadded: the windows and their start / end positions."""
    encoded = tokenizer([question.lstrip()], [context], truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    windows = []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        input_ids = encoded["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        sequence_ids = encoded.sequence_ids(i)
        if len(answers["answer_start"]) == 0:
            start, end = cls_index, cls_index
        else:
            start_char = answers["answer_start"][0]
            end_char = start_char + len(answers["text"][0])
            token_start_index = 0
            while sequence_ids[token_start_index] != 1:
                token_start_index += 1
            token_end_index = len(input_ids) - 1
            while sequence_ids[token_end_index] != 1:
                token_end_index -= 1
            if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
                start, end = cls_index, cls_index
            else:
                while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                    token_start_index += 1
                start = token_start_index - 1
                while offsets[token_end_index][1] >= end_char:
                    token_end_index -= 1
                end = token_end_index + 1
        windows.append({"input_ids": input_ids, "start": start, "end": end})
    return windows


def feature_cases(rng, tokenizer, count):
    cases = []
    while len(cases) < count:
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 40))]
        separators = [rng.choice([" ", " ", " ", "  ", "\t", "\n", " \u3000"]) for _ in words]
        context, spans = "", []
        for word, separator in zip(words, separators):
            spans.append((len(context), len(context) + len(word)))
            context += word + separator
        context = context.rstrip() if rng.random() < 0.8 else context
        question = (" " * rng.randint(0, 2)) + " ".join(rng.choice(QUESTIONS) for _ in range(rng.randint(1, 5)))
        answers = {"text": [], "answer_start": []}
        if rng.random() < 0.85:
            for _ in range(rng.randint(1, 3)):
                first = rng.randrange(len(spans))
                last = min(len(spans) - 1, first + rng.randint(0, 4))
                start, end = spans[first][0], spans[last][1]
                if rng.random() < 0.15 and end - start > 2:  # a span that starts or ends inside a word
                    start, end = (start + 1, end) if rng.random() < 0.5 else (start, end - 1)
                answers["text"].append(context[start:end])
                answers["answer_start"].append(start)
        question_tokens = len(tokenizer(question.lstrip(), add_special_tokens=False)["input_ids"])
        max_length = rng.randint(question_tokens + 5, question_tokens + 40)
        stride = rng.randint(0, max_length - question_tokens - 4)
        try:
            windows = train_features(tokenizer, question, context, answers, max_length, stride)
        except Exception:  # the fast tokenizer refuses a stride that leaves no room: not a case
            continue
        cases.append({"question": question, "context": context, "answers": answers, "max_length": max_length, "stride": stride,
                      "windows": windows})
    return cases


def squad_functions(wheel):
    """normalize_answer, compute_exact, compute_f1, make_eval_dict and merge_eval from the wheel's squad_metrics.py."""
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("transformers/data/metrics/squad_metrics.py").decode()
    source = source.replace("from ...models.bert import BasicTokenizer", "BasicTokenizer = None")
    source = source.replace("from ...utils import logging", "import logging")
    source = source.replace("logger = logging.get_logger(__name__)", "logger = logging.getLogger(__name__)")
    namespace = {}
    exec(compile(source, "squad_metrics.py", "exec"), namespace)
    return namespace


PIECES = ["a", "an", "the", "The", "AN", "A", "cat", "Cat", "an.", "theater", "a-", "_the", "the_", "1st", "x", "Σ", "ΌΣΟΣ",
          "ΣΑΣ", "ς", "İstanbul", "É", "straße", "ß", "²", "٣", "\u0301the", "the\u0301", "naïve", "«quoted»", "—", "...",
          "(the)", "don't", "U.S.", "$5", "50%", "東京", "", "a\u00a0the", "an\u2003a"]
SEPARATORS = [" ", " ", " ", "", "\t", "\n", "\u00a0", "\u2003", "\x1c", "  ", ",", "-", "'"]


def text(rng):
    return "".join(rng.choice(PIECES) + rng.choice(SEPARATORS) for _ in range(rng.randint(0, 6)))


def metric_cases(rng, functions, count):
    pairs = []
    for _ in range(count):
        gold, predicted = text(rng), text(rng)
        if rng.random() < 0.3:
            predicted = gold if rng.random() < 0.5 else gold.upper()
        pairs.append({"gold": gold, "predicted": predicted, "normalized": functions["normalize_answer"](gold),
                      "exact": functions["compute_exact"](gold, predicted), "f1": functions["compute_f1"](gold, predicted)})
    sets = []
    for _ in range(60):
        golds, predictions = [], []
        for _ in range(rng.randint(1, 12)):
            answers = [] if rng.random() < 0.3 else [text(rng) for _ in range(rng.randint(1, 3))]
            golds.append(answers)
            predictions.append("" if rng.random() < 0.3 else (rng.choice(answers) if answers and rng.random() < 0.5 else text(rng)))
        # The official script's summary: each question against its best gold answer ("" when none normalises to words).
        exact, f1, has = {}, {}, {}
        for i, (answers, prediction) in enumerate(zip(golds, predictions)):
            kept = [a for a in answers if functions["normalize_answer"](a)] or [""]
            exact[i] = max(functions["compute_exact"](a, prediction) for a in kept)
            f1[i] = max(functions["compute_f1"](a, prediction) for a in kept)
            has[i] = bool(answers)
        summary = dict(functions["make_eval_dict"](exact, f1))
        with_answers = [i for i in has if has[i]]
        without = [i for i in has if not has[i]]
        if without:
            if with_answers:
                functions["merge_eval"](summary, functions["make_eval_dict"](exact, f1, qid_list=with_answers), "HasAns")
            functions["merge_eval"](summary, functions["make_eval_dict"](exact, f1, qid_list=without), "NoAns")
        sets.append({"gold": golds, "predicted": predictions, "scores": summary})
    return pairs, sets


def main():
    rng = random.Random(2026)
    tokenizer = BertTokenizerFast(vocab=load_vocab(os.path.join(HERE, "..", "vocab", "megatron-bert-cased-vocab.txt")), do_lower_case=False)
    features = feature_cases(rng, tokenizer, 1500)
    with open(os.path.join(OUT, "qa-features.json"), "w") as f:
        json.dump({"generator": f"scripts/make_qa_fixtures.py, transformers {transformers.__version__} (BertTokenizerFast, "
                                f"vocab/megatron-bert-cased-vocab.txt, run_qa's prepare_train_features)", "cases": features}, f,
                  ensure_ascii=False)
    functions = squad_functions(WHEEL)
    pairs, sets = metric_cases(rng, functions, 4000)
    with open(os.path.join(OUT, "squad-metrics.json"), "w") as f:
        json.dump({"generator": f"scripts/make_qa_fixtures.py, the official SQuAD v2.0 functions of transformers 4.46.3's "
                                f"squad_metrics.py", "pairs": pairs, "sets": sets}, f, ensure_ascii=False)
    windows = sum(len(c["windows"]) for c in features)
    print(f"{len(features)} feature cases ({windows} windows), {len(pairs)} metric pairs, {len(sets)} sets")


if __name__ == "__main__":
    main()
