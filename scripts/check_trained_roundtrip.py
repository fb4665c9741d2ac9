#!/usr/bin/env python3
"""Loads fine-tuned output directories in transformers (the class their config.json names) and compares every output
with our `forward` on the same batch: the round trip of `megatron-bert finetune …` for every task.

    swift build -c release
    /tmp/ref/bin/python scripts/check_trained_roundtrip.py DIR [DIR …]
"""
import json
import os
import subprocess
import sys
import tempfile

import safetensors.torch
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "..", ".build", "release", "megatron-bert")


def main():
    worst_all = 0.0
    for directory in sys.argv[1:]:
        config = json.load(open(os.path.join(directory, "config.json")))
        architecture = config["architectures"][0]
        model = getattr(transformers, architecture).from_pretrained(directory).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
        encoded = tokenizer(["Where does John live ?", "Paris is the capital of France ."], ["John lives in Paris .", "It is big ."],
                            padding=True, return_tensors="pt")
        inputs = {k: encoded[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        if "MultipleChoice" in architecture:  # (2 examples, 2 choices, S)
            inputs = {k: v.unsqueeze(0).repeat(2, 1, 1) for k, v in inputs.items()}
        with tempfile.TemporaryDirectory() as scratch:
            batch, out = os.path.join(scratch, "batch.json"), os.path.join(scratch, "out.safetensors")
            json.dump({k: v.tolist() for k, v in inputs.items()}, open(batch, "w"))
            subprocess.run([BINARY, "forward", "--model", directory, "--input", batch, "--output", out, "--device", "cpu"], check=True,
                           capture_output=True)
            ours = safetensors.torch.load_file(out)
        with torch.no_grad():
            theirs = model(**inputs)
        worst = 0.0
        for name in ("logits", "start_logits", "end_logits", "prediction_logits", "seq_relationship_logits"):
            if name in ours and getattr(theirs, name, None) is not None:
                worst = max(worst, (ours[name].double() - getattr(theirs, name).double()).abs().max().item())
        print(f"{directory}: {architecture}, transformers vs our forward: max |Δ| {worst:.2e} over {sorted(k for k in ours if 'logits' in k)}")
        worst_all = max(worst_all, worst)
    sys.exit(0 if worst_all <= 1e-4 else 1)


if __name__ == "__main__":
    main()
