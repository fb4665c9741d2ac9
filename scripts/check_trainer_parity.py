#!/usr/bin/env python3
"""Our `finetune ner` (or `finetune qa`) step for step beside transformers' real Trainer, with every random choice taken away: dropout 0
in the config, one batch holding the whole training set (so the Trainer's shuffling cannot reorder anything), the
same starting head (drawn once by transformers and saved). After the same optimizer steps the two output directories
should hold the same weights up to float32 round-off: what is left between our real runs and the Trainer's is then
only the random draws (dropout masks, order, masks of masked LM), not the recipe.

Data: the first 48 training sentences of scripts/real_finetune_ner.py (the Lee corpus, labels by rule); with --task qa
the first 24 questions of scripts/real_finetune_qa.py (cloze questions on the same corpus; max length 192, doc stride
64), one batch of all their windows. Model: all-MiniLM-L6-v2 with a token-classification (or qa_outputs) head. Hyperparameters: learning rate 1e-4, 12 epochs of one batch (12
steps), warmup ratio 0.1, weight decay 0.01, linear schedule, clipping 1.0, max length 128.

    swift build -c release
    /tmp/ref/bin/python scripts/check_trainer_parity.py [--task qa]
"""
import argparse
import importlib.util
import json
import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("real_ner", os.path.join(HERE, "real_finetune_ner.py"))
real_ner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_ner)
HYPER = dict(learning_rate=1e-4, epochs=12, warmup_ratio=0.1, weight_decay=0.01, max_length=128)
spec = importlib.util.spec_from_file_location("real_qa", os.path.join(HERE, "real_finetune_qa.py"))
real_qa = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real_qa)


def qa_parity(binary, questions):
    """The same comparison for `finetune qa`: every window of the first questions in one batch."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding
    train = real_qa.corpus()[0][:questions]
    length, stride = real_qa.HYPER["max_length"], real_qa.HYPER["doc_stride"]
    with tempfile.TemporaryDirectory() as scratch:
        start, ours, theirs = (os.path.join(scratch, n) for n in ("start", "ours", "trainer"))
        torch.manual_seed(0)
        model = AutoModelForQuestionAnswering.from_pretrained(real_qa.minilm(), hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        tokenizer = AutoTokenizer.from_pretrained(real_qa.minilm())
        model.save_pretrained(start)
        tokenizer.save_pretrained(start)
        items = []
        for e in train:
            for w in real_qa.qa_fixtures.train_features(tokenizer, e["question"], e["context"], e["answers"], length, stride):
                first = w["input_ids"].index(tokenizer.sep_token_id) + 1
                items.append(dict(input_ids=w["input_ids"], token_type_ids=[0] * first + [1] * (len(w["input_ids"]) - first),
                                  attention_mask=[1] * len(w["input_ids"]), start_positions=w["start"], end_positions=w["end"]))
        path = os.path.join(scratch, "train.jsonl")
        with open(path, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in train)
        subprocess.run([binary, "finetune", "qa", "--model", start, "--train", path, "--output", ours, "--quiet",
                        "--learning-rate", str(HYPER["learning_rate"]), "--epochs", str(HYPER["epochs"]),
                        "--batch-size", str(len(items)), "--warmup-ratio", str(HYPER["warmup_ratio"]),
                        "--weight-decay", str(HYPER["weight_decay"]), "--max-length", str(length), "--doc-stride", str(stride)],
                       check=True)
        trainer_run(AutoModelForQuestionAnswering.from_pretrained(start), items, DataCollatorWithPadding(tokenizer), scratch, theirs)
        report(start, ours, theirs, questions=len(train), windows=len(items))


def trainer_run(model, items, collator, scratch, output):
    """The real Trainer over `items` in one batch per epoch (so its shuffling reorders nothing); the model into output."""
    import torch
    from transformers import Trainer, TrainingArguments

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            return items[i]
    arguments = TrainingArguments(output_dir=os.path.join(scratch, "t"), learning_rate=HYPER["learning_rate"],
                                  num_train_epochs=HYPER["epochs"], per_device_train_batch_size=len(items),
                                  warmup_steps=HYPER["warmup_ratio"], weight_decay=HYPER["weight_decay"], seed=1,
                                  eval_strategy="no", save_strategy="no", report_to=[], use_cpu=True,
                                  logging_strategy="no", disable_tqdm=True)
    Trainer(model=model, args=arguments, train_dataset=Data(), data_collator=collator).train()
    model.save_pretrained(output)


def report(start, ours, theirs, **what):
    import safetensors.torch
    a = safetensors.torch.load_file(os.path.join(ours, "model.safetensors"))
    b = safetensors.torch.load_file(os.path.join(theirs, "model.safetensors"))
    s = safetensors.torch.load_file(os.path.join(start, "model.safetensors"))
    worst, moved, where = 0.0, 0.0, {}
    for name, value in b.items():
        key = name if name in a else name.replace("bert.", "", 1)
        difference = (a[key].double() - value.double()).abs().max().item()
        where[name] = (difference, (value.double() - s[name].double()).abs().max().item())
        worst = max(worst, difference)
        moved = max(moved, where[name][1])
    # Tensors whose gradient is zero in exact arithmetic, so that Adam's normalised step turns round-off into moves of
    # the learning rate's size on both sides: attention key biases (softmax ignores a shift of a query's scores), and
    # for QA the span head's bias and the last LayerNorm's bias (the start and end softmaxes ignore a shift of all
    # positions' logits; the last hidden states' sum over positions meets only that shift).
    flat = [n for n in where if n.endswith("attention.self.key.bias")]
    if what.get("windows"):
        last = max(int(n.split(".")[3]) for n in where if ".layer." in n)
        flat += ["qa_outputs.bias", f"bert.encoder.layer.{last}.output.LayerNorm.bias"]
    rest = max(d for n, (d, _) in where.items() if n not in flat)
    print(json.dumps(dict(**what, steps=HYPER["epochs"], largest_move=moved, worst_difference=worst,
                          worst_difference_where_the_gradient_is_not_zero=rest)))
    # the tensors that differ most, with how far they moved: a difference near a tensor's own move is a recipe's, one
    # of a small fraction of it the round-off that Adam's normalised steps carry
    for name, (difference, move) in sorted(where.items(), key=lambda item: -item[1][0])[:5]:
        print(f"  {name}: difference {difference:.2e}, moved {move:.2e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--sentences", type=int, default=48)
    parser.add_argument("--task", choices=["ner", "qa"], default="ner")
    parser.add_argument("--questions", type=int, default=24)
    args = parser.parse_args()
    if args.task == "qa":
        return qa_parity(args.binary, args.questions)
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification
    torch.set_num_threads(2)
    train, _ = real_ner.corpus()
    train = train[:args.sentences]
    labels = sorted({t for _, tags in real_ner.corpus()[0] for t in tags})
    with tempfile.TemporaryDirectory() as scratch:
        start, ours, theirs = (os.path.join(scratch, n) for n in ("start", "ours", "trainer"))
        torch.manual_seed(0)
        model = AutoModelForTokenClassification.from_pretrained(real_ner.minilm(), num_labels=len(labels), id2label=dict(enumerate(labels)),
                                                                label2id={l: i for i, l in enumerate(labels)},
                                                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        tokenizer = AutoTokenizer.from_pretrained(real_ner.minilm())
        model.save_pretrained(start)
        tokenizer.save_pretrained(start)
        path = os.path.join(scratch, "train.conll")
        real_ner.conll(path, train)
        subprocess.run([args.binary, "finetune", "ner", "--model", start, "--train", path, "--output", ours, "--quiet",
                        "--learning-rate", str(HYPER["learning_rate"]), "--epochs", str(HYPER["epochs"]),
                        "--batch-size", str(len(train)), "--warmup-ratio", str(HYPER["warmup_ratio"]),
                        "--weight-decay", str(HYPER["weight_decay"]), "--max-length", str(HYPER["max_length"])], check=True)
        items = real_ner.encode(tokenizer, train, {l: i for i, l in enumerate(labels)})
        trainer_run(AutoModelForTokenClassification.from_pretrained(start), items, DataCollatorForTokenClassification(tokenizer),
                    scratch, theirs)
        report(start, ours, theirs, sentences=len(train))


if __name__ == "__main__":
    main()
