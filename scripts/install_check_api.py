#!/usr/bin/env python3
"""The Python halves of scripts/check_install.sh, run on the build machine and inside the fresh roots alike; each
prints JSON that the check compares byte for byte.

    install_check_api.py api MODELS        # megatron_bert.Model (the installed wheel's binary, found by itself)
    install_check_api.py openai PORT       # `megatron-bert serve` on PORT, through the openai client
"""
import json
import sys
import time
import urllib.request

TEXTS = ["The capital of France is Paris.", "A man is eating food.", "Ein Satz auf Deutsch, mit Ümlauten."]


def api(models):
    from megatron_bert import Model
    with Model(f"{models}/minilm") as minilm, Model(f"{models}/tiny-mlm", vocab=f"{models}/vocab.txt") as tiny:
        result = dict(embed=minilm.embed(TEXTS).tolist(),
                      embed_mean=minilm.embed(TEXTS, pooling="mean", normalize=True).tolist(),
                      similarity=minilm.similarity(TEXTS[0], TEXTS[1:]),
                      fill_mask=tiny.fill_mask(["Word5 Word6 [MASK]", "[MASK] Word9"], top_k=3))
    json.dump(result, sys.stdout, sort_keys=True)


def serve(port):
    from openai import OpenAI
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.time() > deadline:
            sys.exit(f"serve did not answer /health on port {port} within 120 s")
        time.sleep(0.2)
    client = OpenAI(base_url=base + "/v1", api_key="unused")
    answer = client.embeddings.create(model="minilm", input=TEXTS)
    json.dump(dict(embeddings=[e.embedding for e in answer.data]), sys.stdout, sort_keys=True)


if __name__ == "__main__":
    {"api": api, "openai": serve}[sys.argv[1]](sys.argv[2])
