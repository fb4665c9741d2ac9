#!/usr/bin/env python3
"""Tokenizer throughput, side by side in one run: Hugging Face `tokenizers` (Rust, via BertTokenizerFast's
backend: one text at a time with RAYON_NUM_THREADS=1, then encode_batch on all cores) against
`megatron-bert tokenize --benchmark` (one thread), on the same >= 10 MB corpus of mixed-script text with the
cased Megatron-BERT vocabulary.

    swift build -c release
    /tmp/ref/bin/python scripts/bench_tokenizer.py [--megabytes 10]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
VOCAB = os.path.join(ROOT, "vocab", "megatron-bert-cased-vocab.txt")

WORDS = ("The quick brown fox jumps over the lazy dog . NVIDIA trained Megatron-BERT with 345 million parameters , "
         "and it runs natively in Swift on Linux ! Question answering , named-entity recognition ( NER ) and "
         "fill-mask all start from WordPiece tokens : un ##believ ##able 1,234.56 $ 100 % e-mail https://example.com "
         "café naïve résumé Zürich Ångström São Paulo 北京 東京 서울 Москва Αθήνα مرحبا שלום हिन्दी ไทย 😀 👍🏽 "
         "don't won't it's we're they've [MASK] [SEP]").split(" ")


def corpus(megabytes):
    rng = random.Random(0)
    lines, size = [], 0
    while size < megabytes * 1e6:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 80)))
        lines.append(line)
        size += len(line.encode())
    return lines, size


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "megatron-bert"))
    args = parser.parse_args()
    lines, size = corpus(args.megabytes)
    path = os.path.join(tempfile.mkdtemp(), "corpus.jsonl")
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps({"text": line}, ensure_ascii=False) + "\n")

    # Rust tokenizers in a child process so RAYON_NUM_THREADS applies.
    child = f"""
import time, sys, json, os
from transformers import BertTokenizerFast
from transformers.models.bert.tokenization_bert import load_vocab
lines = [json.loads(l)["text"] for l in open({path!r})]
tok = BertTokenizerFast(vocab=load_vocab({VOCAB!r}), do_lower_case=False)._tokenizer
mode = sys.argv[1]
t = time.perf_counter()
if mode == "single":
    for l in lines: tok.encode(l)
else:
    tok.encode_batch(lines)
print(time.perf_counter() - t)
"""
    single = float(subprocess.run([sys.executable, "-c", child, "single"], env={**os.environ, "RAYON_NUM_THREADS": "1"},
                                  check=True, capture_output=True, text=True).stdout.split()[-1])
    batch = float(subprocess.run([sys.executable, "-c", child, "batch"], check=True, capture_output=True,
                                 text=True).stdout.split()[-1])
    swift = subprocess.run([args.binary, "tokenize", "--vocab", VOCAB, "--input", path, "--benchmark"], check=True,
                           capture_output=True, text=True).stdout.strip()
    swift_seconds = float(swift.split(" in ")[1].split(" s")[0])
    print(f"corpus: {len(lines)} texts, {size / 1e6:.1f} MB (mixed scripts), cased Megatron-BERT vocabulary, {os.cpu_count()} cores")
    print("| tokenizer | MB/s | vs HF single thread |")
    print("|---|---|---|")
    print(f"| HF tokenizers (Rust), one text at a time, 1 thread | {size / 1e6 / single:.2f} | 1.00 |")
    print(f"| HF tokenizers (Rust), encode_batch, all cores | {size / 1e6 / batch:.2f} | {single / batch:.2f} |")
    print(f"| BERTTokenizer (Swift), one text at a time, 1 thread | {size / 1e6 / swift_seconds:.2f} | {single / swift_seconds:.2f} |")


if __name__ == "__main__":
    main()
