#!/usr/bin/env python3
"""Writes the task fixtures: tiny Megatron-BERT checkpoints with a tiny cased vocabulary (padded rows after
it, like the real 29056-row model over its 28996 tokens) and what Hugging Face's pipelines answer on them.

    /tmp/ref/bin/python scripts/make_task_fixtures.py Tests/MegatronBERTTests/Fixtures/tasks

Every model directory holds config.json, model.safetensors, vocab.txt and tokenizer_config.json
(model_max_length 24, so that long texts need windows). expected.json holds, per task, the inputs, the
parameters and the reference answers:

- fill-mask, text-classification, token-classification: transformers' own pipelines, with two written-out
  differences for fill-mask (checked below against the pipeline on the same weights without padded rows):
  the padded vocabulary rows are not part of the softmax, and special tokens are never candidates.
- question answering: transformers v5 removed the pipeline; `qa_reference` writes out v4's
  QuestionAnsweringPipeline (fast tokenizer, align_to_words) for these inputs.
- next sentence, multiple choice, embeddings: softmax / pooling written out over the model's outputs.
Model outputs are computed in float64.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import BertTokenizerFast, MegatronBertConfig, pipeline
import transformers.models.megatron_bert.modeling_megatron_bert as mm
from transformers.models.bert.tokenization_bert import load_vocab

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/MegatronBERTTests/Fixtures/tasks"

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "?", "'", "-", "the", "The", "capital", "of",
         "France", "is", "Paris", "a", "city", "in", "Europe", "John", "Smith", "lives", "New", "York", "and",
         "works", "at", "Google", "Where", "does", "live", "Who", "river", "long", "very", "big", "small", "Mega",
         "##tron", "NV", "##ID", "##IA", "##s", "##ing", "B", "##ER", "##T", "model", "by", "It", "was", "trained",
         "Lon", "##don", "What", "he", "she", "old"]
PADDED_ROWS = 5
MAX_LENGTH = 24

SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.0,
             attention_probs_dropout_prob=0.0, layer_norm_eps=1e-5)

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("ln.weight") or name.endswith("ln.bias"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
            elif "embeddings" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(1.5 * torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)


def save(name, head, seed, vocab_size=len(VOCAB) + PADDED_ROWS, **config):
    cls = getattr(mm, "MegatronBert" + head)
    model = cls(MegatronBertConfig(vocab_size=vocab_size, **SIZES, **config))
    randomize(model, seed)
    path = os.path.join(OUT, name)
    model.save_pretrained(path)
    tokenizer = BertTokenizerFast(vocab=load_vocab(os.path.join(OUT, "vocab.txt")), do_lower_case=False,
                                  model_max_length=MAX_LENGTH)
    tokenizer.save_pretrained(path)
    # vocab.txt + tokenizer_config.json, as NVIDIA's model has (v5 writes only tokenizer.json).
    os.remove(os.path.join(path, "tokenizer.json"))
    shutil.copy(os.path.join(OUT, "vocab.txt"), path)
    for extra in ["special_tokens_map.json"]:
        if os.path.exists(os.path.join(path, extra)):
            os.remove(os.path.join(path, extra))
    return model.double().eval(), tokenizer


def plain(x):
    """numpy / torch scalars to Python numbers, recursively."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def forward(model, tokenizer, *args, **kwargs):
    enc = tokenizer(*args, return_tensors="pt", **kwargs)
    with torch.no_grad():
        return model(**enc), enc


# ---- fill-mask -------------------------------------------------------------------------------------------

def fill_mask_reference(model, tokenizer, text, top_k=5, targets=None):
    """transformers' FillMaskPipeline.postprocess, over the tokenizer's rows only and without special tokens."""
    out, enc = forward(model, tokenizer, text)
    ids = enc["input_ids"][0]
    logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
    masked = torch.nonzero(ids == tokenizer.mask_token_id).squeeze(-1).tolist()
    size = len(tokenizer)
    special = set(tokenizer.all_special_ids)
    target_ids = None
    if targets is not None:
        vocab = tokenizer.get_vocab()
        target_ids = sorted({vocab[t] if t in vocab else
                             tokenizer(t, add_special_tokens=False, max_length=1, truncation=True)["input_ids"][0]
                             for t in targets})
    rows = []
    for position in masked:
        probs = logits[0, position, :size].softmax(-1)
        candidates = target_ids if target_ids is not None else [i for i in range(size) if i not in special]
        ranked = sorted(candidates, key=lambda i: -probs[i].item())[:min(top_k, len(candidates))]
        row = []
        for p in ranked:
            tokens = ids.clone()
            tokens[position] = p
            row.append({"score": probs[p].item(), "token": p, "token_str": tokenizer.decode([p]),
                        "sequence": tokenizer.decode(tokens, skip_special_tokens=len(masked) == 1)})
        rows.append(row)
    return rows


def check_fill_mask_against_pipeline(model, tokenizer, texts):
    """On the same weights without the padded rows, the reference is the pipeline minus special tokens."""
    size = len(tokenizer)
    config = MegatronBertConfig(**{**model.config.to_dict(), "vocab_size": size})
    trimmed = mm.MegatronBertForMaskedLM(config).double().eval()
    state = {k: (v[:size] if v.shape[:1] == (size + PADDED_ROWS,) else v) for k, v in model.state_dict().items()
             if "pooler" not in k and "seq_relationship" not in k}
    trimmed.load_state_dict(state)
    fill = pipeline("fill-mask", model=trimmed.float(), tokenizer=tokenizer, top_k=size)
    for text in texts:
        ours = fill_mask_reference(trimmed.double(), tokenizer, text, top_k=5)
        theirs = fill(text)
        theirs = [theirs] if isinstance(theirs[0], dict) else theirs
        for a, b in zip(ours, theirs):
            b = [x for x in b if x["token"] not in tokenizer.all_special_ids][:5]
            assert [x["token"] for x in a] == [x["token"] for x in b], (text, a, b)
            assert [x["sequence"] for x in a] == [x["sequence"] for x in b], (text, a, b)
            assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) < 1e-5


# ---- question answering (transformers v4's pipeline, written out) ----------------------------------------

def qa_reference(model, tokenizer, question, context, top_k=1, max_answer_len=15, doc_stride=None,
                 max_seq_len=None, handle_impossible_answer=False):
    max_seq_len = max_seq_len or min(tokenizer.model_max_length, 384)
    doc_stride = doc_stride if doc_stride is not None else min(max_seq_len // 2, 128)
    enc = tokenizer(question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                    return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    token_type_ids=enc["token_type_ids"])
    answers, min_null = [], 1e6
    for w in range(enc["input_ids"].shape[0]):
        seq = enc.sequence_ids(w)
        # p_mask: 1 off the context; [CLS] stays (unanswerable); padding removed through the attention mask.
        desired = np.array([(s == 1 or i == 0) and enc["attention_mask"][w, i].item() == 1
                            for i, s in enumerate(seq)])
        start = np.where(desired, out.start_logits[w].numpy(), -10000.0)
        end = np.where(desired, out.end_logits[w].numpy(), -10000.0)
        start = np.exp(start - start.max()); start /= start.sum()
        end = np.exp(end - end.max()); end /= end.sum()
        if handle_impossible_answer:
            min_null = min(min_null, start[0] * end[0])
        start[0] = end[0] = 0.0
        outer = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
        flat = outer.flatten()
        order = np.argsort(-flat, kind="stable")[:top_k]
        context_tokens = {i for i, s in enumerate(seq) if s == 1}
        for index in order:
            s, e = divmod(int(index), len(seq))
            if s not in context_tokens or e not in context_tokens:
                continue
            words = enc.word_ids(w)
            start_char = enc.word_to_chars(w, words[s], sequence_index=1)[0]
            end_char = enc.word_to_chars(w, words[e], sequence_index=1)[1]
            answers.append({"score": float(flat[index]), "start": start_char, "end": end_char,
                            "answer": context[start_char:end_char]})
    if handle_impossible_answer:
        answers.append({"score": float(min_null), "start": 0, "end": 0, "answer": ""})
    return sorted(answers, key=lambda a: -a["score"])[:top_k]


# ---- main --------------------------------------------------------------------------------------------

def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    with open(os.path.join(OUT, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    expected = {}

    # Pre-training heads: fill-mask and next sentence.
    model, tok = save("pretraining", "ForPreTraining", 11, architectures=["MegatronBertForPreTraining"])
    texts = ["The capital of France is [MASK].", "[MASK] lives in New York and works at [MASK].",
             "Megatron BERT is a very big [MASK]", "John Smith lives in Zürich , [MASK] ."]
    check_fill_mask_against_pipeline(model, tok, texts[:3])
    expected["fill_mask"] = [{"text": t, "top_k": 5, "predictions": fill_mask_reference(model, tok, t)} for t in texts]
    expected["fill_mask"].append({"text": texts[0], "top_k": 5, "targets": ["Paris", "London", "city", "York"],
                                  "predictions": fill_mask_reference(model, tok, texts[0],
                                                                     targets=["Paris", "London", "city", "York"])})
    expected["fill_mask"].append({"text": texts[1], "top_k": 2,
                                  "predictions": fill_mask_reference(model, tok, texts[1], top_k=2)})
    pairs = [("John lives in Paris .", "It is the capital of France ."), ("Where does she live ?", "Google .")]
    expected["nsp"] = []
    for a, b in pairs:
        out, _ = forward(model, tok, a, b)
        expected["nsp"].append({"text": a, "text_pair": b,
                                "probabilities": out.seq_relationship_logits[0].softmax(-1).tolist()})

    # Sequence classification: single-label (softmax) and multi-label (sigmoid).
    labels3 = {0: "negative", 1: "neutral", 2: "positive"}
    model, tok = save("classification", "ForSequenceClassification", 12, num_labels=3, id2label=labels3,
                      label2id={v: k for k, v in labels3.items()}, architectures=["MegatronBertForSequenceClassification"])
    classify = pipeline("text-classification", model=model.float(), tokenizer=tok)
    expected["classify"] = []
    for text, pair in [("Paris is a very big city .", None), ("The river is long", None),
                       ("Who lives in Paris ?", "John Smith .")]:
        inputs = {"text": text, "text_pair": pair} if pair else text
        expected["classify"].append({"text": text, "text_pair": pair, "top_k": None,
                                     "labels": plain(classify(inputs, top_k=None))})
    expected["classify"].append({"text": "The river is long", "text_pair": None, "top_k": 2,
                                 "labels": plain(classify("The river is long", top_k=2))})
    labels4 = {0: "city", 1: "country", 2: "person", 3: "company"}
    model, tok = save("multilabel", "ForSequenceClassification", 13, num_labels=4, id2label=labels4,
                      label2id={v: k for k, v in labels4.items()}, problem_type="multi_label_classification",
                      architectures=["MegatronBertForSequenceClassification"])
    classify = pipeline("text-classification", model=model.float(), tokenizer=tok)
    expected["classify_multilabel"] = [{"text": t, "text_pair": None, "top_k": None,
                                        "labels": plain(classify(t, top_k=None))}
                                       for t in ["John works at Google .", "France"]]

    # Token classification, every aggregation strategy, and windows with a stride.
    ner_labels = dict(enumerate(NER_LABELS))
    model, tok = save("ner", "ForTokenClassification", 14, num_labels=len(NER_LABELS), id2label=ner_labels,
                      label2id={v: k for k, v in ner_labels.items()}, architectures=["MegatronBertForTokenClassification"])
    # Bias the classifier away from "O" so that entities appear.
    with torch.no_grad():
        model.classifier.bias[0] -= 1.0
    model.save_pretrained(os.path.join(OUT, "ner"))
    ner = pipeline("token-classification", model=model.float(), tokenizer=tok)
    expected["ner"] = []
    for text in ["John Smith lives in New York and works at Google .",
                 "Megatron BERT was trained by NVIDIA in Zürich .", "  Paris,France  "]:
        for strategy in ["none", "simple", "first", "average", "max"]:
            expected["ner"].append({"text": text, "aggregation": strategy,
                                    "entities": plain(ner(text, aggregation_strategy=strategy))})
    long_text = ("John Smith lives in New York and works at Google . " * 4).strip()
    for strategy in ["simple", "first", "max"]:
        expected["ner"].append({"text": long_text, "aggregation": strategy, "stride": 6,
                                "entities": plain(ner(long_text, aggregation_strategy=strategy, stride=6))})

    # Question answering.
    model, tok = save("qa", "ForQuestionAnswering", 15, architectures=["MegatronBertForQuestionAnswering"])
    context = "John Smith lives in New York and works at Google . Paris is the capital of France . " \
              "Megatron BERT was trained by NVIDIA ."
    expected["qa"] = []
    for question, params in [("Where does John live ?", dict(top_k=3, doc_stride=4)),
                             ("Who works at Google ?", dict(top_k=1, doc_stride=6, max_answer_len=3)),
                             ("What is the capital of France ?", dict(top_k=2, doc_stride=4, handle_impossible_answer=True))]:
        expected["qa"].append({"question": question, "context": context, **params,
                               "answers": qa_reference(model, tok, question, context, **params)})
    short = "Paris is a city in France ."
    expected["qa"].append({"question": "Where is Paris ?", "context": short, "top_k": 2,
                           "answers": qa_reference(model, tok, "Where is Paris ?", short, top_k=2)})

    # Multiple choice: one score per (prompt, choice) pair, softmax over the choices.
    model, tok = save("multiple-choice", "ForMultipleChoice", 16, architectures=["MegatronBertForMultipleChoice"])
    prompt, choices = "John lives in", ["Paris .", "New York .", "the river ."]
    enc = tok([prompt] * len(choices), choices, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**{k: v.unsqueeze(0) for k, v in enc.items()}).logits[0]
    expected["multiple_choice"] = [{"prompt": prompt, "choices": choices, "logits": logits.tolist(),
                                    "probabilities": logits.softmax(-1).tolist()}]

    # Embeddings: each pooling over a base model with a pooler; long texts chunked with a stride.
    model, tok = save("embedding", "Model", 17, architectures=["MegatronBertModel"])
    expected["embed"] = []
    for text in ["Paris is the capital of France .", "John",
                 ("John Smith lives in New York and works at Google . " * 3).strip()]:
        windows = tok(text, truncation=True, max_length=MAX_LENGTH, stride=4, return_overflowing_tokens=True,
                      padding=True, return_tensors="pt")
        windows.pop("overflow_to_sample_mapping")
        with torch.no_grad():
            out = model(**windows)
        mask = windows["attention_mask"].unsqueeze(-1).double()
        hidden = out.last_hidden_state
        counts = mask.sum(1)  # (W, 1)
        per_window = {"cls": hidden[:, 0], "pooler": out.pooler_output,
                      "mean": (hidden * mask).sum(1) / counts,
                      "max": hidden.masked_fill(mask == 0, -1e9).max(1).values}
        vectors = {"cls": per_window["cls"].mean(0), "pooler": per_window["pooler"].mean(0),
                   "mean": (per_window["mean"] * counts).sum(0) / counts.sum(),  # every token's weight the same
                   "max": per_window["max"].max(0).values}
        expected["embed"].append({"text": text, "windows": int(hidden.shape[0]), "stride": 4,
                                  **{k: v.tolist() for k, v in vectors.items()}})

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
    with open(os.path.join(OUT, "NOTES.md"), "w") as f:
        f.write(f"Written by scripts/make_task_fixtures.py with transformers {transformers.__version__}, torch "
                f"{torch.__version__}. Models: tiny Megatron-BERT ({json.dumps(SIZES)}), vocab.txt of {len(VOCAB)} "
                f"tokens, {PADDED_ROWS} padded rows, model_max_length {MAX_LENGTH}. See the script's docstring "
                "for what expected.json holds.\n")


if __name__ == "__main__":
    main()
