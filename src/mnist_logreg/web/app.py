"""FastAPI app: the drawing page, ``POST /api/predict``, health and model information.

Every image goes through ``predict.predict_image_file``, the path the CLI takes. The model is
loaded once, when the app is made; predictions run in a worker thread, off the event loop.
What a client sends ends in a 4xx JSON error at worst; an error of our own is logged and
answered 500, never hidden behind a 4xx.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..predict import predict_image_file, save_pixels
from ..preprocess import ImageError, ImageTooLarge
from ..runs import RunError, load_run, package_version, read_metrics

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # a phone photo fits; anything larger is refused with 413
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # past this, stop reading an oversized body and just answer

log = logging.getLogger("mnist_logreg.web")


# ---------------------------------------------------------------------------------------------
# What the API takes and answers: FastAPI writes the OpenAPI schema from these.
# ---------------------------------------------------------------------------------------------


class ImageUpload(BaseModel):
    """multipart/form-data: one image file."""

    file: bytes = Field(json_schema_extra={"format": "binary"}, description="a PNG, JPEG, GIF, BMP, TIFF or WebP")


class ImageJSON(BaseModel):
    """application/json: one image as base64, as a canvas's toDataURL gives it."""

    image: str = Field(description="base64 PNG or JPEG, optionally a data: URL")


class ClassScore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    label: int
    class_name: str = Field(alias="class")
    probability: float


class Prediction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    label: int
    class_name: str = Field(alias="class")
    probability: float
    top_k: list[ClassScore]
    probabilities: list[float]
    preprocessed: str = Field(description="the 28×28 image the model saw, as a PNG data URL")


class ErrorAnswer(BaseModel):
    error: str


class Health(BaseModel):
    status: str


class ModelAnswer(BaseModel):
    run: str
    model: dict = Field(description="the run's model.json")
    metrics: dict | None = Field(description="test_acc, test_loss, val_acc; null if the run has no metrics.json")


ERRORS = {
    400: "malformed JSON, base64 or multipart body, or no image field",
    413: f"body over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, or an image over the megapixel limit",
    415: "neither multipart/form-data nor application/json",
    422: "not a readable image, or no ink in it",
    500: "an error in the server itself (logged)",
}


def _request_body() -> dict:
    """The OpenAPI request body of /api/predict: one route, two content types, from the models above."""
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": ImageUpload.model_json_schema()},
            "application/json": {"schema": ImageJSON.model_json_schema()},
        },
    }


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
        metrics = read_metrics(run_dir)
    except RunError:
        metrics = None
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")

    app = FastAPI(
        title="mnist-logreg demo",
        version=package_version(),
        description=f"Logistic regression on {info.dataset}: draw or upload an image, get the class.",
    )

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {error.errors()}"}, status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("error answering %s %s", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": "internal server error (logged)"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/health", response_model=Health)
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/api/model", response_model=ModelAnswer)
    async def model_info() -> dict:
        """The run's model.json and its test metrics."""
        test = None if metrics is None else {k: getattr(metrics, k) for k in ("test_acc", "test_loss", "val_acc")}
        return {"run": run_dir.name, "model": info.to_json(), "metrics": test}

    def predict_bytes(content: bytes) -> dict:
        try:
            result = predict_image_file(content, model, info, top_k=3)
        except ImageTooLarge as error:
            raise ClientError(413, f"image: {error}") from None
        except ImageError as error:
            raise ClientError(422, f"image: {error}") from None
        buffer = io.BytesIO()
        save_pixels(result.pop("pixels"), buffer)
        result["preprocessed"] = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        return result

    @app.post(
        "/api/predict",
        response_model=Prediction,
        responses={status: {"model": ErrorAnswer, "description": text} for status, text in ERRORS.items()},
        openapi_extra={"requestBody": _request_body()},
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
    """The 'file' field of a multipart body already read (and size-checked) by read_limited_body."""

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=1, max_fields=10) as form:
            upload = form.get("file")
            if upload is None:
                raise ClientError(400, "multipart body has no 'file' field")
            if not isinstance(upload, UploadFile):
                raise ClientError(400, "the 'file' field must be a file upload, not text")
            return await upload.read()
    except HTTPException as error:  # Starlette's answer to a malformed multipart body
        raise ClientError(400, f"malformed multipart body: {error.detail}") from None


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
