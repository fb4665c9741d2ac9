#!/usr/bin/env python3
"""Megatron-LM format checkpoints built from a known Hugging Face state dict (the inverse of HF's converter
mapping), for the conversion tests: checkpoint_version absent (0), 1.0 and 2.0 fused-QKV layouts, old
(`transformer`/`attention`) and new (`encoder`/`self_attention`) key names, with `args` holding an
argparse.Namespace and an object of a class from a fake `megatron.*` module, both torch serializations, and an
NGC-style zip (release/mp_rank_00/model_optim_rng.pt, deflated).

    /tmp/ref/bin/python scripts/make_megatron_fixtures.py Tests/MegatronBERTTests/Fixtures
"""
import argparse
import enum
import os
import sys
import types
import zipfile

import torch
from safetensors.torch import load_file

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/MegatronBERTTests/Fixtures"
SOURCE = os.path.join(OUT, "models", "megatron-ForPreTraining")

# A class that exists only in "Megatron": the reader must keep it as inert data.
megatron = types.ModuleType("megatron")
megatron_model = types.ModuleType("megatron.model")
megatron_enums = types.ModuleType("megatron.model.enums")


class AttnMaskType(enum.Enum):
    padding = 1
    causal = 2


AttnMaskType.__module__ = "megatron.model.enums"
megatron_enums.AttnMaskType = AttnMaskType
sys.modules.update({"megatron": megatron, "megatron.model": megatron_model, "megatron.model.enums": megatron_enums})


def fuse_qkv(q, k, v, version, heads):
    """HF's separate Q, K, V ([h, h] each, or [h]) to Megatron's fused layout for `version`."""
    hd = q.shape[0] // heads
    stacked = torch.stack([q, k, v])                  # [3, h, ...] = [3, heads * hd, ...]
    rest = stacked.shape[2:]
    x = stacked.reshape(3, heads, hd, *rest)           # [3, heads, hd, ...]
    if version == 0:
        pass                                           # [3, heads, hd]
    elif version == 1.0:
        x = x.permute(1, 2, 0, *range(3, x.dim()))     # [heads, hd, 3]
    else:
        x = x.permute(1, 0, 2, *range(3, x.dim()))     # [heads, 3, hd]
    return x.reshape(3 * heads * hd, *rest).contiguous()


def megatron_state(hf, version, new_names, heads):
    lm = {"embedding": {"word_embeddings": {"weight": hf["bert.embeddings.word_embeddings.weight"]},
                        "position_embeddings": {"weight": hf["bert.embeddings.position_embeddings.weight"]},
                        "tokentype_embeddings": {"weight": hf["bert.embeddings.token_type_embeddings.weight"]}}}
    encoder = {}
    attention = "self_attention" if new_names else "attention"
    layer = 0
    while f"bert.encoder.layer.{layer}.ln.weight" in hf:
        p = f"bert.encoder.layer.{layer}."
        m = f"layers.{layer}."
        for kind in ["weight", "bias"]:
            encoder[m + "input_layernorm." + kind] = hf[p + "attention.ln." + kind]
            encoder[m + f"{attention}.query_key_value." + kind] = fuse_qkv(
                hf[p + "attention.self.query." + kind], hf[p + "attention.self.key." + kind],
                hf[p + "attention.self.value." + kind], version, heads)
            encoder[m + f"{attention}.dense." + kind] = hf[p + "attention.output.dense." + kind]
            encoder[m + "post_attention_layernorm." + kind] = hf[p + "ln." + kind]
            encoder[m + "mlp.dense_h_to_4h." + kind] = hf[p + "intermediate.dense." + kind]
            encoder[m + "mlp.dense_4h_to_h." + kind] = hf[p + "output.dense." + kind]
        layer += 1
    for kind in ["weight", "bias"]:
        encoder["final_layernorm." + kind] = hf["bert.encoder.ln." + kind]
    lm["encoder" if new_names else "transformer"] = encoder
    lm["pooler"] = {"dense.weight": hf["bert.pooler.dense.weight"], "dense.bias": hf["bert.pooler.dense.bias"]}
    model = {"language_model": lm,
             "lm_head": {"bias": hf["cls.predictions.bias"],
                         "dense": {"weight": hf["cls.predictions.transform.dense.weight"],
                                   "bias": hf["cls.predictions.transform.dense.bias"]},
                         "layernorm": {"weight": hf["cls.predictions.transform.LayerNorm.weight"],
                                       "bias": hf["cls.predictions.transform.LayerNorm.bias"]}},
             "binary_head": {"weight": hf["cls.seq_relationship.weight"], "bias": hf["cls.seq_relationship.bias"]}}
    return model


def main():
    import json
    config = json.load(open(os.path.join(SOURCE, "config.json")))
    hf = load_file(os.path.join(SOURCE, "model.safetensors"))
    heads = config["num_attention_heads"]
    out = os.path.join(OUT, "megatron")
    os.makedirs(out, exist_ok=True)
    args = argparse.Namespace(num_layers=config["num_hidden_layers"], hidden_size=config["hidden_size"],
                              ffn_hidden_size=config["intermediate_size"], num_attention_heads=heads,
                              max_position_embeddings=config["max_position_embeddings"],
                              padded_vocab_size=config["vocab_size"], layernorm_epsilon=config["layer_norm_eps"],
                              tokenizer_type="BertWordPieceCase", attn_mask_type=AttnMaskType.padding)
    notes = [f"Written by scripts/make_megatron_fixtures.py (torch {torch.__version__}) from models/megatron-ForPreTraining "
             "(the expected HF tensors are that model's).\n\n| file | what |\n|---|---|"]
    for name, version, new_names, with_args, legacy in [
        ("v0-old-names.pt", 0, False, True, False),
        ("v1-old-names-legacy.pt", 1.0, False, True, True),
        ("v2-new-names.pt", 2.0, True, True, False),
        ("v3-no-args.pt", 3.0, True, False, False),
    ]:
        checkpoint = {"iteration": 1000, "model": megatron_state(hf, version, new_names, heads)}
        if version:
            checkpoint["checkpoint_version"] = version
        if with_args:
            checkpoint["args"] = args
        path = os.path.join(out, name)
        torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
        notes.append(f"| {name} | checkpoint_version {version or 'absent'}, {'new' if new_names else 'old'} key names, "
                     f"{'with' if with_args else 'without'} args, {'legacy' if legacy else 'zip'} serialization |")
    # NGC layout: a zip holding release/mp_rank_00/model_optim_rng.pt, deflated.
    with zipfile.ZipFile(os.path.join(out, "ngc.zip"), "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.write(os.path.join(out, "v2-new-names.pt"), "release/mp_rank_00/model_optim_rng.pt")
        z.writestr("latest_checkpointed_iteration.txt", "release")
    notes.append("| ngc.zip | v2-new-names.pt as release/mp_rank_00/model_optim_rng.pt in a deflated zip |")
    notes.append("\nChecked once by hand (2026-11-27, transformers 5.24.0): `megatron-bert convert ngc.zip --output DIR --vocab "
                 "vocab/megatron-bert-cased-vocab.txt`, then `AutoModelForPreTraining.from_pretrained(DIR)` loads it as "
                 "MegatronBertForPreTraining and its float64 prediction_logits on inputs/batch.json equal "
                 "expected/megatron-ForPreTraining.safetensors exactly (max |diff| 0.0); `AutoTokenizer` loads the vocab.")
    # Tensor parallelism: a 4-head model split over 2 ranks (checkpoint_version 2.0), as Megatron-LM lays it out.
    import transformers
    torch.manual_seed(7)
    tp_config = transformers.MegatronBertConfig(vocab_size=54, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                                intermediate_size=64, max_position_embeddings=12, layer_norm_eps=1e-5)
    tp_model = transformers.MegatronBertForPreTraining(tp_config).eval()
    g = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for pname, p in tp_model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.dim() > 1 else 0.1) + (1.0 if pname.endswith("ln.weight") or "LayerNorm.weight" in pname else 0.0))
    tp_hf = {k: v.contiguous() for k, v in tp_model.state_dict().items() if not k.startswith("cls.predictions.decoder")}
    full = megatron_state(tp_hf, 2.0, True, 4)
    tp_dir = os.path.join(out, "tp2")
    ranks = 2
    for rank in range(ranks):
        def part(t, dim):
            return t.chunk(ranks, dim=dim)[rank].contiguous()
        lm = full["language_model"]
        enc = {}
        for key, value in lm["encoder"].items():
            if "query_key_value" in key:
                # per rank: its heads' Q, K, V fused in the [heads_r, 3, hd] layout
                stacked = value.reshape(4, 3, 8, *value.shape[1:])
                enc[key] = stacked.chunk(ranks, dim=0)[rank].reshape(-1, *value.shape[1:]).contiguous()
            elif key.endswith("mlp.dense_h_to_4h.weight") or key.endswith("mlp.dense_h_to_4h.bias"):
                enc[key] = part(value, 0)
            elif key.endswith("self_attention.dense.weight") or key.endswith("mlp.dense_4h_to_h.weight"):
                enc[key] = part(value, 1)
            else:
                enc[key] = value
        emb = {"word_embeddings": {"weight": part(lm["embedding"]["word_embeddings"]["weight"], 0)},
               "position_embeddings": lm["embedding"]["position_embeddings"],
               "tokentype_embeddings": lm["embedding"]["tokentype_embeddings"]}
        model = {"language_model": {"embedding": emb, "encoder": enc, "pooler": lm["pooler"]},
                 "lm_head": {**full["lm_head"], "bias": part(full["lm_head"]["bias"], 0)},
                 "binary_head": full["binary_head"]}
        rank_args = argparse.Namespace(num_layers=2, hidden_size=32, ffn_hidden_size=64, num_attention_heads=4,
                                       max_position_embeddings=12, padded_vocab_size=54, layernorm_epsilon=1e-5,
                                       tensor_model_parallel_size=ranks, tokenizer_type="BertWordPieceCase")
        path = os.path.join(tp_dir, "release", f"mp_rank_{rank:02d}")
        os.makedirs(path, exist_ok=True)
        torch.save({"model": model, "checkpoint_version": 2.0, "args": rank_args}, os.path.join(path, "model_optim_rng.pt"))
    with open(os.path.join(tp_dir, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write("release")
    import json as _json
    batch = _json.load(open(os.path.join(OUT, "inputs", "batch.json")))
    with torch.no_grad():
        result = tp_model.double()(**{k: torch.tensor(v) for k, v in batch.items()})
    from safetensors.torch import save_file
    save_file({"prediction_logits": result.prediction_logits.contiguous(),
               "seq_relationship_logits": result.seq_relationship_logits.contiguous()},
              os.path.join(OUT, "expected", "megatron-tp2.safetensors"))
    notes.append("| tp2/ | a 4-head model in Megatron-LM's directory layout, split over 2 tensor-parallel ranks "
                 "(QKV by heads, h_to_4h and vocabulary by rows, dense and 4h_to_h by columns); expected outputs in "
                 "expected/megatron-tp2.safetensors |")
    notes += ngc_shaped(out)
    with open(os.path.join(out, "NOTES.md"), "w") as f:
        f.write("\n".join(notes) + "\n")


def ngc_shaped(out):
    """Tiny models shaped like NVIDIA's NGC files: the cased (29056 rows) and uncased (30592 rows) vocabulary sizes,
    old key names, no args, no checkpoint_version (the version-0 QKV layout), fp16 storage, legacy torch.save,
    inside a deflated zip as release/mp_rank_00/model_optim_rng.pt. Expected outputs from transformers (float64,
    on the fp16 weights): the hidden states, pooler, NSP logits and the prediction logits at every 61st column and
    the last 64 (the padding rows)."""
    import transformers
    from safetensors.torch import save_file
    notes = []
    for name, rows, seed in [("ngc-cased", 29056, 21), ("ngc-uncased", 30592, 22)]:
        config = transformers.MegatronBertConfig(vocab_size=rows, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                                 intermediate_size=16, max_position_embeddings=16, layer_norm_eps=1e-5)
        model = transformers.MegatronBertForPreTraining(config).eval()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                # Multiples of 1/32 in [-1, 1]: exact in fp16, and few distinct values, so the zip stays small.
                values = torch.randint(-32, 33, p.shape, generator=g).float() / 32 * (0.5 if p.dim() > 1 else 0.25)
                if pname.endswith("ln.weight") or "LayerNorm.weight" in pname:
                    values += 1.0
                p.copy_(values.half().float())
        hf = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("cls.predictions.decoder")}
        state = megatron_state(hf, 0, False, 2)

        def half(tree):
            return {k: half(v) if isinstance(v, dict) else v.half() for k, v in tree.items()}
        pt = os.path.join(out, name + ".pt")
        torch.save({"model": half(state)}, pt, _use_new_zipfile_serialization=False)
        with zipfile.ZipFile(os.path.join(out, name + ".zip"), "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            z.write(pt, "release/mp_rank_00/model_optim_rng.pt")
        os.remove(pt)
        ids = [[101, 1109, rows - 61, 5000, 102, 28995, 102], [101, 7, 28000, 102, 0, 0, 0]]
        batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor([[1] * 7, [1] * 4 + [0] * 3]),
                 "token_type_ids": torch.tensor([[0] * 5 + [1] * 2, [0] * 7])}
        with torch.no_grad():
            double = model.double()
            result = double(**batch)
            base = double.bert(**batch)
        columns = list(range(0, rows, 61)) + list(range(rows - 64, rows))
        save_file({"last_hidden_state": base.last_hidden_state.contiguous(),
                   "pooler_output": base.pooler_output.contiguous(),
                   "seq_relationship_logits": result.seq_relationship_logits.contiguous(),
                   "prediction_logits_columns": result.prediction_logits[:, :, columns].contiguous(),
                   "columns": torch.tensor(columns),
                   **{k: v.contiguous() for k, v in batch.items()}},
                  os.path.join(out, "..", "expected", name + ".safetensors"))
        notes.append(f"| {name}.zip | NGC-shaped: {rows} embedding rows, hidden 8, 2 heads, 2 layers, old names, no args, "
                     f"no checkpoint_version, fp16, legacy torch.save, release/mp_rank_00/model_optim_rng.pt deflated; "
                     f"expected/{name}.safetensors holds its inputs and transformers' float64 outputs |")
    return notes


if __name__ == "__main__":
    main()
