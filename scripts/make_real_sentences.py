#!/usr/bin/env python3
"""Real English sentences for the int8 parity test (Tests/MegatronBERTTests/QuantizationTests.swift): the
license texts every Debian/Ubuntu system ships in /usr/share/common-licenses (base-files), split into sentences,
300 of 30-300 characters, in file order. No model is involved; the test compares our int8 model with our fp32 one.

    python3 scripts/make_real_sentences.py Tests/MegatronBERTTests/Fixtures/minilm/real_sentences.json
"""
import json
import re
import sys

SOURCES = ["GPL-3", "Apache-2.0", "MPL-2.0", "GPL-2", "LGPL-2.1"]


def main():
    sentences = []
    for name in SOURCES:
        text = re.sub(r"\s+", " ", open(f"/usr/share/common-licenses/{name}", encoding="utf-8").read())
        sentences += [s.strip() for s in re.split(r"(?<=[.;:?!])\s+", text) if 30 <= len(s.strip()) <= 300]
    with open(sys.argv[1], "w") as f:
        json.dump(sentences[:300], f, indent=0, ensure_ascii=False)
        f.write("\n")
    print(f"{min(300, len(sentences))} sentences of {len(sentences)} -> {sys.argv[1]}")


if __name__ == "__main__":
    main()
