"""megatron-bert workers for Ray Data: a callable class for ``Dataset.map_batches``.

Each actor owns one long-lived ``megatron-bert`` child (the model loads once, when the actor starts) and streams
every batch it is given through it. A child that dies mid-batch raises ``WorkerDied``; with
``retry_worker_deaths()`` Ray runs that batch again (on a fresh child), so every row comes out exactly once.

    import ray
    from megatron_bert.ray_data import MegatronBERT, retry_worker_deaths

    ray.init()
    retry_worker_deaths()
    ds = ray.data.read_json("sentences.jsonl")                  # columns: id, text
    vectors = ds.map_batches(MegatronBERT, fn_constructor_kwargs={"task": "embed", "model": "/models/minilm"},
                             batch_size=256, compute=ray.data.ActorPoolStrategy(size=4), num_cpus=4)
    vectors.write_parquet("vectors/")                          # columns: id, embedding

On GPU workers pass ``device="cuda"`` and ``num_gpus=1`` to ``map_batches``: Ray gives each actor its own GPU
through ``CUDA_VISIBLE_DEVICES``, which the child inherits.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .worker import BatchRunner, WorkerDied

__all__ = ["MegatronBERT", "WorkerDied", "retry_worker_deaths"]


class MegatronBERT:
    """Runs a megatron-bert task on each batch: the task's input columns in; ``id_column``, ``keep_columns`` and the
    result columns out (embed: ``embedding``; nsp: ``is_next``, ``is_next_probability``; fill-mask, ner, classify,
    qa, multiple-choice: ``result``, the JSON the command prints, or parsed lists with ``result_format="python"``;
    ``error`` with ``on_error="record"``).

    Keyword arguments are ``BatchRunner``'s and ``CLIWorker``'s: ``task``, ``model``, ``binary``, ``args``,
    ``device``, ``dtype``, ``batch_size`` (the child's sequences per forward pass; ``map_batches``' own
    ``batch_size`` is the rows per call), ``env``, ``input_columns`` (task field → column, e.g.
    ``{"text": "body"}``), ``id_column`` (copied when the batch has it), ``keep_columns``, ``on_error`` ("raise": a
    refused input fails the batch, naming its id; "record": an ``error`` column), ``result_format``.
    """

    def __init__(self, task: str, model: Optional[str] = None, **options: Any):
        self.runner = BatchRunner(task, model, **options)
        self.runner.worker.start()  # the model loads once per actor, before the first batch

    def __call__(self, batch: Any):
        return _arrow(self.runner(batch))

    def __del__(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.worker.close(timeout=5)


def _arrow(columns: Dict[str, list]):
    """A pyarrow table (types inferred; the error column always a string, even when every value is None)."""
    import pyarrow as pa

    fields = {name: pa.array(values, type=pa.string() if name == "error" else None) for name, values in columns.items()}
    return pa.table(fields)


def retry_worker_deaths(context: Any = None) -> None:
    """Makes Ray Data retry a batch whose megatron-bert child died (``WorkerDied``) instead of failing the job."""
    if context is None:
        import ray.data

        context = ray.data.DataContext.get_current()
    errors = context.actor_task_retry_on_errors
    if errors is True:
        return
    context.actor_task_retry_on_errors = list(errors or []) + [WorkerDied]
