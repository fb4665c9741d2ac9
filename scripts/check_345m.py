#!/usr/bin/env python3
"""The full-size check (not in CI): MegatronBertForPreTraining at the exact 345M shape with random weights
(non-trivial LayerNorm and biases), a 2x128 batch with padding and both token types; the Swift CLI's
outputs against transformers' float64 outputs, for --dtype fp32, fp16 and bf16 (the half modes against the
float64 outputs of the same rounded weights, and against the unrounded model).

    swift build -c release
    /tmp/ref/bin/python scripts/check_345m.py [--binary .build/release/megatron-bert] [--workdir /tmp/m345]
"""
import argparse
import copy
import json
import os
import subprocess

import safetensors.torch
import torch
import transformers
from transformers import MegatronBertConfig, MegatronBertForPreTraining


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=".build/release/megatron-bert")
    parser.add_argument("--workdir", default="/tmp/megatron-345m-check")
    parser.add_argument("--dtypes", default="fp32,fp16,bf16")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model_dir = os.path.join(args.workdir, "model")

    torch.manual_seed(0)
    config = MegatronBertConfig(vocab_size=29056, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                intermediate_size=4096, max_position_embeddings=512, layer_norm_eps=1e-5)
    model = MegatronBertForPreTraining(config).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=g))
            elif "LayerNorm" in name or name.endswith("ln.weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
    model.save_pretrained(model_dir)

    b, s = 2, 128
    ids = torch.randint(1000, 28996, (b, s), generator=g)
    ids[:, 0] = 101
    mask = torch.ones(b, s, dtype=torch.long)
    mask[1, 100:] = 0
    types = torch.zeros(b, s, dtype=torch.long)
    types[:, 64:] = 1
    batch = {"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "token_type_ids": types.tolist()}
    batch_path = os.path.join(args.workdir, "batch.json")
    with open(batch_path, "w") as f:
        json.dump(batch, f)

    def reference(m):
        with torch.no_grad():
            out = m.double()(input_ids=ids, attention_mask=mask, token_type_ids=types)
        return {"prediction_logits": out.prediction_logits, "seq_relationship_logits": out.seq_relationship_logits}

    fp32_reference = reference(copy.deepcopy(model))
    print(f"transformers {transformers.__version__}, torch {torch.__version__}; 345M MegatronBertForPreTraining, "
          f"random weights, batch {b}x{s} (row 1 padded from 100)")
    print("| dtype | output | max abs diff vs same-weights float64 | max abs diff vs fp32 float64 | max abs value |")
    print("|---|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        out_path = os.path.join(args.workdir, f"out-{dtype}.safetensors")
        subprocess.run([args.binary, "forward", "--model", model_dir, "--input", batch_path, "--output", out_path,
                        "--dtype", dtype], check=True)
        actual = safetensors.torch.load_file(out_path)
        if dtype == "fp32":
            same = fp32_reference
        else:
            rounded = copy.deepcopy(model)
            with torch.no_grad():
                for p in rounded.parameters():
                    p.copy_(p.to(torch.float16 if dtype == "fp16" else torch.bfloat16).float())
            same = reference(rounded)
        for key in ["prediction_logits", "seq_relationship_logits"]:
            a = actual[key].double()
            print(f"| {dtype} | {key} | {(a - same[key]).abs().max().item():.2e} | "
                  f"{(a - fp32_reference[key]).abs().max().item():.2e} | {fp32_reference[key].abs().max().item():.2f} |")


if __name__ == "__main__":
    main()
