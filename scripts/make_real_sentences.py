#!/usr/bin/env python3
"""Real English sentences: the license texts every Debian/Ubuntu system ships in /usr/share/common-licenses
(base-files), split into sentences of 30-300 characters, in file order. No model is involved.

For the int8 parity test (Tests/MegatronBERTTests/QuantizationTests.swift), 300 as a JSON list:
    python3 scripts/make_real_sentences.py Tests/MegatronBERTTests/Fixtures/minilm/real_sentences.json
For the Ray / Spark worker tests (integrations/python/tests), 1000 as JSON Lines {"id": N, "text": ...}:
    python3 scripts/make_real_sentences.py integrations/python/tests/sentences.jsonl --count 1000
"""
import json
import re
import sys

SOURCES = ["GPL-3", "Apache-2.0", "MPL-2.0", "GPL-2", "LGPL-2.1", "LGPL-3", "GFDL-1.3", "Artistic", "MPL-1.1", "GPL-1", "GFDL-1.2", "CC0-1.0"]


def main():
    out = sys.argv[1]
    count = int(sys.argv[sys.argv.index("--count") + 1]) if "--count" in sys.argv else 300
    sentences = []
    for name in SOURCES:
        text = re.sub(r"\s+", " ", open(f"/usr/share/common-licenses/{name}", encoding="utf-8").read())
        sentences += [s.strip() for s in re.split(r"(?<=[.;:?!])\s+", text) if 30 <= len(s.strip()) <= 300]
    if len(sentences) < count:
        sys.exit(f"only {len(sentences)} sentences in {SOURCES}")
    with open(out, "w") as f:
        if out.endswith(".jsonl"):
            for i, sentence in enumerate(sentences[:count]):
                f.write(json.dumps({"id": i, "text": sentence}, ensure_ascii=False) + "\n")
        else:
            json.dump(sentences[:count], f, indent=0, ensure_ascii=False)
            f.write("\n")
    print(f"{count} sentences of {len(sentences)} -> {out}")


if __name__ == "__main__":
    main()
