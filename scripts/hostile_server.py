#!/usr/bin/env python3
"""Hostile connections against `megatron-bert serve` (issue 36), Python's standard library only: raw sockets that
stall, half-send, reset, half-close, lie about their length, or come in numbers past the descriptor limit; TEI's
remaining routes and HTTP details. Each case checks what the server must do and that its descriptors come back to
where they were.

    swift build -c release
    python3 scripts/hostile_server.py [--binary .build/release/megatron-bert] [--only NAME,NAME]

Exit status 0 when every case passes; a table of the cases either way.
"""
import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
MODEL = os.path.join(ROOT, "Tests", "MegatronBERTTests", "Fixtures", "tasks", "embedding")
TIMEOUTS = ["--header-timeout", "1", "--body-timeout", "1", "--keep-alive-timeout", "2"]


class Server:
    """A `serve` process on 127.0.0.1 and a free port, with a descriptor limit when asked."""

    def __init__(self, binary, extra=(), nofile=None, model=MODEL):
        def limit():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.process = subprocess.Popen([binary, "serve", "--model", model, "--hostname", "127.0.0.1", "--port", "0", *extra],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=limit, text=True)
        self.log = []
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            self.log.append(line)
            if "listening on http://" in line:
                self.port = int(line.rsplit(":", 1)[1])
                break
        else:
            raise RuntimeError("the server did not start: " + "".join(self.log))
        if not hasattr(self, "port"):
            raise RuntimeError("the server did not start: " + "".join(self.log))
        os.set_blocking(self.process.stderr.fileno(), False)

    def descriptors(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_mb(self):
        for line in open(f"/proc/{self.process.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self):
        fields = open(f"/proc/{self.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request on its own connection (Connection: close); (status, headers, body)."""
        s = self.connect(timeout)
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len(data)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if body is not None:
            head += "Content-Type: application/json\r\n"
        s.sendall(head.encode() + b"\r\n" + data)
        answer = read_all(s, timeout)
        s.close()
        return parse(answer)

    def metric(self, name):
        _, _, text = self.request("GET", "/metrics")
        total = 0.0
        for line in text.decode().splitlines():
            if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stop(self, sig=signal.SIGINT, timeout=30):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


def read_all(s, timeout=10):
    """Everything until the peer closes (or `timeout` passes: then what came)."""
    s.settimeout(timeout)
    chunks = []
    end = time.time() + timeout
    while time.time() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def closed_within(s, seconds):
    """Whether the server closes `s` within `seconds` (whatever it sends first), and what it sent."""
    s.settimeout(seconds)
    start, got = time.time(), b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return time.time() - start, got
            got += chunk
    except (socket.timeout, TimeoutError):
        return None, got
    except ConnectionResetError:
        return time.time() - start, got


def parse(answer):
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


EMBED = {"inputs": "The river is long."}


def case_idle_connection(server):
    s = server.connect()
    seconds, _ = closed_within(s, 6)
    return seconds is not None, f"a connection that sends nothing closed after {seconds} s (--header-timeout 1)"


def case_half_header(server):
    s = server.connect()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Le")
    seconds, got = closed_within(s, 6)
    return seconds is not None, f"half a head: closed after {seconds} s, answer {got[:40]!r}"


def case_half_body(server):
    s = server.connect()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inputs\": ")
    seconds, got = closed_within(s, 6)
    return seconds is not None and (not got or got.startswith(b"HTTP/1.1 408")), f"half a body: closed after {seconds} s, answer {got[:40]!r}"


def case_idle_keep_alive(server):
    s = server.connect()
    data = json.dumps(EMBED).encode()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
    seconds, got = closed_within(s, 8)
    return seconds is not None and got.startswith(b"HTTP/1.1 200"), f"answered {got[:15]!r}, then idle: closed after {seconds} s (--keep-alive-timeout 2)"


def case_timeouts_counted(server):
    counted = {phase: server.metric(f'megatron_bert_connection_timeouts_total{{phase="{phase}"}}') for phase in ("head", "body", "idle")}
    return all(v >= 1 for v in counted.values()), f"/metrics megatron_bert_connection_timeouts_total by phase: {counted}"


def case_http10_closed(server):
    s = server.connect()
    s.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    seconds, got = closed_within(s, 5)
    return seconds is not None and b" 200" in got[:15], f"HTTP/1.0 GET /health: {got[:15]!r}, closed after {seconds} s"


def case_connection_close(server):
    s = server.connect()
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    seconds, got = closed_within(s, 5)
    return seconds is not None and b" 200" in got[:15], f"Connection: close: {got[:15]!r}, closed after {seconds} s"


def case_huge_content_length(server):
    s = server.connect()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n")
    start = time.time()
    seconds, got = closed_within(s, 5)
    return (seconds is not None and got.startswith(b"HTTP/1.1 413") and time.time() - start < 3,
            f"Content-Length 10^12: {got[:15]!r} after {time.time() - start:.2f} s, then closed ({seconds})")


def case_keep_alive_after_413(server):
    """A 413 on a keep-alive connection closes it: the server must not go on reading a body it refused."""
    s = server.connect()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n")
    sent, error = 0, None
    s.settimeout(5)
    try:
        for _ in range(200):  # up to 50 MB, as fast as the server takes it
            s.sendall(b"x" * 250000)
            sent += 250000
    except OSError as e:
        error = type(e).__name__
    seconds, got = closed_within(s, 5)
    return sent < 50000000 or error is not None or seconds is not None, f"sent {sent} bytes of a refused body ({error}); answer {got[:15]!r}"


def case_early_413_no_leak(server):
    """Early 413s with Connection: close — from the head's Content-Length, and from a chunked body past the limit —
    read to their end by clients that keep their sockets open: the server closes its side whole, every time."""
    before = server.descriptors()
    held = []
    for k in range(20):
        s = server.connect()
        if k % 2:
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n" + b"x" * 1000)
        else:
            chunk = b"x" * 1000000
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(3):
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass
        answer = read_all(s, 5)
        held.append((s, answer[:12]))
    time.sleep(1)
    after = server.descriptors()
    answers = sorted({a for _, a in held})
    for s, _ in held:
        s.close()
    return after <= before + 1 and answers == [b"HTTP/1.1 413"], f"20 early 413s with Connection: close, clients still open: descriptors {before} → {after}; answers {answers}"


def case_expect_continue(server):
    s = server.connect()
    data = json.dumps(EMBED).encode()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(data))
    s.settimeout(2)
    try:
        interim = s.recv(4096)
    except socket.timeout:
        interim = b""
    s.sendall(data)
    rest = read_until_answer(s)
    big = server.connect()
    big.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3000000\r\n\r\n")
    start = time.time()
    _, refused = closed_within(big, 3)
    return (interim.startswith(b"HTTP/1.1 100") and b" 200 " in rest[:20] and refused.startswith(b"HTTP/1.1 413") and time.time() - start < 2,
            f"Expect: 100-continue: {interim[:20]!r} then {rest[:15]!r}; too large: {refused[:15]!r} at once")


def read_until_answer(s, timeout=10):
    s.settimeout(timeout)
    got = b""
    try:
        while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < int(parse(got)[1].get("content-length", "0")):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        pass
    return got


def case_pipelined(server):
    """Three requests in one write, answered in order on a connection that stays open."""
    s = server.connect()
    data = json.dumps(EMBED).encode()
    one = b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
    s.sendall(one + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + one)
    answers = []
    for _ in range(3):
        got = read_until_answer(s)
        status, headers, body = parse(got)
        answers.append(status)
        rest = got.partition(b"\r\n\r\n")[2][int(headers.get("content-length", "0")):]
        if rest:  # the next answer came in the same read
            s2 = rest
            while s2:
                status, headers, body = parse(s2)
                answers.append(status)
                s2 = s2.partition(b"\r\n\r\n")[2][int(headers.get("content-length", "0")):]
        if len(answers) >= 3:
            break
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    later = parse(read_until_answer(s))[0]
    s.close()
    return answers[:3] == [200, 200, 200] and later == 200, f"pipelined embed, health, embed: {answers}; the connection then answers {later}"


def case_methods(server):
    status, headers, _ = server.request("GET", "/embed")
    head_status, _, head_body = server.request("HEAD", "/health")
    info_head, _, _ = server.request("HEAD", "/info")
    return (status == 405 and "POST" in headers.get("allow", "") and head_status == 200 and not head_body and info_head == 200,
            f"GET /embed: {status} Allow {headers.get('allow')!r}; HEAD /health: {head_status} ({len(head_body)} body bytes); HEAD /info: {info_head}")


def case_tei_routes(server):
    openai = {"input": ["The river is long."], "model": "m"}
    a = server.request("POST", "/embeddings", openai)
    b = server.request("POST", "/v1/embeddings", openai)
    invocations = server.request("POST", "/invocations", EMBED)
    root = server.request("POST", "/", EMBED)
    vertex = server.request("POST", "/vertex", {"instances": [EMBED, {"inputs": ["a", "b"]}]})
    ping = server.request("GET", "/ping")
    health_root = server.request("GET", "/")
    same = a[0] == 200 and json.loads(a[2])["data"] == json.loads(b[2])["data"]
    predictions = json.loads(vertex[2]).get("predictions") if vertex[0] == 200 else None
    ok = (same and invocations[0] == 200 and invocations[2] == root[2] and predictions is not None and len(predictions) == 2
          and predictions[0] == json.loads(root[2]) and len(predictions[1]) == 2 and ping[0] == 200 and health_root[0] == 200)
    return ok, (f"/embeddings {a[0]} (= /v1/embeddings: {same}); /invocations {invocations[0]} (= POST /: {invocations[2] == root[2]}); "
                f"/vertex {vertex[0]} ({None if predictions is None else len(predictions)} predictions); GET /ping {ping[0]}; GET / {health_root[0]}")


def case_queue_gauge(binary):
    """Requests queued behind one another (one request per batch), their clients resetting: the gauge comes back to 0."""
    server = Server(binary, TIMEOUTS + ["--max-batch-requests", "1"])
    try:
        data = json.dumps({"inputs": ["word " * 100] * 32, "truncate": True}).encode()
        sockets = []
        for _ in range(100):
            s = server.connect()
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
            sockets.append(s)
        time.sleep(0.05)
        for s in sockets:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close = reset
            s.close()
        time.sleep(3)
        queue = server.metric("te_queue_size")
        cancelled = server.metric('te_request_failure{err="cancelled"}')
    finally:
        server.stop()
    return queue == 0, f"te_queue_size after 100 queued requests whose clients reset: {queue} ({cancelled} counted cancelled)"


def case_half_close_answered(server):
    s = server.connect()
    data = json.dumps(EMBED).encode()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
    s.shutdown(socket.SHUT_WR)
    got = read_all(s, 10)
    return got.startswith(b"HTTP/1.1 200"), f"request, then FIN (still reading): {got[:15]!r} (TEI answers it)"


def case_info_behind_key(binary):
    server = Server(binary, ["--api-key", "k"] + TIMEOUTS)
    try:
        without = server.request("GET", "/info")[0]
        with_key = server.request("GET", "/info", headers={"Authorization": "Bearer k"})[0]
        health = server.request("GET", "/health")[0]
        metrics = server.request("GET", "/metrics")[0]
    finally:
        server.stop()
    return without == 401 and with_key == 200 and health == 200 and metrics == 200, (
        f"--api-key: /info {without} without the key, {with_key} with; /health {health}, /metrics {metrics} open (as TEI)")


def case_descriptor_limit(binary):
    """Past the descriptor limit: no busy loop, and service again as soon as descriptors free."""
    server = Server(binary, TIMEOUTS, nofile=128)
    held = []
    try:
        for _ in range(140):
            try:
                held.append(server.connect(timeout=2))
            except OSError:
                break
        time.sleep(0.5)
        cpu = server.cpu_seconds()
        time.sleep(3)
        busy = server.cpu_seconds() - cpu
        for s in held:
            s.close()
        held = []
        time.sleep(0.5)
        start = time.time()
        status = server.request("GET", "/health", timeout=10)[0]
        answered = time.time() - start
        shed = server.metric("megatron_bert_connections_refused_total")
    finally:
        for s in held:
            s.close()
        server.stop()
    return busy < 0.5 and status == 200 and answered < 5, (
        f"RLIMIT_NOFILE 128, 140 idle connections: {busy:.2f} s of CPU in 3 s; then /health {status} in {answered:.2f} s; refused {shed}")


def case_max_connections(binary):
    server = Server(binary, TIMEOUTS + ["--max-connections", "4"])
    try:
        held = [server.connect() for _ in range(4)]
        time.sleep(0.3)
        extra = server.connect()
        seconds, _ = closed_within(extra, 3)
        for s in held:
            s.close()
        time.sleep(0.3)
        status = server.request("GET", "/health")[0]
    finally:
        server.stop()
    return seconds is not None and status == 200, f"--max-connections 4: the fifth closed after {seconds} s; later /health {status}"


def case_sigterm_stuck_body(binary):
    server = Server(binary, ["--graceful-shutdown-timeout", "2", "--body-timeout", "300", "--header-timeout", "300"])
    s = server.connect()
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"inputs\": ")
    idle = server.connect()
    time.sleep(0.5)
    start = time.time()
    status = server.stop(signal.SIGTERM, timeout=15)
    seconds = time.time() - start
    s.close()
    idle.close()
    return status == 0 and seconds < 6, f"SIGTERM with a client stuck in its body: exit {status} after {seconds:.1f} s (--graceful-shutdown-timeout 2)"


SHARED = [case_idle_connection, case_half_header, case_half_body, case_idle_keep_alive, case_timeouts_counted,
          case_http10_closed, case_connection_close, case_huge_content_length, case_keep_alive_after_413,
          case_early_413_no_leak, case_expect_continue, case_pipelined, case_methods, case_tei_routes, case_half_close_answered]
OWN = [case_queue_gauge, case_info_behind_key, case_descriptor_limit, case_max_connections, case_sigterm_stuck_body]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "megatron-bert"))
    parser.add_argument("--only", help="comma-separated case names (without case_)")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    results = []
    server = Server(args.binary, TIMEOUTS)
    server.request("POST", "/embed", EMBED)  # warm: the first request's buffers are not a leak
    baseline, rss = server.descriptors(), server.rss_mb()
    try:
        for case in SHARED:
            name = case.__name__[5:]
            if only and name not in only:
                continue
            try:
                ok, detail = case(server)
            except Exception as error:  # a case that cannot even run fails
                ok, detail = False, f"{type(error).__name__}: {error}"
            # After every case the descriptors come back (within the keep-alive timeout) and memory stays put.
            settle = time.time() + 4
            while server.descriptors() > baseline + 1 and time.time() < settle:
                time.sleep(0.1)
            left, resident = server.descriptors(), server.rss_mb()
            if left > baseline + 1 or resident > rss + 64:
                ok, detail = False, detail + f"; then descriptors {left} (baseline {baseline}), resident {resident:.0f} MB (baseline {rss:.0f})"
            results.append((name, ok, detail))
        time.sleep(3)  # the keep-alive timeout closes what the cases left
        descriptors, rss_after = server.descriptors(), server.rss_mb()
        results.append(("descriptors_back", descriptors <= baseline + 1, f"descriptors {baseline} at start, {descriptors} after the cases"))
        results.append(("memory_back", rss_after <= rss + 64, f"resident memory {rss:.0f} MB at start, {rss_after:.0f} MB after the cases"))
    finally:
        server.stop()
    for case in OWN:
        name = case.__name__[5:]
        if only and name not in only:
            continue
        try:
            ok, detail = case(args.binary)
        except Exception as error:
            ok, detail = False, f"{type(error).__name__}: {error}"
        results.append((name, ok, detail))
    width = max(len(n) for n, _, _ in results)
    for name, ok, detail in results:
        print(f"{'pass' if ok else 'FAIL'}  {name:{width}}  {detail}")
    failed = [n for n, ok, _ in results if not ok]
    print(f"{len(results) - len(failed)} of {len(results)} cases pass" + (f"; failing: {', '.join(failed)}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
