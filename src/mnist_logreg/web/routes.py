"""The routes: the drawing page, ``POST /api/predict``, ``POST /api/read``, health and model information,
and with ``serve --corrections``, ``POST /api/corrections`` and ``POST /api/tune``.

Each route finds the worker's ``ModelService`` in ``request.app.state.service``.
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..infer.number import NotADigitModel, check_reads_digits
from .bodies import (
    ClientError,
    image_from_json,
    images_from_multipart,
    labelled_image,
    media_type,
    read_limited_body,
)
from .corrections import Corrections
from .schemas import (
    ERRORS,
    ErrorAnswer,
    FileError,
    FileNumberReading,
    FilePrediction,
    Health,
    LabelledImageJSON,
    LabelledImageUpload,
    ModelAnswer,
    NumberReading,
    Prediction,
    StoredCorrection,
    TuneStarted,
    request_body,
)
from .service import ModelService

router = APIRouter()


def error_answers(descriptions: dict[int, str]) -> dict:
    """A route's error answers for its OpenAPI schema: each status, in the API's one error shape, and what it means."""
    return {status: {"model": ErrorAnswer, "description": text} for status, text in descriptions.items()}


CORRECTIONS_OFF = {404: "corrections are off: serve with --corrections DIR"}


def service_of(request: Request) -> ModelService:
    return request.app.state.service


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    return HTMLResponse(service_of(request).page)


@router.get("/api/health", response_model=Health)
async def health() -> dict:
    return {"status": "ok"}


@router.get("/api/model", response_model=ModelAnswer)
async def model_info(request: Request) -> dict:
    """The served run's model.json and its test metrics; with ``--corrections``, how many corrections
    are kept, how many the served model learnt, and whether a tune is running."""
    service = service_of(request)
    served = service.served
    metrics = served.metrics
    test = None if metrics is None else {k: getattr(metrics, k) for k in ("test_acc", "test_loss", "val_acc")}
    corrections = None if service.corrections is None else service.corrections.status(served.learnt)
    return {"run": served.run_dir.name, "model": served.info.to_json(), "metrics": test, "corrections": corrections}


async def answer_upload(request: Request, answer):
    """Read and check the body (multipart or JSON), then answer each image off the event loop."""
    service = service_of(request)
    body = await read_limited_body(request, service.limits)
    content_type = media_type(request)
    if content_type == "multipart/form-data":
        files = await images_from_multipart(request, body, service.limits)
    elif content_type == "application/json":
        files = [("image", image_from_json(body))]
    else:
        raise ClientError(
            415,
            "send multipart/form-data with a 'file' field, or application/json with an 'image' field holding base64",
        )
    if len(files) > 1:
        return await service.off_the_loop(service.each_file, answer, files)
    return await service.off_the_loop(answer, files[0][1])


@router.post(
    "/api/predict",
    response_model=Prediction | list[FilePrediction | FileError],
    response_model_exclude_unset=True,  # no "evidence": null unless it was asked for; a rejected label stays null
    responses=error_answers(ERRORS),
    openapi_extra={"requestBody": request_body()},
)
async def predict(request: Request, explain: bool = False) -> dict:
    """Classify an image: a multipart upload (field ``file``) or JSON ``{"image": base64}``.

    Answers ``label``, ``class``, ``probability``, ``top_k``, ``probabilities`` and
    ``preprocessed`` (the 28×28 image the model saw, as a PNG data URL). Several ``file``
    fields answer a list, one entry per file in order, with ``filename`` and either the
    prediction or an ``error``. With ``explain=1``, each prediction also carries ``evidence``:
    what each pixel added to the predicted and the runner-up class, as PNG maps.
    """
    return await answer_upload(request, functools.partial(service_of(request).predict, explain=explain))


@router.post(
    "/api/read",
    response_model=NumberReading | list[FileNumberReading | FileError],
    response_model_exclude_unset=True,  # no "evidence": null unless it was asked for; a rejected label stays null
    responses=error_answers({**ERRORS, 409: "the run's model does not read digits (Fashion-MNIST)"}),
    openapi_extra={"requestBody": request_body()},
)
async def read(request: Request, explain: bool = False) -> dict | list:
    """Read the whole number written in an image: the same bodies as ``/api/predict``.

    Answers ``text`` (the digits left to right), ``probability`` (their product) and
    ``digits``, each with ``label``, ``probability``, ``top_k`` and ``box`` [x, y, w, h].
    With ``explain=1``, each digit also carries its ``evidence``, as in ``/api/predict``.
    """
    service = service_of(request)
    try:
        check_reads_digits(service.served.info)
    except NotADigitModel as error:
        raise ClientError(409, str(error)) from None
    return await answer_upload(request, functools.partial(service.read, explain=explain))


def corrections_of(request: Request) -> Corrections:
    corrections = service_of(request).corrections
    if corrections is None:
        raise ClientError(404, "corrections are off: start the server with 'mnist-logreg serve RUN --corrections DIR'")
    return corrections


@router.post(
    "/api/corrections",
    status_code=201,
    response_model=StoredCorrection,
    responses=error_answers(
        {
            **ERRORS,
            **CORRECTIONS_OFF,
            409: "the corrections folder holds the most it keeps",
            422: "a label that is not one of the run's classes, or no readable image",
        }
    ),
    openapi_extra={"requestBody": request_body(LabelledImageUpload, LabelledImageJSON)},
)
async def correct(request: Request) -> dict:
    """Keep an image and the class it shows (``label``), to learn from at the next ``POST /api/tune``:
    a multipart upload (fields ``file`` and ``label``) or JSON ``{"image": base64, "label": ...}``.
    It is stored under a name the server makes, in the corrections folder's ``<label>/``."""
    corrections = corrections_of(request)
    service = service_of(request)
    content, label = await labelled_image(request, service.limits)
    return await service.off_the_loop(corrections.add, content, label)


@router.post(
    "/api/tune",
    status_code=202,
    response_model=TuneStarted,
    responses=error_answers(
        {
            **CORRECTIONS_OFF,
            409: "a tune is already running, or there is no correction yet",
            500: ERRORS[500],
        }
    ),
)
async def tune(request: Request) -> dict:
    """Tune the served run on all corrections so far, in the background: the model is swapped when the
    tune ends, and ``GET /api/model`` says so (``corrections.tuning``, ``corrections.learnt``)."""
    return corrections_of(request).start_tune()
