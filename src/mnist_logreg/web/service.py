"""The model a server worker serves, and its queue: predictions and readings, off the event loop.

Every image goes through ``classify.predict_image_file`` or ``number.read_image_file``, the paths
the CLI takes. The weights are loaded once, when the worker starts.
"""

from __future__ import annotations

import base64
import io
from importlib import resources
from pathlib import Path

import anyio

from ..config import TOP_K, Limits
from ..errors import RunError
from ..infer.batch import result_or_error
from ..infer.classify import predict_image_file, save_pixels
from ..infer.explain import evidence, evidence_pngs, panel_captions
from ..infer.number import read_image_file
from ..model.linear import load_weights
from ..model.run_folder import read_metrics, real_run_dir
from .bodies import ClientError, image_errors_answered


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


class ModelService:
    """A run's model as one worker serves it (raises RunError if the run holds no usable model)."""

    def __init__(self, run_dir: Path | str, limits: Limits) -> None:
        self.run_dir = real_run_dir(run_dir)  # runs/latest as it is now: the link may move, the loaded model does not
        self.limits = limits
        self.weights, self.info = load_weights(self.run_dir)  # numpy weights: a worker needs no torch
        try:
            self.metrics = read_metrics(self.run_dir)
        except RunError:
            self.metrics = None
        self.page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        # Predictions are CPU work under the GIL: one at a time per worker process, in arrival
        # order, in a thread off the event loop. More at once would only share the same core, slower.
        self.predicting = anyio.CapacityLimiter(1)
        self.queued = 0  # predictions waiting for the limiter or running

    async def off_the_loop(self, function, *args):
        """``function(*args)`` in the worker thread; 503 when the queue is full or it runs past the time limit."""
        if self.queued >= self.limits.queue:  # answer now: a client told to retry beats one left to time out
            raise ClientError(503, f"busy: {self.queued} predictions queued; retry shortly", {"Retry-After": "1"})
        self.queued += 1
        try:
            with anyio.fail_after(self.limits.timeout_s):
                return await anyio.to_thread.run_sync(function, *args, limiter=self.predicting, abandon_on_cancel=True)
        except TimeoutError:
            raise ClientError(
                503, f"the prediction took longer than {self.limits.timeout_s:g} s; retry shortly", {"Retry-After": "1"}
            ) from None
        finally:
            self.queued -= 1

    def evidence_of(self, pixels) -> dict:
        found = evidence(self.weights, pixels)
        pngs = {name: data_url(png) for name, png in evidence_pngs(found).items()}
        captions = panel_captions(found, list(self.info.classes))
        return {
            "predicted": found["predicted"],
            "runner_up": found["runner_up"],
            "limit": found["limit"],
            **pngs,
            "captions": captions,
        }

    def predict(self, content: bytes, explain: bool = False) -> dict:
        with image_errors_answered():
            result = predict_image_file(content, self.weights, self.info, top_k=TOP_K)
        pixels = result.pop("pixels")
        buffer = io.BytesIO()
        save_pixels(pixels, buffer)
        result["preprocessed"] = data_url(buffer.getvalue())
        if explain:
            result["evidence"] = self.evidence_of(pixels)
        return result

    def read(self, content: bytes, explain: bool = False) -> dict:
        with image_errors_answered():
            reading = read_image_file(content, self.weights, self.info, top_k=TOP_K, with_pixels=explain)
        for digit in reading["digits"] if explain else ():
            digit["evidence"] = self.evidence_of(digit.pop("pixels"))
        return reading

    @staticmethod
    def each_file(answer, files: list[tuple[str, bytes]]) -> list[dict]:
        """One answer per file, in order; a bad file gets its error and the others carry on."""
        return [
            result_or_error({"filename": filename}, lambda content=content: answer(content), (ClientError,))
            for filename, content in files
        ]
