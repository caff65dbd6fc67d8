"""FastAPI app: the drawing page, ``POST /api/predict``, health and model information.

Every image goes through ``predict.preprocess_image``, the same path as the CLI. The model is
loaded once, when the app is made; predictions run in a worker thread so that concurrent
requests do not wait on each other's image decoding. Whatever a client sends ends in a
4xx JSON error at worst, never a 5xx.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from ..predict import predict_image_file, save_pixels
from ..preprocess import ImageError, layout_for
from ..runs import METRICS_FILE, RunError, load_run, package_version, read_json

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # a phone photo fits; anything larger is refused with 413
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # past this, stop reading an oversized body and just answer


class ClientError(Exception):
    """A request the client must change: answered with ``status`` and a JSON ``{"error": ...}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def create_app(run_dir: Path | str) -> FastAPI:
    """An app serving the model of ``run_dir`` (raises RunError if it holds no usable model)."""
    run_dir = Path(run_dir)
    model, info = load_run(run_dir)
    try:
        metrics = read_json(run_dir / METRICS_FILE)
    except RunError:
        metrics = None
    _, mean, std = layout_for(info)
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    app = FastAPI(
        title="mnist-logreg demo",
        version=package_version(),
        description=f"Logistic regression on {info['dataset']}: draw or upload an image, get the class.",
    )

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/api/model")
    async def model_info() -> dict:
        """The run's model.json and its test metrics."""
        test = None if metrics is None else {k: metrics.get(k) for k in ("test_acc", "test_loss", "val_acc")}
        return {"run": run_dir.name, "model": info, "metrics": test}

    def predict_bytes(content: bytes) -> dict:
        try:
            result = predict_image_file(content, model, info, top_k=3)
        except ImageError as error:
            status = 413 if "megapixels" in str(error) else 422
            raise ClientError(status, f"image: {error}") from None
        except Exception as error:  # a decoder tripping over hostile bytes is still the client's input
            raise ClientError(422, f"image: could not be processed ({type(error).__name__})") from None
        buffer = io.BytesIO()
        save_pixels(result.pop("pixels"), buffer, mean, std)
        result["preprocessed"] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return result

    @app.post(
        "/api/predict",
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {"type": "string", "description": "base64 PNG or JPEG, optionally a data: URL"}
                            },
                        }
                    },
                }
            }
        },
    )
    async def predict(request: Request) -> dict:
        """Classify an image: a multipart upload (field ``file``) or JSON ``{"image": base64}``.

        Answers ``label``, ``class``, ``probability``, ``top_k``, ``probabilities`` and
        ``preprocessed`` (the 28×28 image the model saw, as a PNG data URL).
        """
        body = await read_limited_body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            content = await image_from_multipart(request, body)
        elif content_type == "application/json":
            content = image_from_json(body)
        else:
            raise ClientError(
                415,
                "send multipart/form-data with a 'file' field, or application/json "
                "with an 'image' field holding base64",
            )
        return await run_in_threadpool(predict_bytes, content)

    return app


async def read_limited_body(request: Request) -> bytes:
    """The body, or a 413 once it passes MAX_UPLOAD_BYTES (counted as it arrives, chunked or not).

    An oversized body is read to its end (up to DRAIN_LIMIT_BYTES) and discarded before the
    answer: a client still sending when the server closes sees a reset connection, not the 413.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_UPLOAD_BYTES:
            chunks.append(chunk)
        elif size > DRAIN_LIMIT_BYTES:
            break
    if size > MAX_UPLOAD_BYTES:
        raise ClientError(413, f"request body over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    return b"".join(chunks)


async def image_from_multipart(request: Request, body: bytes) -> bytes:
    async def stream():
        yield body

    try:
        form = await MultiPartParser(request.headers, stream()).parse()
    except MultiPartException as error:
        raise ClientError(400, f"malformed multipart body: {error.message}") from None
    upload = form.get("file")
    if upload is None:
        raise ClientError(400, "multipart body has no 'file' field")
    if not isinstance(upload, UploadFile):
        raise ClientError(400, "the 'file' field must be a file upload, not text")
    content = await upload.read()
    await form.close()
    return content


def image_from_json(body: bytes) -> bytes:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ClientError(400, "malformed JSON") from None
    if not isinstance(payload, dict) or "image" not in payload:
        raise ClientError(400, "JSON body must be an object with an 'image' field")
    image = payload["image"]
    if not isinstance(image, str):
        raise ClientError(400, "'image' must be a base64 string")
    if image.startswith("data:"):
        image = image.partition(",")[2]  # a data URL, as a canvas's toDataURL gives
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError(400, "'image' is not valid base64") from None
