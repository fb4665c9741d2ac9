"""Spark in local mode (local[2]) embeds the same 1,000 real sentences through mapInArrow and through
RDD.mapPartitions, each partition owning one megatron-bert child: every id exactly once, with the single-process
CLI's vector. Run by `scripts/test-workers.sh --spark` (pyspark is ~450 MB, so it is not part of scripts/test.sh)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the shared conftest helpers

from pyspark.sql import SparkSession  # noqa: E402

from conftest import SENTENCES, single_process  # noqa: E402
from megatron_bert.spark import arrow_mapper, output_schema, partition_mapper  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the Python workers need this package too
    session = (SparkSession.builder.master("local[2]").appName("megatron-bert tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4").getOrCreate())
    yield session
    session.stop()


@pytest.fixture(scope="module")
def reference(binary, minilm):
    return single_process(binary, minilm, "--batch-size", "1")


def check_every_id_once(rows, reference):
    ids = [row["id"] for row in rows]
    assert sorted(ids) == list(range(1000)), f"{len(ids)} rows, {len(set(ids))} distinct ids"
    for row in rows:
        assert list(row["embedding"]) == reference[row["id"]], f"id {row['id']}"


def test_map_in_arrow(spark, binary, minilm, reference):
    frame = spark.read.json(str(SENTENCES)).repartition(4)
    results = frame.mapInArrow(arrow_mapper("embed", minilm, binary=binary, batch_size=1, rows_per_batch=64),
                               output_schema("embed", id_type="bigint"))
    assert results.schema.simpleString() == "struct<id:bigint,embedding:array<double>>"
    check_every_id_once([row.asDict() for row in results.collect()], reference)


def test_map_partitions(spark, binary, minilm, reference):
    rdd = spark.read.json(str(SENTENCES)).rdd.repartition(3)
    rows = rdd.mapPartitions(partition_mapper("embed", minilm, binary=binary, batch_size=1, rows_per_batch=100)).collect()
    check_every_id_once(rows, reference)
