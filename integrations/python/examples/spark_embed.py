#!/usr/bin/env python3
"""Embeddings (or any other task) for a JSON Lines or Parquet file with Spark, with megatron-bert workers.

    python3 spark_embed.py --model /models/all-MiniLM-L6-v2 --input sentences.jsonl --output vectors/ --master 'local[2]'
    spark-submit --master yarn spark_embed.py --model /models/minilm --input hdfs:///s.parquet --output hdfs:///v/

Each partition's Python task starts one megatron-bert child (the model loads once per partition), so make
partitions large (tens of thousands of rows); --partitions repartitions the input. Every executor needs the
binary (--binary, $MEGATRON_BERT_BINARY or the PATH) and the model directory at the same path.
"""
import argparse
import time

from pyspark.sql import SparkSession

from megatron_bert.spark import arrow_mapper, output_schema


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="embed")
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True, help="a .jsonl / .json or .parquet file or directory")
    parser.add_argument("--output", required=True, help="a directory for Parquet files")
    parser.add_argument("--binary", help="the megatron-bert executable on every executor")
    parser.add_argument("--master", help="e.g. local[2]; default: what spark-submit gives")
    parser.add_argument("--partitions", type=int, help="repartition the input into this many")
    parser.add_argument("--id-type", default="bigint", help="the Spark type of the id column ('none': no id column)")
    parser.add_argument("--device", help="cpu, cuda or auto (the default)")
    parser.add_argument("--dtype", help="fp32, fp16, bf16 or int8")
    parser.add_argument("--on-error", default="raise", choices=["raise", "record"])
    parser.add_argument("args", nargs="*", help="more megatron-bert options, after --, e.g. -- --pooling cls --normalize")
    options = parser.parse_args()

    builder = SparkSession.builder.appName("megatron-bert " + options.task)
    if options.master:
        builder = builder.master(options.master)
    spark = builder.getOrCreate()
    frame = spark.read.parquet(options.input) if options.input.endswith(".parquet") else spark.read.json(options.input)
    if options.partitions:
        frame = frame.repartition(options.partitions)
    id_type = None if options.id_type == "none" else options.id_type
    started = time.time()
    results = frame.mapInArrow(
        arrow_mapper(options.task, options.model, binary=options.binary, device=options.device, dtype=options.dtype,
                     args=options.args, on_error=options.on_error),
        output_schema(options.task, id_type=id_type, on_error=options.on_error))
    results.write.mode("overwrite").parquet(options.output)
    print(f"{spark.read.parquet(options.output).count()} rows -> {options.output} in {time.time() - started:.1f} s")
    spark.stop()


if __name__ == "__main__":
    main()
