"""The HTTP service: FastAPI over any Predictor (textclf.Model, LinearModel, OnnxModel).

    POST /predict  {"texts": ["...", ...], "top_k": 1, "precision": "4"}
                   -> {"predictions": [{"label", "score", "top_k"}]} (textclf.inference.schema)
    POST /explain  {"texts": [...], "label": null, "method": "auto"} -> {"explanations": [...]} (textclf.explain)
    GET  /health   liveness
    GET  /metadata labels, architecture, test metrics, library versions, limits
    GET  /docs     OpenAPI documentation

Inference runs on one worker thread per process, off the event loop: requests that arrive
while a batch is being predicted are predicted together next (no added delay when idle), so
concurrent single-text requests share one model call instead of queueing one by one.

Limits: a body over `max_body_bytes` or more than `max_batch` texts gives 413, a text over
`max_text_chars` characters 422; malformed JSON 400; a request of the wrong shape 422. Every error
is ``{"error": {"type", "message"}}``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from starlette.exceptions import HTTPException

from textclf import __version__
from textclf.errors import ConfigError, TextClfError
from textclf.inference.loading import load_predictor
from textclf.inference.predictor import Predictor
from textclf.inference.schema import DECIMALS, prediction_records

LOG = logging.getLogger("textclf.serving")
ENVIRONMENT_KEY = "TEXTCLF_SERVE"  # how `textclf serve --workers N` hands its settings to each worker


@dataclass(frozen=True)
class Limits:
    max_batch: int = 64  # texts per request
    max_text_chars: int = 20_000  # characters per text
    max_body_bytes: int = 2_000_000  # bytes per request body


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr]
    top_k: StrictInt = Field(1, ge=1, description="how many labels (best first) to return per text")
    precision: Literal["4", "full"] = Field("4", description="decimals of the scores: 4, or full")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr]
    label: StrictStr | None = Field(None, description="the label to explain (default: each text's prediction)")
    method: Literal["auto", "exact", "integrated-gradients", "occlusion"] = "auto"


class Scored(BaseModel):
    label: str
    score: float


class Prediction(BaseModel):
    label: str
    score: float
    top_k: list[Scored] | None = None


class PredictResponse(BaseModel):
    predictions: list[Prediction]


class ServiceError(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse bodies over `limit` bytes with 413 before the app reads them, whether
    Content-Length announces them or they arrive chunked."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await self._refuse(scope, receive, send)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        message = f"request body is over {self.limit:,} bytes; send fewer or shorter texts per request."
        response = error_response(413, "body_too_large", message)
        await response(scope, receive, send)


class MicroBatcher:
    """Predicts the texts of concurrent requests in one call of `predict_proba` on `executor`.

    Each request waits on a future; a single task takes everything queued (up to `max_texts`
    texts, whole requests), predicts it on the executor thread and hands each request its rows.
    If the batched call fails, each request is predicted again alone, so that only a request that
    fails by itself gets the error: one bad client never fails the others.
    """

    def __init__(self, predict_proba: Any, executor: ThreadPoolExecutor, max_texts: int = 256) -> None:
        self.predict_proba, self.executor, self.max_texts = predict_proba, executor, max_texts
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None

    async def __call__(self, texts: list[str]) -> Any:
        if self.task is None:
            self.queue = asyncio.Queue()
            self.task = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.queue.get()]
            size = len(items[0][0])
            while not self.queue.empty() and size < self.max_texts:
                items.append(self.queue.get_nowait())
                size += len(items[-1][0])
            texts = [text for batch, _ in items for text in batch]
            try:
                probabilities = await loop.run_in_executor(self.executor, self.predict_proba, texts)
            except Exception as error:
                if len(items) == 1:
                    _settle(items[0][1], error=error)
                    continue
                for batch, future in items:  # alone, each request gets its own result or its own error
                    try:
                        _settle(future, await loop.run_in_executor(self.executor, self.predict_proba, batch))
                    except Exception as alone:  # this request's own failure, reported to it alone
                        _settle(future, error=alone)
                continue
            start = 0
            for batch, future in items:
                _settle(future, probabilities[start : start + len(batch)])
                start += len(batch)

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()


def _settle(future: asyncio.Future, result: Any = None, *, error: BaseException | None = None) -> None:
    """Hand a waiting request its rows or its error, unless it has gone (a closed connection)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def first_invalid_text(texts: list[str]) -> tuple[int, int] | None:
    """(item, character) of the first lone surrogate in `texts` (text that is no valid Unicode and
    cannot be encoded as UTF-8), or None."""
    for item, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            return item, error.start
    return None


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN/inf (not valid JSON) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def metadata(model: Predictor, runtime: str, limits: Limits) -> dict[str, Any]:
    """What GET /metadata returns: labels, architecture, metrics, versions, limits."""
    versions = {"textclf": __version__, "python": sys.version.split()[0]}
    for name in ("torch", "onnxruntime", "tokenizers", "numpy", "sklearn"):
        if name in sys.modules:
            versions[name] = getattr(sys.modules[name], "__version__", "?")
    training = getattr(model, "training", {}) or {}
    return _finite({
        "labels": list(model.labels), "architecture": model.config.get("architecture"),
        "max_length": model.config.get("max_length"), "runtime": runtime,
        "metrics": training.get("metrics", {}), "trained_with": model.config.get("versions", {}),
        "versions": versions, "limits": asdict(limits),
    })


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_: Request, error: ServiceError) -> JSONResponse:
        return error_response(error.status, error.kind, error.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {"type": "", "loc": (), "msg": "invalid request"}
        if first["type"] == "json_invalid":
            return error_response(400, "invalid_json", "request body is not valid JSON; expected "
                                  '{"texts": ["a text", ...]}.')
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return error_response(422, "invalid_request", f"{where}: {first['msg'].lower()}; expected "
                              '{"texts": ["a text", ...]}.')

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> JSONResponse:
        return error_response(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(TextClfError)
    async def _refused(_: Request, error: TextClfError) -> JSONResponse:
        # textclf's own errors about the request's texts: one line, safe to show
        return error_response(422, "invalid_request", str(error))

    @app.exception_handler(Exception)
    async def _internal(request: Request, error: Exception) -> JSONResponse:
        LOG.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(500, "internal_error", "prediction failed on the server; the error is in the server's "
                              "log. Retry, or report it with the request.")


def create_app(model: Predictor | str | Path, *, runtime: str = "torch", limits: Limits | None = None,
               threads: int | None = None) -> FastAPI:
    """The FastAPI app serving `model`: a loaded Predictor, or a model folder loaded with `runtime`
    ('torch' or 'onnx') and `threads` inference threads."""

    limits = limits or Limits()
    for name, value in asdict(limits).items():
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"serve: {name} is {value!r}; expected a positive integer.")
    source = str(model) if isinstance(model, str | Path) else "a model loaded in Python"
    if isinstance(model, str | Path):
        model = load_predictor(model, runtime=runtime, threads=threads)
    info = metadata(model, runtime, limits)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textclf-inference")
    batcher = MicroBatcher(model.predict_proba, executor, max_texts=max(256, limits.max_batch))

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        # uvicorn's own logger is set up by the time the app starts: the line shows with its others
        logging.getLogger("uvicorn.error").info(
            "textclf serving %s: a %s model, labels %s, runtime %s, process %d", source, info["architecture"],
            ", ".join(info["labels"]), runtime, os.getpid())
        yield
        batcher.close()
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="textclf", version=__version__, lifespan=lifespan,
                  description=f"Text classification with a {info['architecture']} model: {', '.join(info['labels'])}.")
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    _install_error_handlers(app)
    labels = list(model.labels)
    # a multi-label model answers label sets (any object with predict_proba and labels serves)
    thresholds = getattr(model, "thresholds", None) if getattr(model, "multi_label", False) else None

    @app.post("/predict", response_model=PredictResponse)
    async def predict(request: PredictRequest) -> JSONResponse:
        texts = request.texts
        check_batch(texts)
        probabilities = await batcher(texts)
        # A Response skips FastAPI's re-validation of our own output; the schema stays in the docs.
        decimals = None if request.precision == "full" else DECIMALS
        return JSONResponse({"predictions": prediction_records(labels, probabilities, top_k=request.top_k,
                                                               decimals=decimals, thresholds=thresholds)})

    def check_batch(texts: list[str]) -> None:
        if not texts:
            raise ServiceError(422, "empty_batch", 'texts is empty; expected {"texts": ["a text", ...]}.')
        if len(texts) > limits.max_batch:
            raise ServiceError(413, "batch_too_large", f"got {len(texts):,} texts; at most {limits.max_batch:,} "
                               "per request. Split the batch.")
        invalid = first_invalid_text(texts)
        if invalid is not None:
            item, character = invalid
            raise ServiceError(422, "invalid_text", f"texts.{item} has a lone surrogate at character {character} "
                               "(not valid Unicode); expected text that encodes as UTF-8. Fix or drop that text.")
        long = next((i for i, t in enumerate(texts) if len(t) > limits.max_text_chars), None)
        if long is not None:
            raise ServiceError(422, "text_too_long", f"texts.{long} has {len(texts[long]):,} characters; at most "
                               f"{limits.max_text_chars:,}. Shorten it.")

    @app.post("/explain")
    async def explain(request: ExplainRequest) -> JSONResponse:
        """Each word's contribution to a label (textclf.explain), off the event loop like predictions."""
        check_batch(request.texts)
        loop = asyncio.get_running_loop()
        explanations = await loop.run_in_executor(
            executor, lambda: model.explain(request.texts, label=request.label, method=request.method))
        return JSONResponse({"explanations": [e.to_json() for e in explanations]})

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    async def get_metadata() -> dict[str, Any]:
        return info

    return app


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's reach. A server process keeps
    what it loaded at start (PyTorch's modules, the model) until it exits; left in the collector,
    each full collection walks all of it and stalls every request in flight (about 200 ms with
    PyTorch imported, which was the p99 latency under load)."""
    gc.collect()
    gc.freeze()


def app_from_environment() -> FastAPI:
    """App factory for uvicorn workers: settings come from the TEXTCLF_SERVE environment variable."""
    settings = json.loads(os.environ[ENVIRONMENT_KEY])
    app = create_app(settings["model"], runtime=settings["runtime"], limits=Limits(**settings["limits"]),
                     threads=settings["threads"])
    freeze_heap()
    return app


def serve(model_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          runtime: str = "torch", limits: Limits | None = None, threads: int | None = None,
          access_log: bool = True) -> None:
    """Run the service with uvicorn. Threads default to the cores divided among the workers. The
    per-request access log is on; a busy service may turn it off (each line costs about as much as
    a one-text prediction)."""
    import uvicorn  # the server itself: only when serving, not for create_app in tests or other servers

    if workers < 1:
        raise ConfigError(f"--workers {workers}: expected at least 1.")
    limits = limits or Limits()
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    if workers == 1:
        app = create_app(model_dir, runtime=runtime, limits=limits, threads=threads)
        freeze_heap()
        uvicorn.run(app, host=host, port=port, access_log=access_log)
        return
    create_app(model_dir, runtime=runtime, limits=limits, threads=threads)  # fail here, once, on a bad folder
    os.environ[ENVIRONMENT_KEY] = json.dumps({"model": str(model_dir), "runtime": runtime, "limits": asdict(limits),
                                              "threads": threads})
    uvicorn.run("textclf.serving:app_from_environment", factory=True, host=host, port=port, workers=workers,
                access_log=access_log)
