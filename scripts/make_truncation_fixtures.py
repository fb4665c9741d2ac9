#!/usr/bin/env python3
"""Differential truncation cases: random texts and pairs from a mixed-script word pool, every truncation strategy,
odd and even max_lengths 5..80, with and without stride and overflowing windows, with and without padding, and
cases cut on the left (`truncation_side="left"`), run
through Hugging Face's BertTokenizerFast (Rust `tokenizers`) with the cased Megatron-BERT vocabulary. What it
answers (input_ids, token_type_ids, attention_mask, offsets of every window, or the error) is written as one
JSON document inside a deflated zip, which the Swift tests read with TensorFiles' own zip reader.

To keep the fixture small, the cases draw their texts from a pool, each text's tokens (ids, offsets) are stored
once, and a window is stored as the slices of the two texts it holds plus its padded length. Every window is
rebuilt from that form here and checked equal to what BertTokenizerFast returned (ids, type ids, attention mask,
offsets), so the form loses nothing.

    /tmp/ref/bin/python scripts/make_truncation_fixtures.py vocab/megatron-bert-cased-vocab.txt \
        Tests/BERTTokenizerTests/Fixtures/truncation.zip [--cases 20000] [--left-cases 3000] [--seed 15]
"""
import argparse
import json
import random
import zipfile

import tokenizers
import transformers
from transformers import BertTokenizerFast
from transformers.models.bert.tokenization_bert import load_vocab

WORDS = (
    # English, and words WordPiece splits
    "the of and to in is was he for it with as his on be at by that from this had not are but were they which "
    "one all she there been has when who will more no if out so said what up its about than into them can only "
    "other new some could time these two may then do first any my now such like our over man me even most made "
    "after also did many before must through years where much your way well down should because each just those "
    "Megatron-BERT NVIDIA's transformer tokenization unbelievable reconsideration Paris London Washington "
    # Latin with accents and other Latin letters
    "café naïve résumé Ångström Müller señor über façade Zürich élan Łódź Ørsted straße İstanbul ǅemal crème brûlée "
    # CJK, Hangul, Thai, Arabic, Hebrew, Cyrillic, Greek, Devanagari
    "北京 東京 欢迎你 日本語 中文字符 한국어 ภาษาไทย مرحبا بالعالم العربية שלום Москва язык Ελληνικά हिन्दी "
    # emoji (with skin tones, ZWJ sequences, flags)
    "😀 👍🏽 👨‍👩‍👧 🇫🇷 ❤️ 🚀🚀 "
    # numbers and punctuation runs
    "3.14159 12,345 1/2 $100 ... ?! !!! — « » „ “ ¿qué? ¡sí! (((x))) --- *** #hashtag @user e-mail C++ "
    # long words: WordPiece pieces, and one over 100 characters (→ [UNK])
    "Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis "
    + "x" * 101 + " "
    # special tokens inside text, odd spaces and controls
    "[MASK] [SEP] [UNK] zero\u200bwidth non\u00a0breaking tab\tbed"
).split(" ")

STRATEGIES = ["longest_first", "only_first", "only_second", "do_not_truncate"]


def random_text(rng):
    n = rng.choice([0, 1, 2, 3] + list(range(4, 45)))
    return " ".join(rng.choice(WORDS) for _ in range(n))


def tokens(tok, text):
    """A text's tokens without special tokens: ids and offsets, as the windows slice them."""
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return {"ids": enc["input_ids"], "offsets": [x for o in enc["offset_mapping"] for x in o]}


def slices(tok, window_ids, window_types, window_mask, window_offsets, first, second):
    """[a_start, a_end, b_start, b_end, length] such that `[CLS] A[a] [SEP] (B[b] [SEP]) [PAD]…` rebuilds the
    window exactly; raises if none does."""
    cls, sep, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id
    length = len(window_ids)
    real = sum(window_mask)
    n_first = window_types[:real].count(0) - 2
    n_second = real - 2 - n_first - (1 if second is not None else 0)
    a_ids = window_ids[1:1 + n_first]
    a_offsets = [x for o in window_offsets[1:1 + n_first] for x in o]
    a_start = next((s for s in range(len(first["ids"]) - n_first + 1)
                    if first["ids"][s:s + n_first] == a_ids and first["offsets"][2 * s:2 * (s + n_first)] == a_offsets), None)
    b_start = 0
    if second is not None:
        b_ids = window_ids[2 + n_first:2 + n_first + n_second]
        b_offsets = [x for o in window_offsets[2 + n_first:2 + n_first + n_second] for x in o]
        b_start = next((s for s in range(len(second["ids"]) - n_second + 1)
                        if second["ids"][s:s + n_second] == b_ids and second["offsets"][2 * s:2 * (s + n_second)] == b_offsets), None)
    assert a_start is not None and b_start is not None, "a window that is not a slice of each text"
    row = [a_start, a_start + n_first, b_start, b_start + n_second, length]
    # Rebuild it and compare with what HF returned: the compact form must lose nothing.
    ids = [cls] + first["ids"][row[0]:row[1]] + [sep]
    types = [0] * len(ids)
    offsets = [(0, 0)] + [tuple(first["offsets"][2 * k:2 * k + 2]) for k in range(row[0], row[1])] + [(0, 0)]
    if second is not None:
        ids += second["ids"][row[2]:row[3]] + [sep]
        types += [1] * (row[3] - row[2] + 1)
        offsets += [tuple(second["offsets"][2 * k:2 * k + 2]) for k in range(row[2], row[3])] + [(0, 0)]
    mask = [1] * len(ids) + [0] * (length - len(ids))
    types += [0] * (length - len(ids))
    offsets += [(0, 0)] * (length - len(ids))
    ids += [pad] * (length - len(ids))
    assert (ids, types, mask, offsets) == (list(window_ids), list(window_types), list(window_mask),
                                           [tuple(o) for o in window_offsets]), "rebuilt window differs"
    return row


def run(tok, case, first, second):
    kw = {"max_length": case["max_length"], "return_offsets_mapping": True}
    kw["truncation"] = False if case["truncation"] == "do_not_truncate" else case["truncation"]
    if case["overflow"]:
        kw["return_overflowing_tokens"] = True
        kw["stride"] = case["stride"]
    if case["padding"]:
        kw["padding"] = case["padding"]
        if case.get("pad_to_multiple_of"):
            kw["pad_to_multiple_of"] = case["pad_to_multiple_of"]
    tok.truncation_side = case.get("side", "right")
    try:
        enc = tok(case["text"], case.get("pair"), **kw)
    except BaseException as error:  # Rust panics (stride too large) arrive as pyo3's PanicException
        message = str(error).splitlines()[0]
        kind = ("second_missing" if "Second sequence not provided" in message else
                "too_short" if "too short" in message else
                "stride" if "stride" in message else "other")
        return {"error": kind}
    rows = [enc[k] if case["overflow"] else [enc[k]]
            for k in ["input_ids", "token_type_ids", "attention_mask", "offset_mapping"]]
    return {"windows": [slices(tok, *window, first, second) for window in zip(*rows)]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab")
    parser.add_argument("out")
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--left-cases", type=int, default=3000, help="cases cut on the left (one window, no overflow)")
    parser.add_argument("--texts", type=int, default=1200, help="size of the text pool the cases draw from")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tok = BertTokenizerFast(vocab=load_vocab(args.vocab), do_lower_case=False)
    texts = [random_text(rng) for _ in range(args.texts)]
    pool = [{"text": t, **tokens(tok, t)} for t in texts]
    nonempty = [k for k, t in enumerate(texts) if t]
    cases = []
    counts = {}
    for _ in range(args.cases):
        case = {"text": rng.randrange(len(texts)), "truncation": rng.choice(STRATEGIES), "max_length": rng.randint(5, 80)}
        if rng.random() < 0.7:
            # Not an empty pair: transformers' single-input call encodes `(text, "")` as the text alone (its batch
            # call and `tokenizers` as a pair with an empty second text, as we do).
            case["pair"] = rng.choice(nonempty)
        case["overflow"] = rng.random() < 0.4
        case["stride"] = rng.choice([0, 0, 1, 2, 3, 5, 8, 13]) if case["overflow"] else 0
        case["padding"] = rng.choice([None, None, "longest", "max_length"])
        if case["padding"] and rng.random() < 0.3:
            # HF refuses a multiple that max_length is not a multiple of, when it also truncates.
            multiple = rng.choice([2, 4, 8])
            if case["truncation"] == "do_not_truncate" or case["max_length"] % multiple == 0:
                case["pad_to_multiple_of"] = multiple
        query = dict(case, text=texts[case["text"]], pair=texts[case["pair"]] if "pair" in case else None)
        case.update(run(tok, query, pool[case["text"]], pool[case["pair"]] if "pair" in case else None))
        outcome = case.get("error", "windows>1" if len(case.get("windows", [])) > 1 else "ok")
        counts[outcome] = counts.get(outcome, 0) + 1
        cases.append(case)
    # Cut on the left (`truncation_side="left"`, TEI's `truncation_direction: Left`), one window each: from their own
    # random stream, so that the cases above stay what they were.
    left = random.Random(args.seed + 1)
    for _ in range(args.left_cases):
        case = {"text": left.randrange(len(texts)), "truncation": left.choice(STRATEGIES[:3]), "max_length": left.randint(5, 80),
                "side": "left", "overflow": False, "stride": 0, "padding": left.choice([None, "longest"])}
        if left.random() < 0.5:
            case["pair"] = left.choice(nonempty)
        query = dict(case, text=texts[case["text"]], pair=texts[case["pair"]] if "pair" in case else None)
        case.update(run(tok, query, pool[case["text"]], pool[case["pair"]] if "pair" in case else None))
        outcome = "left " + case.get("error", "ok")
        counts[outcome] = counts.get(outcome, 0) + 1
        cases.append(case)
    document = {"generator": f"scripts/make_truncation_fixtures.py --cases {args.cases} --left-cases {args.left_cases} --texts {args.texts} "
                             f"--seed {args.seed}, transformers {transformers.__version__}, tokenizers {tokenizers.__version__}",
                "special": {"cls": tok.cls_token_id, "sep": tok.sep_token_id, "pad": tok.pad_token_id},
                "texts": pool, "cases": cases}
    with zipfile.ZipFile(args.out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("truncation.json", json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    print(f"{len(cases)} cases: {counts}")


if __name__ == "__main__":
    main()
