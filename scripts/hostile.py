#!/usr/bin/env python3
"""Every hostile case of issue 14 (reliability), run against the built `megatron-bert`: crafted pickles and zips,
absurd sizes, pipes and devices as input, full disks and closed pipes as output, bad JSON, bad flags, interrupted
and concurrent conversions. Python's standard library only (no torch): the files are written byte by byte.

    swift build -c release
    python3 scripts/hostile.py report [--binary .build/release/megatron-bert]    # the table for the README
    python3 scripts/hostile.py list                                               # the cases as JSON (the Swift tests run them)
    python3 scripts/hostile.py make DIR                                           # write the hostile inputs into DIR

Each case is a bash command (`$MB` is the binary, `$H` the directory of hostile inputs, `$FIXTURES` the test
fixtures) with what it must do: its exit status, a phrase its output must contain, and a bound on the peak
resident memory of the whole process tree. The download cases need a misbehaving HTTP server and live in the
Swift tests (ModelDownloadTests).
"""
import argparse
import collections
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import types
import zipfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FIXTURES = os.path.join(ROOT, "Tests", "MegatronBERTTests", "Fixtures")

# ---------------------------------------------------------------------------------------------------------------
# Hostile files, written without torch: pickles by hand or through a fake `torch` module.


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called: only named in pickles")


class FloatStorage:
    pass


def fake_torch():
    """Just enough of `torch` for pickle to name its globals: `_rebuild_tensor_v2` and `FloatStorage`."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    FloatStorage.__module__ = "torch"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch.FloatStorage = FloatStorage
    sys.modules.setdefault("torch", torch)
    sys.modules.setdefault("torch._utils", utils)
    return sys.modules["torch"], sys.modules["torch._utils"]


class Storage:
    def __init__(self, key, count):
        self.key, self.count = key, count


class Tensor:
    def __init__(self, storage, size, stride):
        self.storage, self.size, self.stride = storage, size, stride

    def __reduce__(self):
        _, utils = fake_torch()
        return utils._rebuild_tensor_v2, (self.storage, 0, self.size, self.stride, False, collections.OrderedDict())


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            torch, _ = fake_torch()
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.count)
        return None


def torch_zip(path, obj, storages):
    buffer = io.BytesIO()
    TorchPickler(buffer, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buffer.getvalue())
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data)


def raw_pickle_zip(path, pickle_bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle_bytes)


def make(directory):
    os.makedirs(directory, exist_ok=True)
    at = lambda name: os.path.join(directory, name)
    # The 258-byte case: {"model": [<itself>]}.
    raw_pickle_zip(at("self-list.pt"), b"\x80\x02}X\x05\x00\x00\x00model]\x94h\x00as.")
    # Lists nested 30,000 deep: 30,000 EMPTY_LIST, then 29,999 APPEND.
    raw_pickle_zip(at("nested.pt"), b"\x80\x02}X\x05\x00\x00\x00model" + b"]" * 30000 + b"a" * 29999 + b"s.")
    # "Billion laughs": 40 levels of lists, each holding the previous one twice (615 bytes of pickle).
    body = b"]\x940"  # EMPTY_LIST, MEMOIZE, POP
    for level in range(1, 41):
        body += b"](h" + bytes([level - 1]) + b"h" + bytes([level - 1]) + b"e\x940"  # [memo[l-1], memo[l-1]]
    raw_pickle_zip(at("laughs.pt"), b"\x80\x02}X\x05\x00\x00\x00model" + body + b"h\x28s.")
    # Tuples nested 500,000 deep.
    raw_pickle_zip(at("tuples.pt"), b"\x80\x02}X\x05\x00\x00\x00modelN" + b"\x85" * 500000 + b"s.")
    # torch.ones(1).expand(100000, 100000): a stride-0 view 4 bytes big.
    torch_zip(at("stride0.pt"), {"model": Tensor(Storage("0", 1), (100000, 100000), (0, 0))}, {"0": b"\x00\x00\x80\x3f"})
    # 40,000 tensors, each its own zip entry.
    torch_zip(at("many.pt"), {f"t{i}": Tensor(Storage(str(i), 1), (1,), (1,)) for i in range(40000)},
              {str(i): b"\x00\x00\x80\x3f" for i in range(40000)})
    # An NGC-style zip whose deflated entry claims 1000x more than it holds (within DEFLATE's ratio, ZIP64).
    with zipfile.ZipFile(at("lying.zip"), "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("release/mp_rank_00/model_optim_rng.pt", os.urandom(1 << 20))
    patch_zip64_size(at("lying.zip"), 1000 << 20)
    # A model directory whose config says 10^9 layers, and one with layer_norm_eps "x".
    for name, change in [("layers", {"num_hidden_layers": 10 ** 9}), ("eps", {"layer_norm_eps": "x"})]:
        target = at(f"config-{name}")
        shutil.copytree(os.path.join(FIXTURES, "tasks", "embedding"), target, dirs_exist_ok=True)
        config = json.load(open(os.path.join(target, "config.json")))
        config.update(change)
        json.dump(config, open(os.path.join(target, "config.json"), "w"))
    # A Megatron-LM file without a vocabulary beside it.
    os.makedirs(at("megatron"), exist_ok=True)
    shutil.copy(os.path.join(FIXTURES, "megatron", "v2-new-names.pt"), at("megatron/model.pt"))
    # A vocabulary of 50 tokens, which the fixture models (53 rows) can use, and one they cannot hold.
    open(at("small-vocab.txt"), "w").write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(45)]) + "\n")
    shutil.copy(os.path.join(ROOT, "vocab", "megatron-bert-cased-vocab.txt"), at("big-vocab.txt"))
    # JSON Lines: invalid UTF-8, a lone surrogate, deep nesting, a duplicate key, one 50 MB text.
    open(at("utf8.jsonl"), "wb").write(b'{"text": "Par\xff\xfeis [MASK]"}\n')
    open(at("surrogate.jsonl"), "w").write('{"text": "a \\ud800 [MASK]"}\n')
    open(at("deep.jsonl"), "w").write('{"text": ' + "[" * 100000 + "]" * 100000 + "}\n")
    open(at("duplicate.jsonl"), "w").write('{"text": "no mask", "text": "a [MASK] b"}\n')
    open(at("long.jsonl"), "w").write(json.dumps({"text": "[MASK] " + "word " * 10_000_000}) + "\n")
    open(at("long-embed.jsonl"), "w").write(json.dumps({"text": "the cat sat on the mat . " * 32_000}) + "\n")  # 800 KB
    # A forward batch of 100,000 rows.
    json.dump({"input_ids": [[2, 17, 5, 3]] * 100_000}, open(at("batch-100k.json"), "w"))
    # A symlink loop.
    for a, b in [("loop-a", "loop-b"), ("loop-b", "loop-a")]:
        if not os.path.lexists(at(a)):
            os.symlink(at(b), at(a))


def patch_zip64_size(path, claimed):
    """Rewrites the zip's only entry to claim `claimed` uncompressed bytes through a ZIP64 extra field."""
    data = bytearray(open(path, "rb").read())
    end = data.rfind(b"PK\x05\x06")
    directory = int.from_bytes(data[end + 16:end + 20], "little")
    name_length = int.from_bytes(data[directory + 28:directory + 30], "little")
    compressed = int.from_bytes(data[directory + 20:directory + 24], "little")
    extra = (1).to_bytes(2, "little") + (16).to_bytes(2, "little") + claimed.to_bytes(8, "little") + compressed.to_bytes(8, "little")
    record = bytearray(data[directory:directory + 46 + name_length])
    record[20:24] = b"\xff\xff\xff\xff"
    record[24:28] = b"\xff\xff\xff\xff"
    record[30:32] = len(extra).to_bytes(2, "little")
    record += extra
    new_directory = bytes(record)
    tail = bytearray(data[end:end + 22])
    tail[12:16] = len(new_directory).to_bytes(4, "little")
    open(path, "wb").write(bytes(data[:directory]) + new_directory + bytes(tail))


# ---------------------------------------------------------------------------------------------------------------
# The cases: (name, command, exit status, phrase in stdout+stderr, peak RSS bound in MB).

FILL = '$MB fill-mask --model "$FIXTURES/tasks/pretraining"'
EMBED = '$MB embed --model "$FIXTURES/tasks/embedding"'
CONVERT = '$MB convert "$FIXTURES/megatron/v2-new-names.pt"'

CASES = [
    # 1. The pickle reader
    ("pickle: a list holding itself (inspect)", '$MB inspect "$H/self-list.pt"', 1, "holds itself", 100),
    ("pickle: a list holding itself (convert)", CONVERT.replace("$FIXTURES/megatron/v2-new-names.pt", "$H/self-list.pt") + ' --output "$H/out-self"', 1, "holds itself", 100),
    ("pickle: a list holding itself (--model)", FILL.replace('"$FIXTURES/tasks/pretraining"', '"$H/self-list.pt" --vocab "$FIXTURES/tasks/vocab.txt"') + ' "a [MASK]"', 1, "holds itself", 100),
    ("pickle: lists nested 30,000 deep", '$MB inspect "$H/nested.pt"', 1, "nest more than 100 deep", 100),
    ("pickle: 40 levels sharing lists (2^40 paths)", '$MB inspect "$H/laughs.pt"', 0, "model = [[[[", 100),
    ("pickle: tuples nested 500,000 deep", '$MB inspect "$H/tuples.pt"', 1, "tuples nested more than 100 deep", 100),
    # 2. Sizes taken on trust
    ("stride-0 view of 10^10 elements", '$MB inspect "$H/stride0.pt"', 1, "a broadcast view", 100),
    ("zip entry claiming 1000x its data", '$MB inspect "$H/lying.zip"', 1, "inflates to", 100),
    ("config with 10^9 layers", '$MB info --model "$H/config-layers"', 1, "num_hidden_layers 1000000000 but the checkpoint holds 2", 100),
    ("--batch-size 2^63-1", EMBED + ' --batch-size 9223372036854775807 "a b"', 1, "batch size 9223372036854775807 is too large", 100),
    ("bench --batch 1000000", '$MB bench --random-weights --batch 1000000 --seq 128', 1, "needs about", 200),
    ("forward of a 100,000-row batch", '$MB forward --model "$FIXTURES/models/megatron-ForPreTraining" --input "$H/batch-100k.json" --output "$H/out.safetensors"', 0, "wrote", 1500),
    ("fill-mask on one 50 MB text", FILL + ' --input "$H/long.jsonl" --json --quiet', 0, '"score"', 900),
    # 3. Input read exactly once, as a stream
    ("--input /dev/stdin from a pipe", "printf '{\"text\":\"a [MASK]\"}\\n' | " + FILL + " --input /dev/stdin --json", 0, '"score"', 100),
    ("--input <(…)", FILL + " --input <(printf '{\"text\":\"a [MASK]\"}\\n') --json", 0, '"score"', 100),
    ("--input DIR", FILL + ' --input "$H"', 1, "is a directory", 100),
    ("--input /dev/zero", "timeout 120 " + FILL + " --input /dev/zero", 1, "longer than 64 MiB", 400),
    # 4. Output errors
    ("embed > /dev/full", EMBED + ' --json "a b" > /dev/full', 1, "No space left on device", 100),
    ("inspect > /dev/full", '$MB inspect "$FIXTURES/megatron/ngc.zip" > /dev/full', 1, "No space left on device", 100),
    ("info > /dev/full", '$MB info --model "$FIXTURES/tasks/embedding" > /dev/full', 1, "No space left on device", 100),
    ("inspect | head -1", '$MB inspect "$FIXTURES/megatron/ngc.zip" | head -1; exit ${PIPESTATUS[0]}', 0, "ngc.zip", 100),
    # 5. Windows linear in the text's length
    ("embed of one 800 KB text (windows)", EMBED + ' --input "$H/long-embed.jsonl" --json --quiet', 0, '"embedding"', 300),
    # 7. Conversion
    ("convert with a vocabulary too large", CONVERT + ' --output "$H/out-vocab" --vocab "$H/big-vocab.txt"; s=$?; test -e "$H/out-vocab" && s=99; exit $s', 1, "has 28996 tokens but the checkpoint has only 53", 100),
    ("two converts into one directory", '(' + CONVERT + ' --output "$H/out-both" & ' + CONVERT + ' --output "$H/out-both"; wait) 2>&1; $MB info --model "$H/out-both"', 0, "MegatronBertForPreTraining", 200),
    ("convert killed part way", '(' + CONVERT + ' --output "$H/out-kill" & p=$!; sleep 0.02; kill -9 $p; wait) ; test ! -e "$H/out-kill" || test -f "$H/out-kill/model.safetensors"; echo whole-or-nothing', 0, "whole-or-nothing", 200),
    # 8. Quiet wrong defaults
    ("config field of the wrong type", '$MB info --model "$H/config-eps"', 1, "layer_norm_eps must be a number", 100),
    ("MEGATRON_BERT_VOCAB with --model", 'MEGATRON_BERT_VOCAB="$H/small-vocab.txt" $MB nsp --model "$H/megatron/model.pt" "w1 w2" "w3"', 0, "p(is next)", 100),
    ("a JSON key given twice (the last wins)", FILL + ' --input "$H/duplicate.jsonl" --json', 0, '"score"', 100),
    # 9. Clear errors
    ("invalid UTF-8 in a JSON line", FILL + ' --input "$H/utf8.jsonl"', 1, "invalid UTF-8", 100),
    ("a lone surrogate in a JSON line", FILL + ' --input "$H/surrogate.jsonl"', 1, "lone UTF-16 surrogate", 100),
    ("JSON nested 100,000 deep", FILL + ' --input "$H/deep.jsonl"', 1, "nest deeper than 512", 100),
    ("--top-k -1", FILL + ' --top-k -1 "a [MASK]"', 64, "--top-k must be at least 1", 100),
    ("a symlink loop as --input", FILL + ' --input "$H/loop-a"', 1, "loop of symbolic links", 100),
    ("tokenize --max-length 1", '$MB tokenize --vocab "$FIXTURES/tasks/vocab.txt" --max-length 1 "a b"', 1, "use at least 2", 100),
    ("tokenize --max-length 2", '$MB tokenize --vocab "$FIXTURES/tasks/vocab.txt" --max-length 2 "a b"', 0, '"input_ids":[2,3]', 100),
    ("convert into /proc", CONVERT + ' --output /proc/megatron-out', 1, "cannot", 100),
    # 10. Zip directories
    ("40,000 tensors in one zip", '$MB inspect "$H/many.pt" | tail -1', 0, "40000 tensors", 400),
]


def listing():
    return [{"name": n, "command": c, "status": s, "text": t, "max_rss_mb": m} for n, c, s, t, m in CASES]


def run(case, binary, hostile, index, timeout):
    """Runs one case: (exit status, output, peak RSS of the megatron-bert processes in MB or None, seconds); the
    status is "timeout" when it ran past `timeout` seconds (its processes are then killed)."""
    peak_file = os.path.join(hostile, f"peak-{index}")
    env = dict(os.environ, MB=binary, H=hostile, FIXTURES=FIXTURES, MEGATRON_BERT_PEAK_MEMORY_FILE=peak_file)
    start = time.time()
    process = subprocess.Popen(["bash", "-c", case["command"]], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        code = process.returncode
        code = f"signal {-code}" if code < 0 else code
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        output, _ = process.communicate()
        code = "timeout"
    seconds = time.time() - start
    peaks = [int(line) for line in open(peak_file).read().split()] if os.path.exists(peak_file) else []
    return code, output.decode("utf-8", "replace"), max(peaks) / 2 ** 20 if peaks else None, seconds


def report(binary, timeout):
    hostile = tempfile.mkdtemp(prefix="hostile-")
    # Written by a child, so this process stays small.
    subprocess.run([sys.executable, os.path.abspath(__file__), "make", hostile], check=True)
    rows = []
    for index, case in enumerate(listing()):
        code, text, rss, seconds = run(case, binary, hostile, index, timeout)
        ok = code == case["status"] and case["text"] in text and (rss or 0) <= case["max_rss_mb"]
        lines = text.replace(hostile, "$H").replace(FIXTURES, "$FIXTURES").strip().splitlines()
        message = next((line for line in lines if line.startswith("Error:") or "Fatal error" in line or "fault" in line),
                       lines[0] if lines else "")
        rows.append((case["name"], code, rss, seconds, "ok" if ok else "FAILED", message[:90]))
    shutil.rmtree(hostile, ignore_errors=True)
    print("| case | exit | peak RSS MB | seconds | check | first line of output |")
    print("|---|---|---|---|---|---|")
    for name, code, rss, seconds, ok, message in rows:
        print(f"| {name} | {code} | {'-' if rss is None else f'{rss:.0f}'} | {seconds:.2f} | {ok} | {message.replace('|', '/')} |")
    return all(row[4] == "ok" for row in rows)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    r = sub.add_parser("report")
    r.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "megatron-bert"))
    r.add_argument("--timeout", type=float, default=120, help="seconds a case may run before it counts as a hang")
    sub.add_parser("list")
    m = sub.add_parser("make")
    m.add_argument("directory")
    args = parser.parse_args()
    if args.what == "list":
        print(json.dumps(listing()))
    elif args.what == "make":
        make(args.directory)
    else:
        sys.exit(0 if report(os.path.abspath(args.binary), args.timeout) else 1)


if __name__ == "__main__":
    main()
