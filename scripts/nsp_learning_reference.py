#!/usr/bin/env python3
"""What PyTorch learns of next-sentence prediction on the data of MaskedLMTrainingTests'
nextSentencePredictionTrainsThePreTrainingHead: the fixture MegatronBertForPreTraining (Tests/MegatronTrainingTests/
Fixtures/megatron-pretraining) with dropout 0.1, 56 one-topic documents of short sentences (the topic cycling through
four word sets), pairs made as BERT's create_pretraining_data.py makes them (at most 10 tokens), 15% of the tokens
masked, AdamW at 3e-3 with 10% warmup and linear decay, batch 8, clipping 1.0, 800 steps. Prints the next-sentence
accuracy and loss on the training pairs (inputs masked) every 200 steps: the reference for that test's bound.

    /tmp/ref/bin/python scripts/nsp_learning_reference.py
"""
import os
import random

import torch
from transformers import MegatronBertForPreTraining

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(0)
random.seed(0)
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "green", "blue", "cat", "dog", "bird", "runs", "sleeps",
         "sings", "big", "small", "old", "new", "the", "a", "and", "on", "in", "tree", "house", "river", "sky", "sun",
         "moon", "day", "night", "fast", "slow", "very", "not", "is", "was", "one", "two", "three", "four"]
ID = {w: i for i, w in enumerate(WORDS)}
TOPICS = [["red", "green", "blue"], ["cat", "dog", "bird"], ["one", "two", "three", "four"], ["tree", "river", "sky", "sun", "moon"]]
DOCS = [[[ID[random.choice(TOPICS[d % 4])] for _ in range(random.randint(1, 3))] for _ in range(random.randint(2, 6))] for d in range(56)]
LIMIT = 10 - 3


def pairs():
    """create_pretraining_data.py's instances (target length the limit), with truncate_seq_pair."""
    made = []
    for index, doc in enumerate(DOCS):
        chunk, length, i = [], 0, 0
        while i < len(doc):
            chunk.append(doc[i])
            length += len(doc[i])
            if i == len(doc) - 1 or length >= LIMIT:
                a_end = random.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
                a = sum(chunk[:a_end], [])
                if len(chunk) == 1 or random.random() < 0.5:
                    label, other = 1, index
                    while other == index:
                        other = random.randint(0, len(DOCS) - 1)
                    b = []
                    for sentence in DOCS[other][random.randint(0, len(DOCS[other]) - 1):]:
                        b += sentence
                        if len(b) >= LIMIT - len(a):
                            break
                    i -= len(chunk) - a_end
                else:
                    label, b = 0, sum(chunk[a_end:], [])
                while len(a) + len(b) > LIMIT:
                    if len(a) > len(b):
                        a = a[1:] if random.random() < 0.5 else a[:-1]
                    else:
                        b = b[1:] if random.random() < 0.5 else b[:-1]
                made.append(([2] + a + [3] + b + [3], [0] * (len(a) + 2) + [1] * (len(b) + 1), label))
                chunk, length = [], 0
            i += 1
    return made


def batch(rows):
    s = max(len(r[0]) for r in rows)
    return (torch.tensor([r[0] + [0] * (s - len(r[0])) for r in rows]), torch.tensor([r[1] + [0] * (s - len(r[1])) for r in rows]),
            torch.tensor([[1] * len(r[0]) + [0] * (s - len(r[0])) for r in rows]), torch.tensor([r[2] for r in rows]))


def mask(ids, generator=None):
    chosen = (torch.rand(ids.shape, generator=generator) < 0.15) & (ids > 4)
    labels, ids = ids.clone(), ids.clone()
    labels[~chosen] = -100
    ids[chosen] = 4
    return ids, labels


def main():
    train = pairs()
    model = MegatronBertForPreTraining.from_pretrained(os.path.join(HERE, "..", "Tests", "MegatronTrainingTests", "Fixtures", "megatron-pretraining"),
                                                       hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    steps, warmup = 800, 80
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: s / warmup if s < warmup else max(0, (steps - s) / (steps - warmup)))

    def evaluate():
        model.eval()
        correct, loss = 0, 0.0
        with torch.no_grad():
            for k in range(0, len(train), 8):
                ids, types, attention, labels = batch(train[k:k + 8])
                ids, _ = mask(ids, torch.Generator().manual_seed(k))
                logits = model(input_ids=ids, token_type_ids=types, attention_mask=attention).seq_relationship_logits
                correct += (logits.argmax(-1) == labels).sum().item()
                loss += torch.nn.functional.cross_entropy(logits, labels).item() * len(labels)
        model.train()
        return f"accuracy {correct / len(train):.3f}, loss {loss / len(train):.3f}"

    print(f"{len(train)} pairs ({sum(p[2] for p in train)} random); before: {evaluate()}")
    step = 0
    while step < steps:
        order = list(range(len(train)))
        random.shuffle(order)
        for k in range(0, len(order), 8):
            ids, types, attention, labels = batch([train[j] for j in order[k:k + 8]])
            ids, targets = mask(ids)
            model(input_ids=ids, token_type_ids=types, attention_mask=attention, labels=targets, next_sentence_label=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 200 == 0:
                print(f"step {step}: {evaluate()}")
            if step >= steps:
                break


if __name__ == "__main__":
    main()
