"""megatron-bert workers for Spark: functions for ``DataFrame.mapInArrow`` and ``RDD.mapPartitions``.

Each partition's Python function owns one ``megatron-bert`` child (the model loads once per partition task) and
streams the partition through it, ``rows_per_batch`` rows at a time. The child inherits the Python worker's
environment (``RDD.pipe`` would hand it an empty one unless given ``env``); pass ``env=`` to set it exactly.

    from pyspark.sql import SparkSession
    from megatron_bert.spark import arrow_mapper, output_schema

    spark = SparkSession.builder.master("local[2]").getOrCreate()
    df = spark.read.json("sentences.jsonl")                     # columns: id, text
    vectors = df.mapInArrow(arrow_mapper("embed", "/models/minilm"), output_schema("embed", id_type="bigint"))
    vectors.write.parquet("vectors/")

A failed partition task (its child died) is retried by Spark (``spark.task.maxFailures``), and a retried task
recomputes its whole partition, so every row comes out exactly once.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional

from .worker import OBJECT_RESULTS, BatchRunner, to_columns

__all__ = ["arrow_mapper", "partition_mapper", "output_schema"]

_RESULT_TYPES = {
    "embedding": "array<double>",
    "is_next": "boolean",
    "is_next_probability": "double",
    "result": "string",
}


def output_schema(task: str, id_type: Optional[str] = "bigint", keep_columns: Optional[Mapping[str, str]] = None,
                  on_error: str = "raise", id_column: str = "id") -> str:
    """The Spark DDL schema of ``arrow_mapper``'s output, e.g. ``"id bigint, embedding array<double>"``.

    ``id_type``: the id column's Spark type (None when the input has no id column); ``keep_columns``: name → Spark
    type of the input columns kept. The list tasks' ``result`` is a JSON string (``from_json`` parses it)."""
    parts = []
    if id_type is not None:
        parts.append(f"{id_column} {id_type}")
    for name, kind in (keep_columns or {}).items():
        parts.append(f"{name} {kind}")
    for name in OBJECT_RESULTS.get(task, ("result",)):
        parts.append(f"{name} {_RESULT_TYPES[name]}")
    if on_error == "record":
        parts.append("error string")
    return ", ".join(parts)


def arrow_mapper(task: str, model: Optional[str] = None, *, rows_per_batch: int = 256,
                 keep_columns: Optional[Mapping[str, str]] = None, **options: Any
                 ) -> Callable[[Iterable[Any]], Iterator[Any]]:
    """A function for ``DataFrame.mapInArrow(f, output_schema(...))``: pyarrow record batches in, record batches of
    the id, kept and result columns out. ``keep_columns`` is the same mapping given to ``output_schema``; the other
    options are ``BatchRunner``'s and ``CLIWorker``'s (binary, args, device, dtype, batch_size, env, input_columns,
    id_column, on_error)."""
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be at least 1, not {rows_per_batch}")
    kept = list(keep_columns or {})

    def run(batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        runner = BatchRunner(task, model, keep_columns=kept, **options)
        try:
            for batch in batches:
                for start in range(0, batch.num_rows, rows_per_batch):
                    columns = runner(batch.slice(start, rows_per_batch))
                    yield pa.RecordBatch.from_pydict(
                        {name: pa.array(values, type=pa.string() if name in ("error", "result") else None)
                         for name, values in columns.items()})
        finally:
            runner.close()

    return run


def partition_mapper(task: str, model: Optional[str] = None, *, rows_per_batch: int = 256, **options: Any
                     ) -> Callable[[Iterable[Any]], Iterator[Dict[str, Any]]]:
    """A function for ``RDD.mapPartitions``: rows in (``pyspark.sql.Row`` or dicts), one dict per row out with the
    id, kept and result fields. Options as ``arrow_mapper`` (``keep_columns`` a list of names here)."""
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be at least 1, not {rows_per_batch}")

    def run(rows: Iterable[Any]) -> Iterator[Dict[str, Any]]:
        runner = BatchRunner(task, model, **options)
        try:
            iterator = iter(rows)
            while True:
                chunk = [row.asDict() if hasattr(row, "asDict") else dict(row)
                         for row in itertools.islice(iterator, rows_per_batch)]
                if not chunk:
                    break
                names = list(dict.fromkeys(name for row in chunk for name in row))
                columns, count = to_columns({name: [row.get(name) for row in chunk] for name in names})
                out = runner(columns)
                for i in range(count):
                    yield {name: values[i] for name, values in out.items()}
        finally:
            runner.close()

    return run
