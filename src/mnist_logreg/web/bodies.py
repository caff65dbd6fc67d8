"""Reading a request's body: its size bounded, then its images from multipart or JSON.

What a client sends wrong ends in a ``ClientError``: a 4xx with a JSON ``{"error": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ..config import Limits
from ..images.preprocess import ImageError, ImageTooLarge


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


def media_type(request: Request) -> str:
    """The request's Content-Type without its parameters: ``multipart/form-data``, ``application/json``, ..."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_limited_body(request: Request, limits: Limits) -> bytes:
    """The body, or a 413 once it passes ``limits.upload_bytes`` (counted as it arrives, chunked or not).

    An oversized body is read to its end (up to ``limits.drain_bytes``) and discarded before the
    answer: a client still sending when the server closes sees a reset connection, not the 413.
    """
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limits.upload_bytes:
            chunks.append(chunk)
        elif size > limits.drain_bytes:
            break
    if size > limits.upload_bytes:
        raise ClientError(413, f"request body over {limits.upload_bytes // (1024 * 1024)} MB")
    return b"".join(chunks)


async def images_from_multipart(request: Request, body: bytes, limits: Limits) -> list[tuple[str, bytes]]:
    """(filename, content) of each 'file' field of a multipart body already read (and size-checked)."""
    files, _ = await multipart_fields(request, body, limits)
    return files


async def multipart_fields(request: Request, body: bytes, limits: Limits) -> tuple[list[tuple[str, bytes]], dict]:
    """(filename, content) of each 'file' field of a multipart body already read, and its text fields."""

    async def replay() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        async with Request(request.scope, replay).form(max_files=limits.files, max_fields=limits.files + 10) as form:
            uploads = form.getlist("file")
            if not uploads:
                raise ClientError(400, "multipart body has no 'file' field")
            if not all(isinstance(upload, UploadFile) for upload in uploads):
                raise ClientError(400, "the 'file' field must be a file upload, not text")
            files = [(upload.filename or f"file {n}", await upload.read()) for n, upload in enumerate(uploads, 1)]
            return files, {name: value for name, value in form.multi_items() if isinstance(value, str)}
    except HTTPException as error:  # Starlette's answer to a malformed multipart body, or too many files
        raise ClientError(400, f"malformed multipart body: {error.detail}") from None


async def labelled_image(request: Request, limits: Limits) -> tuple[bytes, str]:
    """The image and its ``label`` of a correction: one 'file' and a 'label' field of a multipart
    body, or JSON ``{"image": base64, "label": ...}``."""
    body = await read_limited_body(request, limits)
    content_type = media_type(request)
    if content_type == "multipart/form-data":
        files, text = await multipart_fields(request, body, limits)
        if len(files) != 1:
            raise ClientError(400, f"a correction is one image; got {len(files)} 'file' fields")
        content, label = files[0][1], text.get("label")
    elif content_type == "application/json":
        payload = json_object(body)
        content, label = image_of(payload), payload.get("label")
    else:
        raise ClientError(415, "send multipart/form-data with 'file' and 'label' fields, or application/json")
    if not isinstance(label, str):
        raise ClientError(400, "a correction needs a 'label': the class's name, as a string")
    return content, label


def json_object(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ClientError(400, "malformed JSON") from None
    if not isinstance(payload, dict) or "image" not in payload:
        raise ClientError(400, "JSON body must be an object with an 'image' field")
    return payload


def image_from_json(body: bytes) -> bytes:
    return image_of(json_object(body))


def image_of(payload: dict) -> bytes:
    """The image bytes of a JSON body's 'image': base64, or a data URL as a canvas's toDataURL gives."""
    image = payload["image"]
    if not isinstance(image, str):
        raise ClientError(400, "'image' must be a base64 string")
    if image.startswith("data:"):
        image = image.partition(",")[2]  # a data URL, as a canvas's toDataURL gives
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError):
        raise ClientError(400, "'image' is not valid base64") from None
