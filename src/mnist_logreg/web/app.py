"""FastAPI app: the drawing page, ``POST /api/predict``, health and model information.

Every image goes through ``predict.predict_image_file``, the path the CLI takes. The model is
loaded once, when the app is made; predictions run in a worker thread, off the event loop.
What a client sends ends in a 4xx JSON error at worst; an error of our own is logged and
answered 500, never hidden behind a 4xx.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import io
import json
import logging
import os
from importlib import resources
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from ..config import TOP_K, Limits
from ..explain import evidence, evidence_pngs
from ..predict import NotADigitModel, check_reads_digits, predict_image_file, read_image_file, save_pixels
from ..preprocess import ImageError, ImageTooLarge
from ..runs import RunError, load_weights, package_version, read_metrics

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # a phone photo fits; anything larger is refused with 413
MAX_FILES = 64  # files in one batch request
SERVE_VARIABLE = "MNIST_LOGREG_SERVE"  # how `serve --workers N` tells each worker process its run and limits


DRAIN_LIMIT_BYTES = 64 * 1024 * 1024  # past this, stop reading an oversized body and just answer

DOCS_ASSETS = "/docs-assets"  # Swagger UI's script, style and icon, served from the installed package

log = logging.getLogger("mnist_logreg.web")
# The multipart parser logs a warning for each malformed body it meets; the client gets a 400
# saying so, and the server's console stays quiet.
logging.getLogger("python_multipart").setLevel(logging.ERROR)


# ---------------------------------------------------------------------------------------------
# What the API takes and answers: FastAPI writes the OpenAPI schema from these.
# ---------------------------------------------------------------------------------------------


class ImageUpload(BaseModel):
    """multipart/form-data: one image file, or several ``file`` fields for a batch."""

    file: list[bytes] = Field(
        json_schema_extra={"items": {"type": "string", "format": "binary"}},
        description=f"PNG, JPEG, GIF, BMP, TIFF or WebP files, 1 to {MAX_FILES}; with more than one, the answer is a list",
    )


class ImageJSON(BaseModel):
    """application/json: one image as base64, as a canvas's toDataURL gives it."""

    image: str = Field(
        description="base64 PNG or JPEG, optionally a data: URL",
        pattern=r"^(data:[^,]*,)?[A-Za-z0-9+/]*={0,2}$",  # what image_from_json accepts
    )


class ClassScore(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    label: int
    class_name: str = Field(alias="class")
    probability: float


class Prediction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    accepted: bool = Field(description="false: the model takes the image for no digit (a letter, a scribble, a blank)")
    label: int | None = Field(description="the class's index; null when the image is not accepted")
    class_name: str = Field(alias="class", description='the class, or "not a digit" when the image is not accepted')
    probability: float = Field(description="of the class; when not accepted, 1 minus that of the likeliest digit")
    top_k: list[ClassScore] = Field(description="the likeliest classes, whether or not the image is accepted")
    probabilities: list[float] = Field(description='one per class, then one for "not a digit" if the model has it')
    preprocessed: str = Field(description="the 28×28 image the model saw, as a PNG data URL")
    evidence: Evidence | None = Field(default=None, description="with ?explain=1 only")


class Evidence(BaseModel):
    """Why: each pixel's exact contribution (w · x) to the two likeliest outputs, as PNG data URLs."""

    predicted: int = Field(description='the likeliest output: a class index, or the last one for "not a digit"')
    runner_up: int
    limit: float = Field(description="the |contribution| at the colour scale's ends (red +, blue -)")
    input: str = Field(description="what the model saw")
    for_predicted: str
    for_runner_up: str
    difference: str = Field(description="for_predicted minus for_runner_up: why this class and not that")


class ErrorAnswer(BaseModel):
    error: str


class FilePrediction(Prediction):
    """One file's answer in a batch (several ``file`` fields in one request)."""

    filename: str


class FileError(BaseModel):
    """One bad file in a batch: the others are still predicted."""

    filename: str
    error: str


class DigitReading(BaseModel):
    accepted: bool = Field(description="false: this part is not a digit, and is left out of the number")
    label: int | None = Field(description="the digit; null when the part is not accepted")
    probability: float
    top_k: list[ClassScore]
    box: list[int] = Field(description="[x, y, w, h] in the uploaded image's pixels")
    evidence: Evidence | None = Field(default=None, description="with ?explain=1 only")


class NumberReading(BaseModel):
    text: str = Field(description="the number: the accepted digits, left to right")
    probability: float = Field(description="the product of the accepted digits' probabilities (0 if none is)")
    digits: list[DigitReading]


class FileNumberReading(NumberReading):
    filename: str


class Health(BaseModel):
    status: str


class ModelAnswer(BaseModel):
    run: str
    model: dict = Field(description="the run's model.json")
    metrics: dict | None = Field(description="test_acc, test_loss, val_acc; null if the run has no metrics.json")


ERRORS = {
    400: "malformed JSON, base64 or multipart body, or no image field",
    413: f"body over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB, or an image over the megapixel limit",
    503: "busy (too many predictions queued) or a prediction over the time limit: retry after Retry-After",
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
    """A request the client must change or retry: answered with ``status`` and a JSON ``{"error": ...}``."""

    def __init__(self, status: int, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


@contextlib.contextmanager
def image_errors_answered():
    """A bad image is the client's: 413 for one over the pixel limit, 422 for any other."""
    try:
        yield
    except ImageTooLarge as error:
        raise ClientError(413, f"image: {error}") from None
    except ImageError as error:
        raise ClientError(422, f"image: {error}") from None


def create_app(run_dir: Path | str, limits: Limits = Limits()) -> FastAPI:
    """An app serving the model of ``run_dir`` (raises RunError if it holds no usable model)."""
    run_dir = Path(run_dir)
    model, info = load_weights(run_dir)  # numpy weights: a worker needs no torch
    try:
        metrics = read_metrics(run_dir)
    except RunError:
        metrics = None
    page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
    # Predictions are CPU work under the GIL: one at a time per worker process, in arrival order,
    # in a thread off the event loop. More at once would only share the same core, slower.
    predicting = anyio.CapacityLimiter(1)
    queued = 0  # predictions waiting for the limiter or running

    async def off_the_loop(function, *args):
        nonlocal queued
        if queued >= limits.queue:  # answer now: a client told to retry beats one left to time out
            raise ClientError(503, f"busy: {queued} predictions queued; retry shortly", {"Retry-After": "1"})
        queued += 1
        try:
            with anyio.fail_after(limits.timeout_s):
                return await anyio.to_thread.run_sync(function, *args, limiter=predicting, abandon_on_cancel=True)
        except TimeoutError:
            raise ClientError(
                503, f"the prediction took longer than {limits.timeout_s:g} s; retry shortly", {"Retry-After": "1"}
            ) from None
        finally:
            queued -= 1

    app = FastAPI(
        title="mnist-logreg demo",
        version=package_version(),
        description=f"Logistic regression on {info.dataset}: draw or upload an image, get the class.",
        docs_url=None,  # served below from the package's own copy of Swagger UI, not from a CDN
        redoc_url=None,
    )
    serve_docs_offline(app)
    if limits.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(limits.cors), allow_methods=["GET", "POST"])

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        return JSONResponse({"error": str(error)}, status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"invalid request: {validation_message(error)}"}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        """Starlette's own answers (404 no such route, 405 wrong method) in the API's one error shape."""
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

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

    def evidence_of(pixels) -> dict:
        found = evidence(model, pixels)
        pngs = {name: data_url(png) for name, png in evidence_pngs(found).items()}
        return {"predicted": found["predicted"], "runner_up": found["runner_up"], "limit": found["limit"], **pngs}

    def predict_bytes(content: bytes, explain: bool = False) -> dict:
        with image_errors_answered():
            result = predict_image_file(content, model, info, top_k=TOP_K)
        pixels = result.pop("pixels")
        buffer = io.BytesIO()
        save_pixels(pixels, buffer)
        result["preprocessed"] = data_url(buffer.getvalue())
        if explain:
            result["evidence"] = evidence_of(pixels)
        return result

    def read_bytes(content: bytes, explain: bool = False) -> dict:
        with image_errors_answered():
            reading = read_image_file(content, model, info, top_k=TOP_K, with_pixels=explain)
        for digit in reading["digits"] if explain else ():
            digit["evidence"] = evidence_of(digit.pop("pixels"))
        return reading

    def each_file(answer, files: list[tuple[str, bytes]]) -> list[dict]:
        """One answer per file, in order; a bad file gets its error and the others carry on."""
        answers = []
        for filename, content in files:
            try:
                answers.append({"filename": filename, **answer(content)})
            except ClientError as error:
                answers.append({"filename": filename, "error": str(error)})
        return answers

    async def answer_upload(request: Request, answer):
        """Read and check the body (multipart or JSON), then answer each image off the event loop."""
        body = await read_limited_body(request)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            files = await images_from_multipart(request, body)
        elif content_type == "application/json":
            files = [("image", image_from_json(body))]
        else:
            raise ClientError(
                415,
                "send multipart/form-data with a 'file' field, or application/json "
                "with an 'image' field holding base64",
            )
        if len(files) > 1:
            return await off_the_loop(each_file, answer, files)
        return await off_the_loop(answer, files[0][1])

    @app.post(
        "/api/predict",
        response_model=Prediction | list[FilePrediction | FileError],
        response_model_exclude_unset=True,  # no "evidence": null unless it was asked for; a rejected label stays null
        responses={status: {"model": ErrorAnswer, "description": text} for status, text in ERRORS.items()},
        openapi_extra={"requestBody": _request_body()},
    )
    async def predict(request: Request, explain: bool = False) -> dict:
        """Classify an image: a multipart upload (field ``file``) or JSON ``{"image": base64}``.

        Answers ``label``, ``class``, ``probability``, ``top_k``, ``probabilities`` and
        ``preprocessed`` (the 28×28 image the model saw, as a PNG data URL). Several ``file``
        fields answer a list, one entry per file in order, with ``filename`` and either the
        prediction or an ``error``. With ``explain=1``, each prediction also carries ``evidence``:
        what each pixel added to the predicted and the runner-up class, as PNG maps.
        """
        return await answer_upload(request, functools.partial(predict_bytes, explain=explain))

    @app.post(
        "/api/read",
        response_model=NumberReading | list[FileNumberReading | FileError],
        response_model_exclude_unset=True,  # no "evidence": null unless it was asked for; a rejected label stays null
        responses={
            **{status: {"model": ErrorAnswer, "description": text} for status, text in ERRORS.items()},
            409: {"model": ErrorAnswer, "description": "the run's model does not read digits (Fashion-MNIST)"},
        },
        openapi_extra={"requestBody": _request_body()},
    )
    async def read(request: Request, explain: bool = False) -> dict | list:
        """Read the whole number written in an image: the same bodies as ``/api/predict``.

        Answers ``text`` (the digits left to right), ``probability`` (their product) and
        ``digits``, each with ``label``, ``probability``, ``top_k`` and ``box`` [x, y, w, h].
        With ``explain=1``, each digit also carries its ``evidence``, as in ``/api/predict``.
        """
        try:
            check_reads_digits(info)
        except NotADigitModel as error:
            raise ClientError(409, str(error)) from None
        return await answer_upload(request, functools.partial(read_bytes, explain=explain))

    return app


def serve_docs_offline(app: FastAPI) -> None:
    """/docs from the Swagger UI files that swagger-ui-bundle installs: the page renders with no network."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount(DOCS_ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


def validation_message(error: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one sentence: ``query parameter 'explain': Input should be ...``."""
    parts = []
    for problem in error.errors():
        where, *path = problem.get("loc", ())
        name = ".".join(map(str, path))
        parts.append(f"{where} parameter {name!r}: {problem.get('msg', 'invalid')}" if name else problem.get("msg", ""))
    return "; ".join(parts) or "invalid request"


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def app_from_environment() -> FastAPI:
    """The app factory each ``serve --workers N`` process calls: the run named in the environment.

    A worker predicts one image at a time, and the model is 7,850 numbers: one OpenCV thread
    each keeps N workers from fighting over the cores.
    """
    import cv2

    cv2.setNumThreads(1)
    settings = json.loads(os.environ[SERVE_VARIABLE])
    limits = Limits(settings["queue"], settings["timeout_s"], tuple(settings["cors"]))
    return create_app(settings["run_dir"], limits)


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


async def images_from_multipart(request: Request, body: bytes) -> list[tuple[str, bytes]]:
    """(filename, content) of each 'file' field of a multipart body already read (and size-checked)."""

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=MAX_FILES, max_fields=MAX_FILES + 10) as form:
            uploads = form.getlist("file")
            if not uploads:
                raise ClientError(400, "multipart body has no 'file' field")
            if not all(isinstance(upload, UploadFile) for upload in uploads):
                raise ClientError(400, "the 'file' field must be a file upload, not text")
            return [(upload.filename or f"file {n}", await upload.read()) for n, upload in enumerate(uploads, 1)]
    except HTTPException as error:  # Starlette's answer to a malformed multipart body, or too many files
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
