"""TEI's gRPC API of `megatron-bert serve --grpc-port`, called by grpcio with stubs compiled from proto/tei.proto by
grpcio-tools: every RPC, unary and streaming, answers what its HTTP route answers (vectors equal, the same tokens,
labels and ranks, TEI's status codes for the same errors); `--api-key` is asked as TEI asks it; a cancelled stream
leaves the queue."""

import json
import re
import shutil
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, TASK_MODELS

grpc = pytest.importorskip("grpc")
grpc_tools = pytest.importorskip("grpc_tools")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """tei_pb2 and tei_pb2_grpc, compiled from the repository's proto/tei.proto."""
    from grpc_tools import protoc
    out = tmp_path_factory.mktemp("tei_stubs")
    assert protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}", str(ROOT / "proto" / "tei.proto")]) == 0
    sys.path.insert(0, str(out))
    import tei_pb2
    import tei_pb2_grpc
    return tei_pb2, tei_pb2_grpc


@pytest.fixture
def serve(binary):
    started = []

    def start(model, *extra):
        process = subprocess.Popen([binary, "serve", "--model", str(model), "--hostname", "127.0.0.1", "--port", "0", "--grpc-port", "0", *extra],
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        http = grpc_address = None
        for line in process.stderr:
            found = re.search(r"listening on (http://[0-9.:]+)", line)
            if found:
                http = found.group(1)
            found = re.search(r"gRPC .* listening on ([0-9.]+:[0-9]+)", line)
            if found:
                grpc_address = found.group(1)
            if http and grpc_address:
                return http, grpc.insecure_channel(grpc_address)
        raise RuntimeError(f"the server did not start (exit {process.wait()})")

    yield start
    for process in started:
        process.terminate()
        assert process.wait(timeout=30) == 0


def post(base, path, body, headers=None):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def close(a, b, tolerance=1e-6):
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b))


def code(call):
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return None


def test_embedding_rpcs_answer_as_http(serve, stubs, minilm):
    pb, rpc = stubs
    base, channel = serve(minilm)
    texts = ["A man is eating food.", "NVIDIA trained Megatron-BERT with 345 million parameters.", "Paris is in France."]
    embed = rpc.EmbedStub(channel)
    for normalize in (True, False):
        http = post(base, "/embed", {"inputs": texts, "normalize": normalize})[1]
        one = embed.Embed(pb.EmbedRequest(inputs=texts[0], normalize=normalize))
        assert close(one.embeddings, http[0]) and one.metadata.compute_tokens > 0 and one.metadata.inference_time_ns > 0
        streamed = list(embed.EmbedStream(iter([pb.EmbedRequest(inputs=t, normalize=normalize) for t in texts])))
        assert len(streamed) == 3 and all(close(s.embeddings, h) for s, h in zip(streamed, http))
    # proto3's normalize is false unless sent (TEI's gRPC default; /embed's is true).
    left = embed.Embed(pb.EmbedRequest(inputs=" ".join(texts * 40), truncate=True, truncation_direction=pb.TRUNCATION_DIRECTION_LEFT))
    http_left = post(base, "/embed", {"inputs": " ".join(texts * 40), "truncate": True, "truncation_direction": "Left", "normalize": False})[1]
    assert close(left.embeddings, http_left[0])
    all_tokens = post(base, "/embed_all", {"inputs": texts[:2]})[1]
    one = embed.EmbedAll(pb.EmbedAllRequest(inputs=texts[0]))
    assert len(one.token_embeddings) == len(all_tokens[0]) and all(close(a.embeddings, b) for a, b in zip(one.token_embeddings, all_tokens[0]))
    streamed = list(embed.EmbedAllStream(iter([pb.EmbedAllRequest(inputs=t) for t in texts[:2]])))
    assert [len(s.token_embeddings) for s in streamed] == [len(t) for t in all_tokens]
    # The same errors: an input over the limit (HTTP 422 Validation) is INVALID_ARGUMENT; no SPLADE head, no sparse vectors.
    assert post(base, "/embed", {"inputs": " ".join(texts * 40)})[0] == 422
    assert code(lambda: embed.Embed(pb.EmbedRequest(inputs=" ".join(texts * 40)))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code(lambda: embed.EmbedSparse(pb.EmbedSparseRequest(inputs=texts[0]))) == grpc.StatusCode.FAILED_PRECONDITION
    assert code(lambda: list(embed.EmbedSparseStream(iter([pb.EmbedSparseRequest(inputs="x")])))) == grpc.StatusCode.FAILED_PRECONDITION
    # An embedding model cannot classify or rerank: HTTP 424, gRPC FAILED_PRECONDITION (TEI's Backend error).
    assert post(base, "/predict", {"inputs": "x"})[0] == 424
    assert code(lambda: rpc.PredictStub(channel).Predict(pb.PredictRequest(inputs="x"))) == grpc.StatusCode.FAILED_PRECONDITION
    assert code(lambda: rpc.RerankStub(channel).Rerank(pb.RerankRequest(query="q", texts=["a"]))) == grpc.StatusCode.FAILED_PRECONDITION
    info = rpc.InfoStub(channel).Info(pb.InfoRequest())
    http_info = json.loads(urllib.request.urlopen(base + "/info").read())
    assert info.model_id == http_info["model_id"] and info.max_input_length == http_info["max_input_length"] == 512
    assert info.model_type == pb.MODEL_TYPE_EMBEDDING and info.max_client_batch_size == http_info["max_client_batch_size"]


def test_tokenize_and_decode(serve, stubs, minilm):
    pb, rpc = stubs
    base, channel = serve(minilm)
    tokenize = rpc.TokenizeStub(channel)
    text = "Héllo, wörld: tokenizers!"
    http = post(base, "/tokenize", {"inputs": [text, "Paris"], "add_special_tokens": True})[1]
    for add in (True, False):
        expected = post(base, "/tokenize", {"inputs": text, "add_special_tokens": add})[1][0]
        tokens = tokenize.Tokenize(pb.EncodeRequest(inputs=text, add_special_tokens=add)).tokens
        assert [(t.id, t.text, t.special, t.start if t.HasField("start") else None, t.stop if t.HasField("stop") else None) for t in tokens] == \
            [(e["id"], e["text"], e["special"], e["start"], e["stop"]) for e in expected]
    streamed = list(tokenize.TokenizeStream(iter([pb.EncodeRequest(inputs=t, add_special_tokens=True) for t in [text, "Paris"]])))
    assert [[t.id for t in s.tokens] for s in streamed] == [[e["id"] for e in h] for h in http]
    ids = [t["id"] for t in http[0]]
    for skip in (True, False):
        expected = post(base, "/decode", {"ids": ids, "skip_special_tokens": skip})[1][0]
        assert tokenize.Decode(pb.DecodeRequest(ids=ids, skip_special_tokens=skip)).text == expected
    streamed = list(tokenize.DecodeStream(iter([pb.DecodeRequest(ids=ids, skip_special_tokens=True)] * 2)))
    assert [s.text for s in streamed] == [post(base, "/decode", {"ids": ids})[1][0]] * 2
    assert code(lambda: tokenize.Decode(pb.DecodeRequest(ids=[10 ** 8]))) == grpc.StatusCode.INVALID_ARGUMENT


def one_label(tmp_path):
    """The fixture classifier cut to one label (a cross-encoder): safetensors rewritten with the standard library."""
    source = TASK_MODELS / "classification"
    target = tmp_path / "reranker"
    shutil.copytree(source, target)
    raw = (source / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    data = raw[8 + size:]
    tensors, blob = {}, b""
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        value, shape = data[begin:end], entry["shape"]
        if name in ("classifier.weight", "classifier.bias"):
            value, shape = value[:4 * (shape[1] if len(shape) == 2 else 1)], [1] + shape[1:]
        tensors[name] = {"dtype": entry["dtype"], "shape": shape, "data_offsets": [len(blob), len(blob) + len(value)]}
        blob += value
    text = json.dumps(tensors).encode()
    (target / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + blob)
    config = json.loads((source / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "LABEL_0"}, {"LABEL_0": 0}
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_predict_and_rerank_rpcs(serve, stubs, tmp_path):
    pb, rpc = stubs
    base, channel = serve(TASK_MODELS / "classification")
    predict = rpc.PredictStub(channel)
    texts = ["John lives in Paris.", "A very bad day."]
    for raw in (False, True):
        http = post(base, "/predict", {"inputs": texts[0], "raw_scores": raw})[1]
        answer = predict.Predict(pb.PredictRequest(inputs=texts[0], raw_scores=raw))
        assert [p.label for p in answer.predictions] == [h["label"] for h in http]
        assert close([p.score for p in answer.predictions], [h["score"] for h in http])
    pair = post(base, "/predict", {"inputs": texts})[1]
    answer = predict.PredictPair(pb.PredictPairRequest(inputs=texts))
    assert [p.label for p in answer.predictions] == [h["label"] for h in pair] and close([p.score for p in answer.predictions], [h["score"] for h in pair])
    streamed = list(predict.PredictStream(iter([pb.PredictRequest(inputs=t) for t in texts])))
    http = post(base, "/predict", {"inputs": [[t] for t in texts]})[1]
    assert [[p.label for p in s.predictions] for s in streamed] == [[h["label"] for h in one] for one in http]
    streamed = list(predict.PredictPairStream(iter([pb.PredictPairRequest(inputs=texts)] * 2)))
    assert all(close([p.score for p in s.predictions], [h["score"] for h in pair]) for s in streamed)
    assert code(lambda: predict.PredictPair(pb.PredictPairRequest(inputs=texts * 2))) == grpc.StatusCode.INVALID_ARGUMENT
    # A cross-encoder: Rerank and RerankStream answer /rerank's ranks.
    base, channel = serve(one_label(tmp_path))
    rerank = rpc.RerankStub(channel)
    docs = ["Paris is a city in France.", "A cat sleeps.", "France has Paris."]
    http = post(base, "/rerank", {"query": "Where is Paris?", "texts": docs, "return_text": True})[1]
    answer = rerank.Rerank(pb.RerankRequest(query="Where is Paris?", texts=docs, return_text=True))
    assert [(r.index, r.text) for r in answer.ranks] == [(h["index"], h["text"]) for h in http]
    assert close([r.score for r in answer.ranks], [h["score"] for h in http])
    streamed = rerank.RerankStream(iter([pb.RerankStreamRequest(query="Where is Paris?", text=d, return_text=True) for d in docs]))
    assert [(r.index, r.text) for r in streamed.ranks] == [(h["index"], h["text"]) for h in http]
    assert rpc.InfoStub(channel).Info(pb.InfoRequest()).model_type == pb.MODEL_TYPE_RERANKER


def test_api_key_and_cancelled_streams(serve, stubs, minilm):
    pb, rpc = stubs
    base, channel = serve(minilm, "--api-key", "secret", "--max-client-batch-size", "64")
    embed = rpc.EmbedStub(channel)
    assert code(lambda: embed.Embed(pb.EmbedRequest(inputs="x"))) == grpc.StatusCode.UNAUTHENTICATED
    assert code(lambda: rpc.InfoStub(channel).Info(pb.InfoRequest())) == grpc.StatusCode.UNAUTHENTICATED
    key = [("authorization", "Bearer secret")]
    assert len(embed.Embed(pb.EmbedRequest(inputs="x"), metadata=key).embeddings) == 384
    # A stream cancelled while its requests wait behind heavy work: they leave the queue (cancelled, never run).
    heavy = {"inputs": ["word " * 600] * 64, "truncate": True}
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        busy = [pool.submit(post, base, "/embed", heavy, {"Authorization": "Bearer secret"}) for _ in range(3)]
        time.sleep(0.3)
        call = embed.EmbedStream(iter([pb.EmbedRequest(inputs="word " * 500, truncate=True)] * 20), metadata=key)
        time.sleep(0.2)
        call.cancel()
        assert [f.result()[0] for f in busy] == [200] * 3
    time.sleep(1)
    metrics = urllib.request.urlopen(base + "/metrics").read().decode()
    cancelled = float(re.search(r'^te_request_failure\{err="cancelled"\} (\S+)', metrics, re.M).group(1))
    queue = float(re.search(r"^te_queue_size (\S+)", metrics, re.M).group(1))
    assert cancelled >= 1 and queue == 0, (cancelled, queue)
