"""`megatron-bert serve` under load on 127.0.0.1 with the real MiniLM weights: 64 clients × 20 mixed requests, every
answer its own request's and batches formed (Prometheus metrics); overload answered 429 while admitted requests stay
right and the server healthy; clients that leave before their request runs are dropped from the queue, and a client
that never reads its answer holds nobody else up; SIGTERM under load lets the requests in flight finish, then exits 0,
and past --graceful-shutdown-timeout answers those still queued 503."""

import concurrent.futures
import json
import re
import signal
import socket
import struct
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


def raw_request(base, path, body):
    """A connected socket that has sent one POST (and reads nothing)."""
    host, port = base.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)))
    data = json.dumps(body).encode()
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return connection


def metric(base, pattern):
    found = re.search(pattern, urllib.request.urlopen(base + "/metrics").read().decode(), re.M)
    return float(found.group(1)) if found else 0.0


def test_clients_that_leave_are_dropped_from_the_queue(binary, minilm, texts, expected):
    process, base = start(binary, minilm, "--max-client-batch-size", "64")
    try:
        long = " ".join(texts[:12])  # over MiniLM's limit: cut to it
        heavy = {"inputs": [long] * 32, "truncate": True}
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            busy = [pool.submit(post, base, "/embed", heavy) for _ in range(4)]  # seconds of work for the worker
            time.sleep(0.3)
            for _ in range(20):  # these send the same and leave at once: a reset (a FIN alone is a half-close, answered as TEI does)
                leaving = raw_request(base, "/embed", heavy)
                leaving.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                leaving.close()
            status, body = post(base, "/embed", {"inputs": texts[0]})
            assert status == 200 and close(body[0], expected[texts[0]])
            assert [f.result()[0] for f in busy] == [200] * 4
        assert metric(base, r'^te_request_failure\{err="cancelled"\} (\S+)') == 20
        # The 4 heavy requests and the short one ran (warm-up aside); the 20 that left did not.
        assert metric(base, r'^te_request_success\{method="/embed"\} (\S+)') == 5
        assert urllib.request.urlopen(base + "/health").status == 200
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0


def test_a_client_that_never_reads_holds_nobody_up(binary, minilm, texts, expected):
    process, base = start(binary, minilm, "--max-client-batch-size", "64")
    try:
        # /embed_all of 40 sentences answers megabytes of JSON: more than the socket buffers hold unread.
        stalled = [raw_request(base, "/embed_all", {"inputs": texts}) for _ in range(3)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda t: post(base, "/embed", {"inputs": t}, timeout=60), texts[:24]))
        assert all(status == 200 and close(body[0], expected[t]) for (status, body), t in zip(answers, texts[:24]))
        first = stalled[0].recv(12)  # the stalled answers were written as far as the socket let them
        assert first == b"HTTP/1.1 200"
        for connection in stalled:
            connection.close()
        assert post(base, "/embed", {"inputs": texts[1]})[0] == 200
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


def test_sigterm_deadline_answers_what_is_still_queued_503(binary, minilm, texts, expected):
    process, base = start(binary, minilm, "--max-client-batch-size", "64", "--graceful-shutdown-timeout", "0.5")
    heavy = [" ".join(texts[:12])] * 32  # seconds of work per few requests: most are still queued at the deadline
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(post, base, "/embed", {"inputs": heavy, "truncate": True}) for _ in range(12)]
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        answers = [f.result() for f in futures]
    assert process.wait(timeout=60) == 0
    statuses = [status for status, _ in answers]
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1 and set(statuses) == {200, 503}, statuses
    assert all(body == {"error": "the server is shutting down", "error_type": "Unhealthy"} for status, body in answers if status == 503)
    done = [body for status, body in answers if status == 200]
    assert all(len(body) == 32 and close(body[0], done[0][0]) for body in done)
