"""megatron_bert.Model: every task equals what the command prints for the same inputs (`--json`, parsed), single
inputs give single results, lists give lists, and refused inputs raise."""

import json
import math
import subprocess

import pytest

from megatron_bert import InputError, Model
from megatron_bert import model as model_module

from conftest import ROOT

MODELS = ROOT / "Tests" / "MegatronBERTTests" / "Fixtures" / "models"


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    """The fixture models have 53 embedding rows: a vocabulary of 50 cased tokens fits them."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"Word{i}" for i in range(5, 50)]))
    return str(path)


def command(binary, *args):
    """The command's --json output, parsed."""
    out = subprocess.run([binary, *args, "--json", "--quiet"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_every_task_as_the_command_prints_it(binary, vocab):
    fixture = lambda name: str(MODELS / f"megatron-{name}")  # noqa: E731
    v = ["--vocab", vocab]
    with Model(fixture("ForMaskedLM"), vocab=vocab, binary=binary) as m:
        texts = ["Word5 Word6 [MASK]", "[MASK] Word9 [MASK] Word10"]
        assert m.fill_mask(texts, top_k=3) == command(binary, "fill-mask", "--model", fixture("ForMaskedLM"), *v, "--top-k", "3", *texts)
        assert m.fill_mask(texts[0], top_k=3) == command(binary, "fill-mask", "--model", fixture("ForMaskedLM"), *v, "--top-k", "3", texts[0])[0]
        targets = m.fill_mask(texts[0], targets=["Word7", "Word8"])
        assert sorted(r["token_str"] for r in targets) == ["Word7", "Word8"]
    with Model(fixture("ForPreTraining"), vocab=vocab, binary=binary) as m:
        expected = command(binary, "nsp", "--model", fixture("ForPreTraining"), *v, "Word5 Word6", "Word7")[0]
        assert m.next_sentence("Word5 Word6", "Word7") == expected
        assert m.next_sentence([("Word5 Word6", "Word7"), ("Word8", "Word9")])[0] == expected
    with Model(fixture("ForSequenceClassification"), vocab=vocab, binary=binary) as m:
        expected = command(binary, "classify", "--model", fixture("ForSequenceClassification"), *v, "--top-k", "2", "Word5 Word9")[0]
        assert m.classify("Word5 Word9", top_k=2) == expected
        paired = command(binary, "classify", "--model", fixture("ForSequenceClassification"), *v, "--pair", "Word11", "Word5 Word9")[0]
        assert m.classify(["Word5 Word9"], text_pair=["Word11"]) == [paired]
    with Model(fixture("ForTokenClassification"), vocab=vocab, binary=binary) as m:
        for aggregation in ("simple", "none"):
            expected = command(binary, "ner", "--model", fixture("ForTokenClassification"), *v, "--aggregation", aggregation,
                               "Word5 Word9 Word10")[0]
            assert m.ner("Word5 Word9 Word10", aggregation=aggregation) == expected
    with Model(fixture("ForQuestionAnswering"), vocab=vocab, binary=binary) as m:
        expected = command(binary, "qa", "--model", fixture("ForQuestionAnswering"), *v, "--top-k", "2", "--question", "Word5",
                           "--context", "Word6 Word7 Word8")[0]
        assert m.qa("Word5", "Word6 Word7 Word8", top_k=2) == expected
        assert m.qa([("Word5", "Word6 Word7 Word8")], top_k=2) == [expected]
    with Model(fixture("ForMultipleChoice"), vocab=vocab, binary=binary) as m:
        expected = command(binary, "multiple-choice", "--model", fixture("ForMultipleChoice"), *v, "--prompt", "Word5", "Word6", "Word7")[0]
        assert m.multiple_choice("Word5", ["Word6", "Word7"]) == expected


def test_embeddings_of_the_real_model(binary, minilm):
    texts = ["A man is eating food.", "Someone is having a meal.", "The stock market fell sharply today."]
    expected = [row["embedding"] for row in command(binary, "embed", "--model", minilm, "--pooling", "mean", "--normalize", *texts)]
    with Model(minilm, binary=binary) as m:
        vectors = m.embed(texts, pooling="mean", normalize=True)
        assert vectors.shape == (3, 384) and str(vectors.dtype) == "float32"
        assert vectors.tolist() == [[float(__import__("numpy").float32(x)) for x in row] for row in expected]
        assert m.embed(texts[0], pooling="mean", normalize=True).shape == (384,)
        assert m.embed([]).shape == (0, 0) and m.similarity(texts[0], []) == []
        similarity = command(binary, "similarity", "--model", minilm, "--pooling", "mean", *texts)
        scores = m.similarity(texts[0], texts[1:], pooling="mean")
        for mine, theirs in zip(scores, similarity):
            assert math.isclose(mine, theirs["similarity"], abs_tol=1e-6)  # float32 vectors here, the command's own sums
        assert scores[0] > scores[1]


def test_embeddings_without_numpy_are_lists(binary, minilm, monkeypatch):
    monkeypatch.setattr(model_module, "numpy", None)
    with Model(minilm, binary=binary) as m:
        vectors = m.embed(["One.", "Two."])
        assert isinstance(vectors, list) and len(vectors) == 2 and len(vectors[0]) == 384
        assert vectors == [row["embedding"] for row in command(binary, "embed", "--model", minilm, "One.", "Two.")]


def test_refused_inputs_and_wrong_arguments_raise(binary, vocab):
    with Model(str(MODELS / "megatron-ForMaskedLM"), vocab=vocab, binary=binary) as m:
        with pytest.raises(InputError, match="MASK"):
            m.fill_mask("Word5 Word6")
        with pytest.raises(TypeError, match="not a str"):
            m.fill_mask(["Word5 [MASK]", 7])
        with pytest.raises(TypeError, match="second part"):
            m.qa("Word5")
        with pytest.raises(ValueError, match="2 texts but 1 text pairs"):
            m.classify(["a", "b"], text_pair=["c"])
        assert m.fill_mask("Word5 [MASK]", top_k=1)[0]["token_str"].startswith("Word")  # the child survived the refusal
