"""The HTTP service over real HTTP on loopback: endpoints, limits, bad input, concurrent load, the CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

import textclf
from tests.conftest import write_corpus
from textclf.inference.export import export_onnx
from textclf.serving import Limits, create_app

LIMITS = Limits(max_batch=8, max_text_chars=200, max_body_bytes=4_000)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    model = textclf.train(write_corpus(root / "train.csv", n_per_class=30), test_size=0.2, architecture="fasttext",
                          epochs=8, lr=0.05, embedding_dim=16, bigram_buckets=1024, device="cpu")
    path = model.save(root / "model")
    export_onnx(path)
    return path


class Server:
    """uvicorn in a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


@pytest.fixture(scope="module")
def server(model_dir):
    with Server(create_app(model_dir, limits=LIMITS, threads=1)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as session:
        yield session


def test_health_metadata_and_docs(client, model_dir):
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["labels"] == ["anger", "fear", "joy"] and meta["architecture"] == "textclf.fasttext.v1"
    assert meta["runtime"] == "torch" and 0 <= meta["metrics"]["accuracy"] <= 1
    assert {"textclf", "torch", "tokenizers"} <= set(meta["versions"]) and "torch" in meta["trained_with"]
    assert meta["limits"] == {"max_batch": 8, "max_text_chars": 200, "max_body_bytes": 4000}
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_predict_labels_and_probabilities(client, model_dir):
    texts = ["so happy we celebrated", "terrified and scared", ""]
    response = client.post("/predict", json={"texts": texts, "top_k": 3, "precision": "full"})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    model = textclf.load_model(model_dir)
    assert [p["label"] for p in predictions] == model.predict(texts)
    got = np.array([[{t["label"]: t["score"] for t in p["top_k"]}[x] for x in model.labels] for p in predictions])
    assert np.allclose(got, model.predict_proba(texts), atol=1e-6)
    assert all(p["score"] == p["top_k"][0]["score"] for p in predictions)
    short = client.post("/predict", json={"texts": texts}).json()["predictions"]
    assert all(set(p) == {"label", "score"} and p["score"] == round(p["score"], 4) for p in short)


def expect_error(response: httpx.Response, status: int, kind: str, match: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == kind and match in error["message"], error


def test_limits(client):
    expect_error(client.post("/predict", json={"texts": ["a"] * 9}), 413, "batch_too_large", "at most 8 per request")
    expect_error(client.post("/predict", json={"texts": ["ok", "x" * 201]}), 422, "text_too_long",
                 "texts.1 has 201 characters; at most 200")
    big = json.dumps({"texts": ["y" * 150] * 30})
    expect_error(client.post("/predict", content=big, headers={"content-type": "application/json"}), 413,
                 "body_too_large", "over 4,000 bytes")
    chunks = (part.encode() for part in [big[i : i + 500] for i in range(0, len(big), 500)])
    expect_error(client.post("/predict", content=chunks, headers={"content-type": "application/json"}), 413,
                 "body_too_large")
    assert client.post("/predict", json={"texts": ["x" * 200] * 8}).status_code == 200  # at the limits


@pytest.mark.parametrize(("body", "status", "kind"), [
    (b'{"texts": ["unterminated"', 400, "invalid_json"),
    (b"\xff\xfe not utf-8", 400, "invalid_json"),
    (b"", 422, "invalid_request"),
    (b'{"texts": "one string"}', 422, "invalid_request"),
    (b'{"texts": [1, 2]}', 422, "invalid_request"),
    (b'{"texts": [null]}', 422, "invalid_request"),
    (b"{}", 422, "invalid_request"),
    (b'{"texts": ["a"], "extra": 1}', 422, "invalid_request"),
    (b'["a", "b"]', 422, "invalid_request"),
    (b'{"texts": []}', 422, "empty_batch"),
])
def test_bad_inputs_get_json_errors_never_500(client, body, status, kind):
    expect_error(client.post("/predict", content=body, headers={"content-type": "application/json"}), status, kind)


def test_wrong_method_path_and_content_type(client):
    expect_error(client.get("/predict"), 405, "http_error")
    expect_error(client.get("/nothing"), 404, "http_error")
    response = client.post("/predict", content=b"texts=a", headers={"content-type": "text/plain"})
    assert response.status_code in (400, 415, 422) and "error" in response.json()


def test_concurrent_load_20_clients_50_requests(server, model_dir):
    expected = dict(zip(["so happy", "scared", "unfair"], textclf.load_model(model_dir).predict(
        ["so happy", "scared", "unfair"]), strict=True))

    def client_run(seed: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=server.url, timeout=60) as session:
            for i in range(50):
                text = list(expected)[(seed + i) % 3]
                response = session.post("/predict", json={"texts": [text]})
                if response.status_code != 200 or response.json()["predictions"][0]["label"] != expected[text]:
                    problems.append(f"{response.status_code} {response.text[:80]}")
        return problems

    with ThreadPoolExecutor(20) as pool:
        problems = [p for result in pool.map(client_run, range(20)) for p in result]
    assert problems == []


def test_onnx_runtime_app_matches_torch(model_dir):
    texts = ["so happy we celebrated", "terrified and scared"]
    with Server(create_app(model_dir, runtime="onnx", threads=1)) as running:
        response = httpx.post(f"{running.url}/predict", json={"texts": texts, "top_k": 3, "precision": "full"},
                              timeout=30)
        meta = httpx.get(f"{running.url}/metadata", timeout=30).json()
    assert response.status_code == 200 and meta["runtime"] == "onnx" and "onnxruntime" in meta["versions"]
    model = textclf.load_model(model_dir)
    got = np.array([[{t["label"]: t["score"] for t in p["top_k"]}[x] for x in model.labels]
                    for p in response.json()["predictions"]])
    assert np.abs(got - model.predict_proba(texts)).max() < 1e-4


def test_scikit_learn_baseline_is_served_and_streamed(tmp_path):
    from typer.testing import CliRunner

    from textclf.cli import app

    model = textclf.train(write_corpus(tmp_path / "c.csv", n_per_class=20), architecture="tfidf-lr")
    folder = model.save(tmp_path / "baseline")
    texts = ["so happy we celebrated", "terrified and scared"]
    with Server(create_app(folder)) as running:
        response = httpx.post(f"{running.url}/predict", json={"texts": texts}, timeout=30)
        meta = httpx.get(f"{running.url}/metadata", timeout=30).json()
    assert response.status_code == 200 and meta["architecture"] == "textclf.tfidf-lr.v1"
    assert [p["label"] for p in response.json()["predictions"]] == model.predict(texts)
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["predict", str(folder), "-f", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["label"] for x in out.read_text().splitlines()] == model.predict(texts)


def test_cli_serve_two_onnx_workers_on_loopback(model_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "textclf.cli", "serve", str(model_dir), "--port", str(port), "--workers", "2",
               "--runtime", "onnx", "--threads", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline, response = time.monotonic() + 90, None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                response = httpx.post(f"http://127.0.0.1:{port}/predict", json={"texts": ["so happy"]}, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert response is not None and response.status_code == 200, process.poll()
        assert response.json()["predictions"][0]["label"] in ("anger", "fear", "joy")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output
    assert output.count(f"textclf serving {model_dir}: a textclf.fasttext.v1 model") == 2  # each worker names it
    assert '"POST /predict HTTP/1.1" 200' in output  # a line per request


def test_cli_serve_bad_folder_is_one_line(tmp_path):
    from typer.testing import CliRunner

    from textclf.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "Model folder not found" in result.output


def test_micro_batcher_merges_concurrent_requests_and_keeps_rows_apart():
    import asyncio

    from textclf.serving import MicroBatcher

    calls = []

    def predict_proba(texts):
        calls.append(len(texts))
        time.sleep(0.05)  # while this runs, the other requests queue up
        return np.array([[float(len(t))] for t in texts])

    async def main():
        batcher = MicroBatcher(predict_proba, ThreadPoolExecutor(1))
        results = await asyncio.gather(*(batcher(["x" * k, "y" * (k + 100)]) for k in range(10)))
        batcher.close()
        return results

    results = asyncio.run(main())
    assert [r[:, 0].tolist() for r in results] == [[k, k + 100] for k in range(10)]
    assert sum(calls) == 20 and len(calls) < 10


def test_micro_batcher_retries_alone_so_only_the_bad_request_fails():
    import asyncio

    from textclf.serving import MicroBatcher

    def fragile(texts):
        time.sleep(0.02)  # the others queue up behind the first call
        if "bad" in texts:
            raise RuntimeError("boom")
        return np.array([[float(len(t))] for t in texts])

    async def main():
        batcher = MicroBatcher(fragile, ThreadPoolExecutor(1))
        results = await asyncio.gather(batcher(["first"]), batcher(["a"]), batcher(["bad"]), batcher(["ccc"]),
                                       return_exceptions=True)
        batcher.close()
        return results

    first, a, bad, ccc = asyncio.run(main())
    assert isinstance(bad, RuntimeError)
    assert first[:, 0].tolist() == [5.0] and a[:, 0].tolist() == [1.0] and ccc[:, 0].tolist() == [3.0]


def test_a_lone_surrogate_is_a_422_naming_the_item(client):
    body = b'{"texts": ["fine", "\\ud800 broken"]}'
    expect_error(client.post("/predict", content=body, headers={"content-type": "application/json"}), 422,
                 "invalid_text", "texts.1 has a lone surrogate at character 0")


def test_a_500_never_shows_the_exception_text(tmp_path):
    class Broken:
        labels, config, training = ["a", "b"], {"architecture": "broken"}, {}

        def predict_proba(self, texts, batch_size=None):
            raise RuntimeError("secret internal detail /srv/model")

    with Server(create_app(Broken(), limits=LIMITS)) as running:
        response = httpx.post(f"{running.url}/predict", json={"texts": ["x"]}, timeout=30)
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "internal_error" and "secret" not in response.text


def test_bad_clients_never_fail_good_ones(server, model_dir):
    """Good and bad clients at once for a few seconds: every well-formed request gets its 200."""
    expected = textclf.load_model(model_dir).predict(["so happy"])[0]
    bad_bodies = [b'{"texts": ["\\ud800"]}', b'{"texts": ["ok", "\\udfff x"]}', b'{"texts": [1]}', b"{",
                  b'{"texts": ["' + b"z" * 201 + b'"]}']
    stop = time.monotonic() + 4

    def good(seed: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=server.url, timeout=60) as session:
            while time.monotonic() < stop:
                response = session.post("/predict", json={"texts": ["so happy"] * (1 + seed % 3)})
                if response.status_code != 200 or response.json()["predictions"][0]["label"] != expected:
                    problems.append(f"{response.status_code} {response.text[:80]}")
        return problems

    def bad(seed: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=server.url, timeout=60) as session:
            while time.monotonic() < stop:
                body = bad_bodies[seed % len(bad_bodies)]
                response = session.post("/predict", content=body, headers={"content-type": "application/json"})
                if not 400 <= response.status_code < 500:
                    problems.append(f"bad body {body[:20]!r} got {response.status_code}")
                seed += 1
        return problems

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(good, i) for i in range(6)] + [pool.submit(bad, i) for i in range(2)]
        problems = [p for future in futures for p in future.result()]
    assert problems == []


def test_serve_freezes_the_loaded_heap_before_serving(model_dir, monkeypatch):
    """A full garbage collection over PyTorch's objects stalled requests for ~200 ms (the p99 under
    load); serve() moves what it loaded out of the collector before uvicorn starts."""
    import gc

    from textclf import serving

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(frozen=gc.get_freeze_count(), app=app))
    gc.unfreeze()
    try:
        serving.serve(model_dir, threads=1)
    finally:
        gc.unfreeze()
    assert seen["frozen"] > 1000 and seen["app"].title == "textclf"
