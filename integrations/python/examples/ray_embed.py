#!/usr/bin/env python3
"""Embeddings (or any other task) for a JSON Lines or Parquet file on a Ray cluster, with megatron-bert workers.

    python3 ray_embed.py --model /models/all-MiniLM-L6-v2 --input sentences.jsonl --output vectors/ \
        --actors 4 --cpus-per-actor 4
    python3 ray_embed.py --task ner --model /models/my-ner --input docs.parquet --output entities/ --column body
    python3 ray_embed.py --model /models/megatron --input s.jsonl --output v/ --actors 8 --gpus-per-actor 1 --device cuda

Input rows need the task's fields (embed, fill-mask, ner: text; nsp: text, text_pair; qa: question, context; …)
and may carry an id column, copied to the output. Output: Parquet files with id and the result columns.
Connects to the cluster in $RAY_ADDRESS (or starts a local one); every worker needs the megatron-bert binary
(--binary, $MEGATRON_BERT_BINARY or the PATH) and the model directory at the same path.
"""
import argparse
import time

import ray

from megatron_bert.ray_data import MegatronBERT, retry_worker_deaths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="embed")
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True, help="a .jsonl / .json or .parquet file or directory")
    parser.add_argument("--output", required=True, help="a directory for Parquet files")
    parser.add_argument("--binary", help="the megatron-bert executable on every worker")
    parser.add_argument("--column", help="the input column holding the text (default: text)")
    parser.add_argument("--actors", type=int, default=2, help="long-lived megatron-bert children, one per actor")
    parser.add_argument("--cpus-per-actor", type=float, default=1)
    parser.add_argument("--gpus-per-actor", type=float, default=0)
    parser.add_argument("--rows-per-batch", type=int, default=256, help="rows per map_batches call")
    parser.add_argument("--device", help="cpu, cuda or auto (the default)")
    parser.add_argument("--dtype", help="fp32, fp16, bf16 or int8")
    parser.add_argument("--on-error", default="raise", choices=["raise", "record"])
    parser.add_argument("args", nargs="*", help="more megatron-bert options, after --, e.g. -- --pooling cls --normalize")
    options = parser.parse_args()

    ray.init()
    retry_worker_deaths()
    read = ray.data.read_parquet if options.input.endswith(".parquet") else ray.data.read_json
    dataset = read(options.input)
    started = time.time()
    results = dataset.map_batches(
        MegatronBERT,
        fn_constructor_kwargs=dict(task=options.task, model=options.model, binary=options.binary, device=options.device,
                                   dtype=options.dtype, args=options.args, on_error=options.on_error,
                                   input_columns={"text": options.column} if options.column else None),
        batch_size=options.rows_per_batch, compute=ray.data.ActorPoolStrategy(size=options.actors), num_cpus=options.cpus_per_actor,
        num_gpus=options.gpus_per_actor or None)
    results.write_parquet(options.output)
    print(f"{results.count()} rows -> {options.output} in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
