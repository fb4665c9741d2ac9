#!/usr/bin/env python3
"""Our `finetune ner` step for step beside transformers' real Trainer, with every random choice taken away: dropout 0
in the config, one batch holding the whole training set (so the Trainer's shuffling cannot reorder anything), the
same starting head (drawn once by transformers and saved). After the same optimizer steps the two output directories
should hold the same weights up to float32 round-off: what is left between our real runs and the Trainer's is then
only the random draws (dropout masks, order, masks of masked LM), not the recipe.

Data: the first 48 training sentences of scripts/real_finetune_ner.py (the Lee corpus, labels by rule). Model:
all-MiniLM-L6-v2 with a token-classification head. Hyperparameters: learning rate 1e-4, 12 epochs of one batch (12
steps), warmup ratio 0.1, weight decay 0.01, linear schedule, clipping 1.0, max length 128.

    swift build -c release
    /tmp/ref/bin/python scripts/check_trainer_parity.py
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", ".build", "release", "megatron-bert"))
    parser.add_argument("--sentences", type=int, default=48)
    args = parser.parse_args()
    import safetensors.torch
    import torch
    from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, Trainer,
                              TrainingArguments)
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

        class Data(torch.utils.data.Dataset):
            def __len__(self):
                return len(items)

            def __getitem__(self, i):
                return items[i]
        model = AutoModelForTokenClassification.from_pretrained(start)
        trainer_args = TrainingArguments(output_dir=os.path.join(scratch, "t"), learning_rate=HYPER["learning_rate"],
                                         num_train_epochs=HYPER["epochs"], per_device_train_batch_size=len(train),
                                         warmup_steps=HYPER["warmup_ratio"], weight_decay=HYPER["weight_decay"], seed=1,
                                         eval_strategy="no", save_strategy="no", report_to=[], use_cpu=True,
                                         logging_strategy="no", disable_tqdm=True)
        Trainer(model=model, args=trainer_args, train_dataset=Data(), data_collator=DataCollatorForTokenClassification(tokenizer)).train()
        model.save_pretrained(theirs)
        a = safetensors.torch.load_file(os.path.join(ours, "model.safetensors"))
        b = safetensors.torch.load_file(os.path.join(theirs, "model.safetensors"))
        s = safetensors.torch.load_file(os.path.join(start, "model.safetensors"))
        worst, moved = 0.0, 0.0
        for name, value in b.items():
            key = name if name in a else name.replace("bert.", "", 1)
            worst = max(worst, (a[key].double() - value.double()).abs().max().item())
            moved = max(moved, (value.double() - s[name].double()).abs().max().item())
        print(json.dumps(dict(sentences=len(train), steps=HYPER["epochs"], largest_move=moved, worst_difference=worst)))


if __name__ == "__main__":
    main()
