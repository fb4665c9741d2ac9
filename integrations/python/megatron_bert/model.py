"""Every task of a model from Python: ``Model(path).embed([...])``, ``.fill_mask(...)``, ``.ner(...)`` …

A ``Model`` keeps one long-lived ``megatron-bert`` child per task and option set (see ``worker.CLIWorker``): the
model loads once per task, later calls only send their inputs. Results are the command's ``--json`` values as
Python values under Hugging Face's pipeline field names (``score``, ``token_str``, ``entity_group``, ``answer`` …);
embeddings are a NumPy array when NumPy is installed (``pip install megatron-bert[numpy]``), else lists.

A single input (a string, a pair) gives a single result; a list of them gives a list of results, in order.

    >>> from megatron_bert import Model
    >>> with Model("/models/all-MiniLM-L6-v2") as model:
    ...     vectors = model.embed(["A man is eating.", "Someone eats."], pooling="mean", normalize=True)
    ...     vectors.shape
    (2, 384)
    >>> best = Model().fill_mask("The capital of France is [MASK].")[0]  # NVIDIA's 345M model, downloaded once
    >>> sorted(best)
    ['score', 'sequence', 'token', 'token_str']
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .worker import CLIWorker, InputError

try:  # optional: embeddings as arrays
    import numpy
except ImportError:  # pragma: no cover - exercised where NumPy is absent
    numpy = None

Texts = Union[str, Sequence[str]]


class Model:
    """A model directory (or anything ``megatron-bert --model`` takes; None: NVIDIA's cased 345M model) and the
    ``megatron-bert`` children that run its tasks.

    Args:
        model: a Hugging Face directory, a Megatron-LM ``.pt`` or NGC ``.zip``; None for the default model.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (the command's default: the GPU when one is usable).
        dtype: ``fp32``, ``fp16``, ``bf16`` or ``int8`` (CPU).
        batch_size: sequences per forward pass.
        vocab: a vocabulary file for checkpoints that have none beside them.
        binary: the executable (default: the one installed with this package, see ``worker.find_binary``).
        env: the children's environment (default: this process's).
    """

    def __init__(self, model: Optional[str] = None, *, device: Optional[str] = None, dtype: Optional[str] = None,
                 batch_size: Optional[int] = None, vocab: Optional[str] = None, binary: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None):
        self.model = None if model is None else str(model)
        self._options: Dict[str, Any] = dict(device=device, dtype=dtype, batch_size=batch_size, binary=binary, env=env)
        self._vocab = [] if vocab is None else ["--vocab", str(vocab)]
        self._workers: Dict[Tuple[str, Tuple[str, ...]], CLIWorker] = {}

    # -- tasks ------------------------------------------------------------------------------------------------

    def embed(self, texts: Texts, *, pooling: Optional[str] = None, normalize: bool = False) -> Any:
        """Sentence vectors: a (D,) vector for one text, an (N, D) array (or list of lists) for a list.

        ``pooling``: ``cls``, ``mean``, ``max`` or ``pooler`` (default: the model's, as ``megatron-bert embed``)."""
        args = (["--pooling", pooling] if pooling else []) + (["--normalize"] if normalize else [])
        single, items = _listed(texts)
        vectors = [row["embedding"] for row in self._run("embed", args, [{"text": t} for t in items])]
        if numpy is not None:
            if not vectors:  # an empty list: no rows (and no width to know)
                return numpy.empty((0, 0), dtype=numpy.float32)
            array = numpy.asarray(vectors, dtype=numpy.float32)
            return array[0] if single else array
        return vectors[0] if single else vectors

    def similarity(self, text: str, others: Texts, *, pooling: Optional[str] = None) -> Any:
        """Cosine similarity between ``text``'s vector and each of ``others``' (a float, or a list of floats)."""
        single, items = _listed(others)
        vectors = self.embed([text] + items, pooling=pooling)
        rows = [list(map(float, v)) for v in vectors]
        first = rows[0]
        scores = [_cosine(first, row) for row in rows[1:]]
        return scores[0] if single else scores

    def fill_mask(self, texts: Texts, *, top_k: int = 5, targets: Optional[Sequence[str]] = None) -> Any:
        """The best fillers of each ``[MASK]``: a list of ``{score, token, token_str, sequence}`` per text (a list of
        such lists when a text has several masks)."""
        args = ["--top-k", str(top_k)] + (["--targets", ",".join(targets)] if targets else [])
        single, items = _listed(texts)
        return _one(single, self._results("fill-mask", args, [{"text": t} for t in items]))

    def next_sentence(self, text: Union[str, Sequence[Tuple[str, str]]], text_pair: Optional[str] = None) -> Any:
        """Next-sentence prediction: ``{is_next, is_next_probability}`` for ``(text, text_pair)``, or a list of them for
        a list of ``(text, text_pair)`` pairs."""
        single, pairs = _pairs(text, text_pair, "next_sentence")
        rows = self._run("nsp", [], [{"text": a, "text_pair": b} for a, b in pairs])
        results = [{"is_next": row["is_next"], "is_next_probability": row["is_next_probability"]} for row in rows]
        return results[0] if single else results

    def classify(self, texts: Texts, *, text_pair: Optional[Union[str, Sequence[str]]] = None, top_k: int = 1,
                 function: Optional[str] = None) -> Any:
        """The ``top_k`` best labels ``{label, score}`` of each text (with its ``text_pair`` for pair classifiers;
        ``function``: ``softmax``, ``sigmoid`` or ``none``, default as the model's problem type)."""
        single, items = _listed(texts)
        if text_pair is None:
            records = [{"text": t} for t in items]
        else:
            _, pairs = _listed(text_pair)
            if len(pairs) != len(items):
                raise ValueError(f"classify: {len(items)} texts but {len(pairs)} text pairs")
            records = [{"text": t, "text_pair": p} for t, p in zip(items, pairs)]
        args = ["--top-k", str(top_k)] + (["--function", function] if function else [])
        return _one(single, self._results("classify", args, records))

    def ner(self, texts: Texts, *, aggregation: str = "simple", stride: Optional[int] = None) -> Any:
        """Named entities of each text: ``{entity_group, score, word, start, end}`` (with ``aggregation="none"``:
        ``entity`` and ``index`` per token); offsets are characters of the text."""
        args = ["--aggregation", aggregation] + (["--stride", str(stride)] if stride else [])
        single, items = _listed(texts)
        return _one(single, self._results("ner", args, [{"text": t} for t in items]))

    def qa(self, question: Union[str, Sequence[Tuple[str, str]]], context: Optional[str] = None, *, top_k: int = 1,
           max_answer_length: int = 15, allow_no_answer: bool = False, doc_stride: Optional[int] = None) -> Any:
        """Extractive answers ``{answer, score, start, end}`` (the ``top_k`` best, a list) for ``(question, context)``,
        or a list of such lists for a list of ``(question, context)`` pairs."""
        single, pairs = _pairs(question, context, "qa")
        args = ["--top-k", str(top_k), "--max-answer-length", str(max_answer_length)]
        args += (["--allow-no-answer"] if allow_no_answer else []) + (["--doc-stride", str(doc_stride)] if doc_stride else [])
        return _one(single, self._results("qa", args, [{"question": q, "context": c} for q, c in pairs]))

    def multiple_choice(self, prompt: Union[str, Sequence[Tuple[str, Sequence[str]]]],
                        choices: Optional[Sequence[str]] = None) -> Any:
        """Every choice scored ``{index, choice, score, logit}``, best first, for ``(prompt, choices)`` or a list of
        ``(prompt, choices)`` pairs."""
        single, pairs = _pairs(prompt, choices, "multiple_choice")
        return _one(single, self._results("multiple-choice", [], [{"prompt": p, "choices": list(c)} for p, c in pairs]))

    # -- children ---------------------------------------------------------------------------------------------

    def _run(self, task: str, args: List[str], records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        key = (task, tuple(args))
        worker = self._workers.get(key)
        if worker is None:
            worker = self._workers[key] = CLIWorker(task, self.model, args=self._vocab + args, **self._options)
        outputs = worker.run(records)
        for i, output in enumerate(outputs):
            if output.get("error") is not None:
                raise InputError(f"megatron-bert {task} refused input {i}: {output['error']}")
        return outputs

    def _results(self, task: str, args: List[str], records: List[Dict[str, Any]]) -> List[Any]:
        return [output["result"] for output in self._run(task, args, records)]

    def close(self) -> None:
        """Ends every child (each finishes what it has, then exits)."""
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            worker.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"Model({self.model!r})" if self.model else "Model()"


def _listed(texts: Texts) -> Tuple[bool, List[str]]:
    if isinstance(texts, str):
        return True, [texts]
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"input {i} is a {type(text).__name__}, not a str")
    return False, items


def _pairs(first: Any, second: Any, name: str) -> Tuple[bool, List[Tuple[Any, Any]]]:
    """(single, pairs) from ``(a, b)`` arguments or a list of pairs in the first argument."""
    if isinstance(first, str):
        if second is None:
            raise TypeError(f"{name}: give the second part too, or a list of pairs as the only argument")
        return True, [(first, second)]
    if second is not None:
        raise TypeError(f"{name}: with a list of pairs as the first argument, give no second argument")
    pairs = [tuple(p) for p in first]
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"{name}: item {i} is not a pair")
    return False, pairs


def _one(single: bool, results: List[Any]) -> Any:
    return results[0] if single else results


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    # fsum: correctly rounded, so the same bits on every Python (sum() of floats changed in 3.12)
    dot = math.fsum(x * y for x, y in zip(a, b))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return dot / norm if norm > 0 else 0.0
