#!/usr/bin/env python3
"""The embedding server a Python user would write instead of `megatron-bert serve`: FastAPI + transformers, the same
model directory, TEI's `POST /embed` shape ({"inputs": text or texts} → a list of vectors; mean pooling over the
attention mask, L2-normalized, like sentence-transformers), one request per forward pass (no cross-request batching:
FastAPI runs plain `def` routes in its thread pool). `scripts/bench_serve.py` starts it beside ours.

    MODEL=/path/to/model /tmp/ref/bin/python -m uvicorn --app-dir scripts python_embed_server:app --port 3001

Needs torch, transformers, fastapi and uvicorn (pip install fastapi uvicorn into the reference venv).
"""
import os

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import AutoModel, AutoTokenizer

torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count() or 1)))
MODEL = os.environ["MODEL"]
tokenizer = AutoTokenizer.from_pretrained(MODEL)
model = AutoModel.from_pretrained(MODEL).eval()
app = FastAPI()


class EmbedRequest(BaseModel):
    inputs: str | list[str]
    truncate: bool = True


@app.post("/embed")
def embed(request: EmbedRequest) -> list[list[float]]:
    texts = [request.inputs] if isinstance(request.inputs, str) else request.inputs
    with torch.inference_mode():
        batch = tokenizer(texts, padding=True, truncation=request.truncate, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        vectors = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(vectors, dim=-1).tolist()


@app.get("/health")
def health() -> dict:
    return {}
