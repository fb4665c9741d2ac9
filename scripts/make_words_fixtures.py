#!/usr/bin/env python3
"""Differential cases for `BERTTokenizer.encodeWords`: sentences given as words (as NER data come), drawn from the
mixed-script word pool of make_truncation_fixtures.py (words WordPiece splits, accents, CJK, emoji, punctuation, a
word of 101 characters, words holding a no-break space, a zero-width space or a tab), through Hugging Face's
BertTokenizerFast with `is_split_into_words=True`, with and without truncation at max_length 3..64, and 1,000 sentences
in overflowing windows (max_length 4..40, a stride). What it answers
(input_ids, word_ids with -1 for none, whether tokens were cut) is written as one JSON document inside a deflated zip.

    /tmp/ref/bin/python scripts/make_words_fixtures.py vocab/megatron-bert-cased-vocab.txt \
        Tests/BERTTokenizerTests/Fixtures/words.zip [--cases 3000] [--seed 33]
"""
import argparse
import importlib.util
import json
import os
import random
import zipfile

import tokenizers
import transformers
from transformers import BertTokenizerFast
from transformers.models.bert.tokenization_bert import load_vocab

spec = importlib.util.spec_from_file_location("truncation", os.path.join(os.path.dirname(__file__), "make_truncation_fixtures.py"))
truncation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(truncation)
WORDS = [w for w in truncation.WORDS if w] + ["non\u00a0breaking", "zero\u200bwidth", "tab\tbed", "U.S.", "don't", "(x)"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab")
    parser.add_argument("out")
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=33)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tok = BertTokenizerFast(vocab=load_vocab(args.vocab), do_lower_case=False)
    cases = []
    for _ in range(args.cases):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
        max_length = rng.choice([None, rng.randint(3, 64)])
        enc = tok(words, is_split_into_words=True, truncation=max_length is not None, max_length=max_length)
        full = len(tok(words, is_split_into_words=True)["input_ids"])
        cases.append(dict(words=words, max_length=max_length, ids=enc["input_ids"],
                          word_ids=[-1 if w is None else w for w in enc.word_ids()], cut=len(enc["input_ids"]) < full))
    # Overflowing windows (is_split_into_words with return_overflowing_tokens and a stride), from their own generator so
    # that the cases above stay as they were.
    rng = random.Random(args.seed + 1)
    windows = []
    while len(windows) < 1000:
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 40))]
        max_length = rng.randint(4, 40)
        stride = rng.randint(0, max_length - 3)
        try:
            enc = tok(words, is_split_into_words=True, truncation=True, max_length=max_length, stride=stride,
                      return_overflowing_tokens=True)
        except Exception:  # a stride the tokenizer refuses: not a case
            continue
        windows.append(dict(words=words, max_length=max_length, stride=stride, windows=[
            dict(ids=ids, word_ids=[-1 if w is None else w for w in enc.word_ids(i)]) for i, ids in enumerate(enc["input_ids"])]))
    document = dict(generator=f"scripts/make_words_fixtures.py, transformers {transformers.__version__}, tokenizers "
                              f"{tokenizers.__version__}, seed {args.seed}", cases=cases, windows=windows)
    with zipfile.ZipFile(args.out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("words.json", json.dumps(document, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
