"""Real clients against `megatron-bert serve`, unchanged: the `openai` package's embeddings.create on /v1/embeddings
and huggingface_hub's InferenceClient (feature_extraction on the base URL, fill_mask, token_classification and
question_answering on BASE/fill-mask, BASE/ner, BASE/qa), each answer equal to the command line's."""

import json
import re
import subprocess

import pytest

from conftest import TASK_MODELS

openai = pytest.importorskip("openai")
huggingface_hub = pytest.importorskip("huggingface_hub")


@pytest.fixture
def serve(binary):
    started = []

    def start(model):
        process = subprocess.Popen([binary, "serve", "--model", str(model), "--hostname", "127.0.0.1", "--port", "0", "--quiet"],
                                   stderr=subprocess.PIPE, text=True)
        started.append(process)
        for line in process.stderr:
            found = re.search(r"listening on (http://[0-9.:]+)", line)
            if found:
                return found.group(1)
        raise RuntimeError(f"the server did not start (exit {process.wait()})")

    yield start
    for process in started:
        process.terminate()
        assert process.wait(timeout=30) == 0, "SIGTERM ends the server with status 0"


def cli(binary, *args):
    return json.loads(subprocess.run([binary, *args, "--json", "--quiet"], check=True, capture_output=True, text=True).stdout)


def close(a, b, tolerance=1e-5):
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b))


def test_openai_embeddings_and_feature_extraction(serve, binary, minilm):
    base = serve(minilm)
    texts = ["A man is eating food.", "NVIDIA trained Megatron-BERT with 345 million parameters."]
    expected = [item["embedding"] for item in cli(binary, "embed", "--model", minilm, "--normalize", *texts)]
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused")
    answer = client.embeddings.create(input=texts, model="all-MiniLM-L6-v2")
    assert [item.index for item in answer.data] == [0, 1]
    assert all(close(item.embedding, vector) for item, vector in zip(answer.data, expected))
    assert answer.usage.prompt_tokens > 0
    vectors = huggingface_hub.InferenceClient(model=base).feature_extraction(texts[0])
    assert close(list(vectors[0]), expected[0])


def test_inference_client_tasks(serve, binary):
    fill = serve(TASK_MODELS / "pretraining")
    expected = cli(binary, "fill-mask", "--model", str(TASK_MODELS / "pretraining"), "The capital of France is [MASK].")[0]
    predictions = huggingface_hub.InferenceClient(model=fill + "/fill-mask").fill_mask("The capital of France is [MASK].")
    assert [p.token_str for p in predictions] == [e["token_str"] for e in expected]
    assert close([p.score for p in predictions], [e["score"] for e in expected], 1e-9)

    ner = serve(TASK_MODELS / "ner")
    expected = cli(binary, "ner", "--model", str(TASK_MODELS / "ner"), "John Smith lives in New York.")[0]
    entities = huggingface_hub.InferenceClient(model=ner + "/ner").token_classification("John Smith lives in New York.")
    assert [(e.entity_group, e.word, e.start, e.end) for e in entities] == [(e["entity_group"], e["word"], e["start"], e["end"]) for e in expected]

    qa = serve(TASK_MODELS / "qa")
    expected = cli(binary, "qa", "--model", str(TASK_MODELS / "qa"), "--question", "Where does John live?",
                   "--context", "John lives in Paris.")[0][0]
    answer = huggingface_hub.InferenceClient(model=qa + "/qa").question_answering(question="Where does John live?",
                                                                                   context="John lives in Paris.")
    assert (answer.answer, answer.start, answer.end) == (expected["answer"], expected["start"], expected["end"])
    assert abs(answer.score - expected["score"]) <= 1e-9


def test_the_openapi_document_is_valid(serve, minilm):
    validator = pytest.importorskip("openapi_spec_validator")
    import urllib.request

    document = json.loads(urllib.request.urlopen(serve(minilm) + "/openapi.json").read())
    validator.validate(document)  # raises on an invalid OpenAPI 3 document
    assert {"/embed", "/v1/embeddings", "/fill-mask", "/ner", "/qa", "/rerank"} <= set(document["paths"])
