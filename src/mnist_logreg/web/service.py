"""The model a server worker serves, and its queue: predictions and readings, off the event loop.

Every image goes through ``classify.predict_image_file`` or ``number.read_image_file``, the paths
the CLI takes. The weights are loaded once, when the worker starts, and once more for each tuned
run swapped in (``serve --corrections``).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import anyio

from ..config import TOP_K, Limits
from ..data.catalog import DEFAULT_DATA_DIR
from ..errors import RunError
from ..infer.batch import result_or_error
from ..infer.classify import predict_image_file, save_pixels
from ..infer.explain import evidence, evidence_pngs, panel_captions
from ..infer.number import read_image_file
from ..model.linear import LinearWeights, load_weights
from ..model.run_folder import Metrics, RunInfo, read_metrics, real_run_dir
from .bodies import ClientError, image_errors_answered
from .corrections import Corrections


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


@dataclass(frozen=True)
class Served:
    """The model a worker answers from. A tune swaps in a whole new one, so that each request,
    which takes it once, answers from the old model or the new, never a mix of the two."""

    run_dir: Path
    weights: LinearWeights  # numpy: a worker needs no torch to predict
    info: RunInfo
    metrics: Metrics | None

    @classmethod
    def load(cls, run_dir: Path) -> Served:
        weights, info = load_weights(run_dir)
        try:
            metrics = read_metrics(run_dir)
        except RunError:
            metrics = None
        return cls(run_dir, weights, info, metrics)

    @property
    def learnt(self) -> int:
        """The corrections (a writer's images) this model was tuned on; 0 for a run as trained."""
        return int(((self.info.tuned_from or {}).get("writer") or {}).get("train", 0))


class ModelService:
    """A run's model as one worker serves it (raises RunError if the run holds no usable model), and
    with ``corrections`` (a folder), the corrections it learns from (``corrections.py``)."""

    def __init__(
        self,
        run_dir: Path | str,
        limits: Limits,
        corrections: Path | str | None = None,
        data_dir: Path | str = DEFAULT_DATA_DIR,
    ) -> None:
        run_dir = real_run_dir(run_dir)  # runs/latest as it is now: the link may move, the loaded model does not
        self.limits = limits
        self.served = Served.load(run_dir)
        self.corrections = None
        if corrections is not None:
            self.corrections = Corrections(corrections, run_dir, self.served.info, limits, self.swap, data_dir=data_dir)
            latest = self.corrections.latest_tuned()
            if latest is not None:
                self.served = Served.load(latest)
        self.page = resources.files(__package__).joinpath("static/index.html").read_text(encoding="utf-8")
        # Predictions are CPU work under the GIL: one at a time per worker process, in arrival
        # order, in a thread off the event loop. More at once would only share the same core, slower.
        self.predicting = anyio.CapacityLimiter(1)
        self.queued = 0  # predictions waiting for the limiter or running

    def swap(self, run_dir: Path) -> None:
        """Serve the run at ``run_dir`` from now on (a tuned run, whole on disk)."""
        self.served = Served.load(run_dir)

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

    def evidence_of(self, pixels, served: Served) -> dict:
        found = evidence(served.weights, pixels)
        pngs = {name: data_url(png) for name, png in evidence_pngs(found).items()}
        captions = panel_captions(found, list(served.info.classes))
        return {
            "predicted": found["predicted"],
            "runner_up": found["runner_up"],
            "limit": found["limit"],
            **pngs,
            "captions": captions,
        }

    def predict(self, content: bytes, explain: bool = False) -> dict:
        served = self.served  # once: a swap midway must not mix two models in one answer
        with image_errors_answered():
            result = predict_image_file(content, served.weights, served.info, top_k=TOP_K)
        pixels = result.pop("pixels")
        buffer = io.BytesIO()
        save_pixels(pixels, buffer)
        result["preprocessed"] = data_url(buffer.getvalue())
        if explain:
            result["evidence"] = self.evidence_of(pixels, served)
        return result

    def read(self, content: bytes, explain: bool = False) -> dict:
        served = self.served
        with image_errors_answered():
            reading = read_image_file(content, served.weights, served.info, top_k=TOP_K, with_pixels=explain)
        for digit in reading["digits"] if explain else ():
            digit["evidence"] = self.evidence_of(digit.pop("pixels"), served)
        return reading

    @staticmethod
    def each_file(answer, files: list[tuple[str, bytes]]) -> list[dict]:
        """One answer per file, in order; a bad file gets its error and the others carry on."""
        return [
            result_or_error({"filename": filename}, lambda content=content: answer(content), (ClientError,))
            for filename, content in files
        ]
