#!/usr/bin/env python3
"""Golden tokenizations from Hugging Face's BertTokenizerFast (Rust `tokenizers`) on a hard corpus, with the
cased Megatron-BERT vocabulary; the slow (Python) BertTokenizer's ids are recorded beside them, and where the
two disagree.

    /tmp/ref/bin/python scripts/make_tokenizer_fixtures.py vocab/megatron-bert-cased-vocab.txt \
        Tests/BERTTokenizerTests/Fixtures/golden.json
"""
import json
import sys

import tokenizers
import transformers
from transformers import BertTokenizerFast
from transformers.models.bert.tokenization_bert import load_vocab
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

CORPUS = [
    "Hello, world!",
    "The capital of France is [MASK].",
    "",
    "   ",
    "\t\n\r ",
    "café naïve résumé Ångström",
    "e\u0301 combining acute, a\u0308, n\u0303",
    "北京欢迎你 and 東京",
    "ภาษาไทยง่ายนิดเดียว",
    "مرحبا بالعالم",
    "emoji 😀👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "nul\x00char and \ufffd replacement and \x07 bell",
    "non\u00a0breaking\u3000ideographic\u2003em space",
    "line\u2028separator\u0085next",
    "Supercalifragilisticexpialidocious" * 4,
    "a" * 101,
    "https://example.com/path?query=1&x=2#frag",
    "def f(x): return x**2 + 3.14159e-10  # code",
    "12,345.67 and 1/2 and 3-4 and $100",
    "[CLS] inside [SEP] text [PAD] and [UNK] and [mask] and [MASK][MASK]",
    "a[MASK]b",
    "Don't stop—won't stop… «quotes» „these“ ¿qué? ¡sí!",
    "Megatron-BERT 345M was trained by NVIDIA's ADLR team.",
    "ＦＵＬＬＷＩＤＴＨ ｌｅｔｔｅｒｓ ①②③",
    "Ελληνικά Русский язык עברית हिन्दी",
    "ǅ ǈ ǋ İstanbul ß ﬁ",
    "tabs\tand\nnewlines\r\nhere",
    "under_score and back\\slash and pipe|and~tilde^caret`grave",
    "¡" * 5 + "…" * 3,
]

PAIRS = [
    ("Who trained Megatron-BERT?", "NVIDIA trained it with 345 million parameters."),
    ("short", "a much longer second text that will need to be truncated when the limit is small"),
    ("a much longer first text that will need to be truncated when the limit is small", "short"),
]


def record(tok, text, pair=None, **kw):
    enc = tok(text, pair, return_offsets_mapping=True, return_special_tokens_mask=True, **kw)
    fast = tok._tokenizer.encode(text, pair) if pair is not None else tok._tokenizer.encode(text)
    return {
        "input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
        "attention_mask": enc["attention_mask"], "special_tokens_mask": enc["special_tokens_mask"],
        "offsets": [list(o) for o in enc["offset_mapping"]], "word_ids": enc.word_ids(),
        "tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
    }


def main():
    vocab, out = sys.argv[1], sys.argv[2]
    cases, overflow = [], []
    for lower in [False, True]:
        fast = BertTokenizerFast(vocab=load_vocab(vocab), do_lower_case=lower)
        slow = BertTokenizerLegacy(vocab_file=vocab, do_lower_case=lower)
        for text in CORPUS:
            case = {"text": text, "do_lower_case": lower, **record(fast, text)}
            case["decoded"] = fast.decode(case["input_ids"])
            case["decoded_skip_special"] = fast.decode(case["input_ids"], skip_special_tokens=True)
            slow_ids = slow(text)["input_ids"]
            if slow_ids != case["input_ids"]:
                case["slow_input_ids"] = slow_ids
            cases.append(case)
    fast = BertTokenizerFast(vocab=load_vocab(vocab), do_lower_case=False)
    for a, b in PAIRS:
        cases.append({"text": a, "pair": b, "do_lower_case": False, **record(fast, a, b)})
        for strategy in ["longest_first", "only_first", "only_second"]:
            for max_length in [8, 12]:
                try:
                    result = record(fast, a, b, truncation=strategy, max_length=max_length)
                except Exception as error:  # HF refuses some: recorded as an error
                    result = {"error": str(error).splitlines()[0]}
                cases.append({"text": a, "pair": b, "do_lower_case": False, "truncation": strategy,
                              "max_length": max_length, **result})
    # Overflowing windows with a stride (what QA over long contexts uses).
    long_text = "NVIDIA trained Megatron-BERT, a 345-million-parameter BERT, on Wikipedia, CC-Stories, RealNews and OpenWebText."
    for text, pair, strategy in [(long_text, None, "longest_first"), ("Who trained it?", long_text, "only_second"),
                                 (long_text, "Who trained it?", "only_first")]:
        for max_length, stride in [(12, 3), (16, 0), (20, 5)]:
            enc = fast(text, pair, truncation=strategy, max_length=max_length, stride=stride,
                       return_overflowing_tokens=True, return_offsets_mapping=True)
            windows = [{"input_ids": enc["input_ids"][k], "token_type_ids": enc["token_type_ids"][k],
                        "offsets": [list(o) for o in enc["offset_mapping"][k]], "word_ids": enc.word_ids(k)}
                       for k in range(len(enc["input_ids"]))]
            overflow.append({"text": text, "pair": pair, "truncation": strategy, "max_length": max_length,
                             "stride": stride, "windows": windows})
    # Added tokens (not normalized): one ordinary, one special; ids follow the vocabulary.
    from tokenizers import AddedToken
    added_tok = BertTokenizerFast(vocab=load_vocab(vocab), do_lower_case=False)
    added_tok.add_tokens([AddedToken("<ent>", normalized=False)])
    added_tok.add_special_tokens({"additional_special_tokens": [AddedToken("<doc>", normalized=False)]})
    added = {"tokens": ["<ent>", "<doc>"], "special": [False, True], "cases": []}
    for text in ["<doc>Paris<ent> is in <ent>France</ent>.", "x<ent>y <doc> [MASK]<doc>", "no added tokens here"]:
        enc = added_tok(text, return_offsets_mapping=True)
        added["cases"].append({"text": text, "input_ids": enc["input_ids"], "offsets": [list(o) for o in enc["offset_mapping"]],
                               "decoded_skip_special": added_tok.decode(enc["input_ids"], skip_special_tokens=True)})
    with open(out, "w") as f:
        json.dump({"generator": f"scripts/make_tokenizer_fixtures.py, transformers {transformers.__version__}, "
                                f"tokenizers {tokenizers.__version__}", "cases": cases, "overflow": overflow, "added": added}, f, ensure_ascii=False, indent=0)
    disagree = [c["text"] for c in cases if "slow_input_ids" in c]
    print(f"{len(cases)} cases; fast and slow disagree on {len(disagree)}: {disagree}")


if __name__ == "__main__":
    main()
