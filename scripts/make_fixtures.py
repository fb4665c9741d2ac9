#!/usr/bin/env python3
"""Writes the engine's parity fixtures: tiny Megatron-BERT and BERT checkpoints with every head,
and their outputs computed by Hugging Face transformers in float64.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install 'torch==2.13.0+cpu' transformers safetensors
    /tmp/ref/bin/python scripts/make_fixtures.py Tests/MegatronBERTTests/Fixtures

Layout under the output folder:
  models/<name>/        config.json + weights (safetensors unless the name says otherwise)
  inputs/<batch>.json   the batches ({"input_ids", "attention_mask"?, "token_type_ids"?})
  expected/<name>.safetensors   float64 outputs under HF's names, for inputs/batch.json
                                (and <name>.<batch>.safetensors for other batches)
  NOTES.md              versions and what each model is
"""
import copy
import json
import os
import shutil
import sys

import safetensors.torch
import torch
import transformers
from transformers import BertConfig, MegatronBertConfig
import transformers.models.bert.modeling_bert as mb
import transformers.models.megatron_bert.modeling_megatron_bert as mm

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/MegatronBERTTests/Fixtures"

# Odd sizes on purpose: head dim 10 (not a power of two), FFN 70 (not 4 x hidden).
SIZES = dict(vocab_size=53, hidden_size=30, num_hidden_layers=2, num_attention_heads=3,
             intermediate_size=70, max_position_embeddings=12, type_vocab_size=2,
             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

HEADS = ["Model", "ForPreTraining", "ForMaskedLM", "ForNextSentencePrediction",
         "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMultipleChoice"]

BATCH = {  # batch 3 x seq 7: padding in rows 1 and 2, both token types
    "input_ids": [[2, 17, 5, 44, 3, 9, 3], [2, 30, 52, 3, 0, 0, 0], [2, 11, 12, 13, 3, 0, 0]],
    "attention_mask": [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]],
    "token_type_ids": [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0, 0]],
}
BATCH_DEFAULTS = {"input_ids": [[2, 7, 8, 9, 3], [2, 40, 41, 42, 3]]}  # mask and types left out
BATCH_MC = {  # batch 2 x 3 choices x seq 5
    "input_ids": [[[2, 4, 5, 3, 0], [2, 4, 6, 7, 3], [2, 8, 3, 0, 0]],
                  [[2, 9, 9, 3, 0], [2, 10, 11, 3, 0], [2, 12, 13, 14, 3]]],
    "attention_mask": [[[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]],
                       [[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]],
    "token_type_ids": [[[0, 0, 1, 1, 0], [0, 0, 1, 1, 1], [0, 1, 1, 0, 0]],
                       [[0, 0, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]],
}


def model_class(arch, head):
    prefix = "MegatronBert" if arch == "megatron" else "Bert"
    module = mm if arch == "megatron" else mb
    return getattr(module, prefix + head)


def make_config(arch, head, **extra):
    cls = MegatronBertConfig if arch == "megatron" else BertConfig
    kw = dict(SIZES)
    kw["layer_norm_eps"] = 1e-5 if arch == "megatron" else 1e-12
    kw["hidden_act"] = "gelu"
    if head == "ForSequenceClassification":
        kw["num_labels"] = 3
    if head == "ForTokenClassification":
        kw["num_labels"] = 5
    kw.update(extra)
    return cls(**kw)


def randomize(model, seed):
    """Non-trivial values everywhere: HF initialises biases to 0 and LayerNorm to (1, 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or ".ln." in name or name.endswith("ln.weight") or name.endswith("ln.bias"):
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def run(model, batch):
    model = model.double().eval()
    kwargs = {k: torch.tensor(v) for k, v in batch.items()}
    with torch.no_grad():
        out = model(**kwargs, return_dict=True)
    result = {}
    for key in ["last_hidden_state", "pooler_output", "prediction_logits", "seq_relationship_logits",
                "logits", "start_logits", "end_logits"]:
        value = out.get(key) if hasattr(out, "get") else getattr(out, key, None)
        if value is not None:
            result[key] = value.detach().double().contiguous()
    return result


def rounded(model, dtype):
    """A float64 copy of the model whose weights went through `dtype` and back."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(p.to(dtype).to(torch.float64))
    return m


def save_expected(name, outputs):
    safetensors.torch.save_file(outputs, os.path.join(OUT, "expected", name + ".safetensors"))


def main():
    for sub in ["models", "inputs", "expected"]:  # (minilm/ is make_minilm_fixture.py's)
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
        os.makedirs(os.path.join(OUT, sub))
    for name, batch in [("batch", BATCH), ("batch_defaults", BATCH_DEFAULTS), ("batch_mc", BATCH_MC)]:
        with open(os.path.join(OUT, "inputs", name + ".json"), "w") as f:
            json.dump(batch, f)

    notes = [f"# Fixtures\n\nWritten by `scripts/make_fixtures.py` with transformers {transformers.__version__}, "
             f"torch {torch.__version__}, safetensors. Expected outputs are float64 forwards of the same weights.\n",
             f"Sizes: {json.dumps(SIZES)}\n\n| model | what |\n|---|---|"]
    seed = 1
    for arch in ["megatron", "bert"]:
        for head in HEADS:
            seed += 1
            torch.manual_seed(seed)
            model = model_class(arch, head)(make_config(arch, head))
            randomize(model, seed)
            name = f"{arch}-{head}"
            model.save_pretrained(os.path.join(OUT, "models", name))
            batch = BATCH_MC if head == "ForMultipleChoice" else BATCH
            save_expected(name, run(model, batch))
            notes.append(f"| {name} | {model.__class__.__name__}, fp32 safetensors |")
            if head == "ForPreTraining":
                pretraining = (arch, model)

            if arch == "megatron" and head == "ForPreTraining":
                save_expected(name + ".batch_defaults", run(model, BATCH_DEFAULTS))
                # Half-precision files, and the float64 outputs of the rounded weights (what fp16/bf16 compute
                # widened to fp32 must reproduce); the same expectations serve --dtype fp16/bf16 on the fp32 file.
                for dtype, tag in [(torch.float16, "f16"), (torch.bfloat16, "bf16")]:
                    half = rounded(model, dtype)
                    path = os.path.join(OUT, "models", f"{name}-{tag}")
                    copy.deepcopy(model).to(dtype).save_pretrained(path)
                    save_expected(f"{name}-{tag}", run(half, BATCH))
                    notes.append(f"| {name}-{tag} | the same weights stored as {tag.upper()} |")
                # PyTorch zip (.bin): torch.save keeps the tied decoder as a second key sharing storage.
                path = os.path.join(OUT, "models", f"{name}-bin")
                os.makedirs(path)
                shutil.copy(os.path.join(OUT, "models", name, "config.json"), path)
                torch.save(model.state_dict(), os.path.join(path, "pytorch_model.bin"))
                notes.append(f"| {name}-bin | the same weights as pytorch_model.bin (torch.save zip format) |")
                # Sharded safetensors with an index.
                path = os.path.join(OUT, "models", f"{name}-sharded")
                model.save_pretrained(path, max_shard_size="60KB")
                notes.append(f"| {name}-sharded | the same weights, sharded safetensors + index |")

    # Activation variants on the base model.
    for arch, act in [("megatron", "gelu_new"), ("megatron", "gelu_pytorch_tanh"), ("bert", "relu"),
                      ("bert", "gelu_new")]:
        seed += 1
        torch.manual_seed(seed)
        model = model_class(arch, "Model")(make_config(arch, "Model", hidden_act=act))
        randomize(model, seed)
        name = f"{arch}-Model-{act}"
        model.save_pretrained(os.path.join(OUT, "models", name))
        save_expected(name, run(model, BATCH))
        notes.append(f"| {name} | {model.__class__.__name__} with hidden_act {act} |")

    with open(os.path.join(OUT, "NOTES.md"), "w") as f:
        f.write("\n".join(notes) + "\n")


if __name__ == "__main__":
    main()
