"""The routes: the drawing page, ``POST /api/predict``, ``POST /api/read``, health and model information.

Each route finds the worker's ``ModelService`` in ``request.app.state.service``.
"""

from __future__ import annotations

import functools

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..infer.number import NotADigitModel, check_reads_digits
from .bodies import ClientError, image_from_json, images_from_multipart, read_limited_body
from .schemas import (
    ERRORS,
    ErrorAnswer,
    FileError,
    FileNumberReading,
    FilePrediction,
    Health,
    ModelAnswer,
    NumberReading,
    Prediction,
    request_body,
)
from .service import ModelService

router = APIRouter()
ERROR_ANSWERS = {status: {"model": ErrorAnswer, "description": text} for status, text in ERRORS.items()}


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
    """The run's model.json and its test metrics."""
    service = service_of(request)
    metrics = service.metrics
    test = None if metrics is None else {k: getattr(metrics, k) for k in ("test_acc", "test_loss", "val_acc")}
    return {"run": service.run_dir.name, "model": service.info.to_json(), "metrics": test}


async def answer_upload(request: Request, answer):
    """Read and check the body (multipart or JSON), then answer each image off the event loop."""
    service = service_of(request)
    body = await read_limited_body(request, service.limits)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
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
    responses=ERROR_ANSWERS,
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
    responses={
        **ERROR_ANSWERS,
        409: {"model": ErrorAnswer, "description": "the run's model does not read digits (Fashion-MNIST)"},
    },
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
        check_reads_digits(service.info)
    except NotADigitModel as error:
        raise ClientError(409, str(error)) from None
    return await answer_upload(request, functools.partial(service.read, explain=explain))
