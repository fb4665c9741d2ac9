#!/usr/bin/env python3
"""Writes the training engine's gradient fixtures: tiny Megatron-BERT and BERT sequence classifiers (every
problem_type), token classifiers (labels per token, -100 ignored) and question-answering models (start and end
positions, one beyond the sequence and so ignored), one padded batch, and transformers' loss and
every parameter's gradient from loss.backward() in float64 (dropout off: the models in eval mode).

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install 'torch==2.13.0+cpu' transformers safetensors
    /tmp/ref/bin/python scripts/make_training_fixtures.py Tests/MegatronTrainingTests/Fixtures

Layout under the output folder:
  <name>/config.json, <name>/model.safetensors   the model (F32 weights; the reference runs them upcast to float64)
  batch.json                                       input_ids, attention_mask, token_type_ids, and labels per problem type
  <name>.expected.safetensors                      "loss" (1) and "grad.<parameter name>" (float64)
  steps.json, steps.expected.safetensors           20 AdamW steps of megatron-single in float32 as the HF Trainer takes
                                                   them (groups, warmup + linear decay, clipping at 1.0, accumulation 2):
                                                   the batches and settings; every micro-batch's loss, each step's
                                                   gradient norm and learning rate, and the final weights
  steps-mlm.json, steps-mlm.expected.safetensors   the same 20 steps of bert-mlm (its decoder tied to the word
                                                   embeddings: one parameter, one gradient, one step) on masked batches
                                                   (80% [MASK], 10% another id, 10% kept; -100 elsewhere)
  NOTES.md                                         versions and what each model is
"""
import json
import os
import sys

import safetensors.torch
import torch
import transformers
from transformers import (BertConfig, BertForMaskedLM, BertForMultipleChoice, BertForQuestionAnswering,
                          BertForSequenceClassification, BertForTokenClassification, MegatronBertConfig,
                          MegatronBertForMaskedLM, MegatronBertForMultipleChoice, MegatronBertForPreTraining,
                          MegatronBertForQuestionAnswering, MegatronBertForSequenceClassification,
                          MegatronBertForTokenClassification)

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/MegatronTrainingTests/Fixtures"

# Odd sizes on purpose: head dim 5 and 9, FFN 37 and 23.
MODELS = {
    "megatron-single": (MegatronBertConfig, MegatronBertForSequenceClassification,
                        dict(vocab_size=41, hidden_size=18, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                             max_position_embeddings=10, hidden_act="gelu", layer_norm_eps=1e-5), 3, "single_label_classification"),
    "bert-single": (BertConfig, BertForSequenceClassification,
                    dict(vocab_size=41, hidden_size=20, num_hidden_layers=2, num_attention_heads=4, intermediate_size=23,
                         max_position_embeddings=10, hidden_act="gelu_new", layer_norm_eps=1e-12), 3, "single_label_classification"),
    "megatron-regression": (MegatronBertConfig, MegatronBertForSequenceClassification,
                            dict(vocab_size=41, hidden_size=18, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                                 max_position_embeddings=10, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-5), 1, "regression"),
    "bert-multilabel": (BertConfig, BertForSequenceClassification,
                        dict(vocab_size=41, hidden_size=20, num_hidden_layers=1, num_attention_heads=4, intermediate_size=23,
                             max_position_embeddings=10, hidden_act="relu", layer_norm_eps=1e-12), 4, "multi_label_classification"),
    # Token classification (no problem_type: cross-entropy per token), after the others so that their weights stay the
    # generator's same draws.
    "megatron-token": (MegatronBertConfig, MegatronBertForTokenClassification,
                       dict(vocab_size=41, hidden_size=18, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                            max_position_embeddings=10, hidden_act="gelu", layer_norm_eps=1e-5), 5, None),
    "bert-token": (BertConfig, BertForTokenClassification,
                   dict(vocab_size=41, hidden_size=20, num_hidden_layers=2, num_attention_heads=4, intermediate_size=23,
                        max_position_embeddings=10, hidden_act="gelu_new", layer_norm_eps=1e-12), 5, None),
    # Question answering (qa_outputs: a start and an end logit per token), after the others for the same reason.
    "megatron-qa": (MegatronBertConfig, MegatronBertForQuestionAnswering,
                    dict(vocab_size=41, hidden_size=18, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=10, hidden_act="gelu", layer_norm_eps=1e-5), 2, None),
    "bert-qa": (BertConfig, BertForQuestionAnswering,
                dict(vocab_size=41, hidden_size=20, num_hidden_layers=2, num_attention_heads=4, intermediate_size=23,
                     max_position_embeddings=10, hidden_act="gelu_new", layer_norm_eps=1e-12), 2, None),
    # Multiple choice (a score per choice from the pooled output): the batch's rows as 2 examples of 3 choices.
    "megatron-mc": (MegatronBertConfig, MegatronBertForMultipleChoice,
                    dict(vocab_size=41, hidden_size=18, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                         max_position_embeddings=10, hidden_act="gelu", layer_norm_eps=1e-5), 2, None),
    "bert-mc": (BertConfig, BertForMultipleChoice,
                dict(vocab_size=41, hidden_size=20, num_hidden_layers=2, num_attention_heads=4, intermediate_size=23,
                     max_position_embeddings=10, hidden_act="gelu_new", layer_norm_eps=1e-12), 2, None),
    # Masked LM (the decoder tied to the word embeddings) and pre-training (masked LM + next sentence).
    "megatron-mlm": (MegatronBertConfig, MegatronBertForMaskedLM,
                     dict(vocab_size=41, hidden_size=18, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                          max_position_embeddings=10, hidden_act="gelu", layer_norm_eps=1e-5), 2, None),
    "bert-mlm": (BertConfig, BertForMaskedLM,
                 dict(vocab_size=41, hidden_size=20, num_hidden_layers=2, num_attention_heads=4, intermediate_size=23,
                      max_position_embeddings=10, hidden_act="gelu_new", layer_norm_eps=1e-12), 2, None),
    "megatron-pretraining": (MegatronBertConfig, MegatronBertForPreTraining,
                             dict(vocab_size=41, hidden_size=18, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                                  max_position_embeddings=10, hidden_act="gelu", layer_norm_eps=1e-5), 2, None),
}

# Multiple choice: example 0's choices are the batch's rows 0, 1, 2; example 1's rows 2, 0, 1.
CHOICE_ROWS = [[0, 1, 2], [2, 0, 1]]

BATCH = {  # 3 x 7: padding in rows 1 and 2, both token types
    "input_ids": [[2, 17, 5, 40, 3, 9, 3], [2, 30, 22, 3, 0, 0, 0], [2, 11, 12, 13, 3, 0, 0]],
    "attention_mask": [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0]],
    "token_type_ids": [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0, 0]],
    "labels": {
        "single_label_classification": [2, -100, 0],  # one ignored
        "regression": [[0.7], [-1.2], [0.1]],
        "multi_label_classification": [[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]],
        # Per token: [CLS], [SEP] and padding -100, as run_ner aligns them, and one word's second piece (row 0).
        "token_classification": [[-100, 4, 1, -100, -100, 0, -100], [-100, 2, 3, -100, -100, -100, -100],
                                 [-100, 0, 4, 4, -100, -100, -100]],
        # Question answering: row 1's start is past the sequence (7: ignored), row 2's end too (9, clamped to 7: ignored).
        "start_positions": [1, 7, 2],
        "end_positions": [2, 3, 9],
        # Multiple choice: the right choice of each example (CHOICE_ROWS).
        "multiple_choice": [1, 2],
        # Masked LM: the original ids of the masked tokens, -100 elsewhere; next sentence: 0 = B follows A.
        "masked_lm": [[-100, 17, -100, 40, -100, -100, -100], [-100, -100, 22, -100, -100, -100, -100],
                      [-100, 11, -100, 13, -100, -100, -100]],
        "next_sentence": [0, 1, 1],
    },
}


def randomize(model, generator):
    """Weights with non-trivial LayerNorm scales and biases, rounded to float32 (what the file stores)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight") or name.endswith(".ln.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=generator, dtype=torch.float64))
            p.copy_(p.float().double())


def main():
    os.makedirs(OUT, exist_ok=True)
    generator = torch.Generator().manual_seed(1234)
    with open(os.path.join(OUT, "batch.json"), "w") as f:
        json.dump(BATCH, f)
    notes = [f"Written by scripts/make_training_fixtures.py with torch {torch.__version__}, transformers "
             f"{transformers.__version__}; gradients from loss.backward() in float64 with dropout off (eval mode).", ""]
    for name, (config_class, model_class, sizes, labels, problem) in MODELS.items():
        config = config_class(**sizes, num_labels=labels, type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                              **({"problem_type": problem} if problem else {}))
        config.architectures = [model_class.__name__]
        model = model_class(config).double()
        randomize(model, generator)
        model.eval()
        directory = os.path.join(OUT, name)
        model.float().save_pretrained(directory, safe_serialization=True)
        model.double()
        qa, choices = "QuestionAnswering" in model_class.__name__, "MultipleChoice" in model_class.__name__
        masked, pretraining = "MaskedLM" in model_class.__name__, "PreTraining" in model_class.__name__
        key = ("question_answering" if qa else "multiple_choice" if choices else "masked_lm" if masked or pretraining
               else problem or "token_classification")
        inputs = dict(input_ids=torch.tensor(BATCH["input_ids"]), attention_mask=torch.tensor(BATCH["attention_mask"]),
                      token_type_ids=torch.tensor(BATCH["token_type_ids"]))
        if pretraining:  # logits: the prediction logits (3, 7, 41); the next-sentence ones under their own name
            out = model(**inputs, labels=torch.tensor(BATCH["labels"]["masked_lm"]),
                        next_sentence_label=torch.tensor(BATCH["labels"]["next_sentence"]))
            logits = out.prediction_logits
        elif masked:
            out = model(**inputs, labels=torch.tensor(BATCH["labels"]["masked_lm"]))
            logits = out.logits
        elif choices:  # (2, 3, 7): logits (2, 3)
            inputs = {k: v[torch.tensor(CHOICE_ROWS)] for k, v in inputs.items()}
            out = model(**inputs, labels=torch.tensor(BATCH["labels"]["multiple_choice"]))
            logits = out.logits
        elif qa:
            out = model(**inputs, start_positions=torch.tensor(BATCH["labels"]["start_positions"]),
                        end_positions=torch.tensor(BATCH["labels"]["end_positions"]))
            logits = torch.stack([out.start_logits, out.end_logits], dim=-1)  # (B, S, 2), as qa_outputs gives them
        else:
            target = torch.tensor(BATCH["labels"][key], dtype=torch.float64 if key in ("regression", "multi_label_classification") else torch.long)
            out = model(**inputs, labels=target)
            logits = out.logits
        out.loss.backward()
        expected = {"loss": out.loss.detach().reshape(1), "logits": logits.detach()}
        if pretraining:
            expected["next_sentence_logits"] = out.seq_relationship_logits.detach()
        for pname, p in model.named_parameters():
            expected["grad." + pname] = p.grad.detach().clone()
        safetensors.torch.save_file({k: v.contiguous() for k, v in expected.items()}, os.path.join(OUT, f"{name}.expected.safetensors"))
        notes.append(f"- {name}: {model_class.__name__}, {key}, {labels} labels, {sizes}; loss {out.loss.item():.6f}")
    notes.append(steps())
    notes.append(steps("bert-mlm", BertForMaskedLM, masked_step_batches(), "steps-mlm"))
    with open(os.path.join(OUT, "NOTES.md"), "w") as f:
        f.write("\n".join(notes) + "\n")


STEPS = dict(steps=20, accumulation=2, learning_rate=1e-3, weight_decay=0.01, warmup_steps=4, max_norm=1.0,
             betas=[0.9, 0.999], epsilon=1e-8)


def step_batches():
    """Four micro-batches (3 x 7, padded) cycled through: the fixture batch with its ids shifted, labels 0..2."""
    batches = []
    for shift in range(4):
        ids = [[(t + 5 * shift) % 41 if t not in (0, 2, 3) else t for t in row] for row in BATCH["input_ids"]]
        batches.append({"input_ids": ids, "attention_mask": BATCH["attention_mask"],
                        "token_type_ids": BATCH["token_type_ids"], "labels": [(shift + i) % 3 for i in range(3)]})
    return batches


def masked_step_batches():
    """step_batches() masked as the collator masks: every third real token after [CLS] chosen (shifted per batch), of
    those 8 in 10 [MASK] (id 4), 1 another id, 1 kept; labels the original ids there, -100 elsewhere."""
    batches = []
    for shift, batch in enumerate(step_batches()):
        ids, labels, k = [list(row) for row in batch["input_ids"]], [], 0
        for r, row in enumerate(ids):
            labels.append([-100] * len(row))
            for t in range(1, len(row)):
                if batch["attention_mask"][r][t] and (t + r + shift) % 3 == 0:
                    labels[r][t] = row[t]
                    row[t] = 4 if k % 10 < 8 else (row[t] + 7) % 41 if k % 10 == 8 else row[t]
                    k += 1
        batches.append(dict(batch, input_ids=ids, labels=labels))
    return batches


def steps(name="megatron-single", model_class=MegatronBertForSequenceClassification, batches=None, prefix="steps"):
    """The optimizer's fixture: `name` trained in float32 exactly as transformers' Trainer steps it."""
    model = model_class.from_pretrained(os.path.join(OUT, name), dtype=torch.float32)
    model.eval()  # dropout off
    no_decay = set()
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.LayerNorm):
            no_decay.update(f"{module_name}.{p}" for p, _ in module.named_parameters(recurse=False))
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if n not in no_decay and "bias" not in n], "weight_decay": STEPS["weight_decay"]},
              {"params": [p for n, p in named if n in no_decay or "bias" in n], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=STEPS["learning_rate"], betas=tuple(STEPS["betas"]), eps=STEPS["epsilon"])
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, STEPS["warmup_steps"], STEPS["steps"])
    batches = batches or step_batches()
    losses, norms, rates = [], [], []
    for step in range(STEPS["steps"]):
        rates.append(scheduler.get_last_lr()[0])
        for micro in range(STEPS["accumulation"]):
            batch = batches[(step * STEPS["accumulation"] + micro) % len(batches)]
            out = model(input_ids=torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(batch["attention_mask"]),
                        token_type_ids=torch.tensor(batch["token_type_ids"]), labels=torch.tensor(batch["labels"]))
            (out.loss / STEPS["accumulation"]).backward()
            losses.append(out.loss.item())
        norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), STEPS["max_norm"]).item())
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    with open(os.path.join(OUT, prefix + ".json"), "w") as f:
        json.dump(dict(STEPS, batches=batches, model=name), f)
    expected = {"losses": torch.tensor(losses, dtype=torch.float64), "norms": torch.tensor(norms, dtype=torch.float64),
                "rates": torch.tensor(rates, dtype=torch.float64)}
    expected.update({"weight." + n: p.detach().clone() for n, p in named})
    safetensors.torch.save_file({k: v.contiguous() for k, v in expected.items()}, os.path.join(OUT, prefix + ".expected.safetensors"))
    return (f"- {prefix}: {name} in float32, {STEPS}; losses {losses[0]:.6f} → {losses[-1]:.6f}")


if __name__ == "__main__":
    main()
