"""`megatron-bert serve` under load on 127.0.0.1 with the real MiniLM weights: 64 clients × 20 mixed requests, every
answer its own request's and batches formed (Prometheus metrics); overload answered 429 while admitted requests stay
right and the server healthy; SIGTERM under load lets the requests in flight finish, then exits 0."""

import concurrent.futures
import json
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import SENTENCES


def start(binary, model, *flags):
    process = subprocess.Popen([binary, "serve", "--model", model, "--hostname", "127.0.0.1", "--port", "0", "--quiet", *flags],
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        found = re.search(r"listening on (http://[0-9.:]+)", line)
        if found:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return process, found.group(1)
    raise RuntimeError(f"the server did not start (exit {process.wait()})")


def post(base, path, body, timeout=120):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def texts():
    return [json.loads(line)["text"] for line in SENTENCES.read_text().splitlines()][:40]


@pytest.fixture(scope="module")
def expected(binary, minilm, texts):
    out = subprocess.run([binary, "embed", "--model", minilm, "--normalize", "--json", "--quiet", *texts],
                         check=True, capture_output=True, text=True).stdout
    return {text: item["embedding"] for text, item in zip(texts, json.loads(out))}


def close(a, b):
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5


def test_64_clients_get_their_own_answers_and_batches_form(binary, minilm, texts, expected):
    process, base = start(binary, minilm)
    try:
        def client(c):
            wrong = []
            for r in range(20):
                kind = (c + r) % 4
                pick = [texts[(c * 7 + r * 3 + k) % len(texts)] for k in range(3)]
                if kind == 0:
                    status, body = post(base, "/embed", {"inputs": pick[0]})
                    ok = status == 200 and close(body[0], expected[pick[0]])
                elif kind == 1:
                    status, body = post(base, "/embed", {"inputs": pick})
                    ok = status == 200 and all(close(v, expected[t]) for v, t in zip(body, pick))
                elif kind == 2:
                    status, body = post(base, "/v1/embeddings", {"input": pick[:2], "model": "m"})
                    ok = status == 200 and all(close(d["embedding"], expected[t]) for d, t in zip(body["data"], pick))
                else:
                    status, body = post(base, "/tokenize", {"inputs": pick[0]})
                    ok = status == 200 and body[0][0]["text"] == "[CLS]"
                if not ok:
                    wrong.append((c, r, kind, status))
            return wrong

        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            wrong = [w for ws in pool.map(client, range(64)) for w in ws]
        assert not wrong, wrong[:5]
        metrics = urllib.request.urlopen(base + "/metrics").read().decode()
        batches = float(re.search(r"^te_batch_next_size_count (\S+)", metrics, re.M).group(1))
        single = float(re.search(r'^te_batch_next_size_bucket\{le="1(\.0)?"\} (\S+)', metrics, re.M).group(2))
        assert batches > single, f"no batch held more than one request: {batches} batches, {single} of one request"
        assert re.search(r'^te_request_success\{method="/embed"\} (\d+)', metrics, re.M)
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0


def test_overload_is_429_and_the_admitted_are_right(binary, minilm, texts, expected):
    process, base = start(binary, minilm, "--max-concurrent-requests", "2", "--max-client-batch-size", "64")
    try:
        batch = texts * 1  # 40 sentences per request: ~100 ms each on 2 cores
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: post(base, "/embed", {"inputs": batch}), range(32)))
        statuses = [status for status, _ in answers]
        assert statuses.count(429) > 0 and statuses.count(200) > 0, statuses
        assert set(statuses) == {200, 429}
        for status, body in answers:
            if status == 429:
                assert body["error_type"] == "Overloaded"
            else:
                assert all(close(v, expected[t]) for v, t in zip(body, batch))
        assert urllib.request.urlopen(base + "/health").status == 200
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0


def test_sigterm_under_load_finishes_what_is_in_flight(binary, minilm, texts, expected):
    process, base = start(binary, minilm, "--max-client-batch-size", "64")
    batch = texts
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, base, "/embed", {"inputs": batch}) for _ in range(8)]
        time.sleep(0.3)  # the requests are in flight
        process.send_signal(signal.SIGTERM)
        answers = [f.result() for f in futures]
    assert process.wait(timeout=60) == 0
    assert [status for status, _ in answers] == [200] * 8
    assert all(close(v, expected[t]) for _, body in answers for v, t in zip(body, batch))
