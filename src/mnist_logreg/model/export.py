"""Shipping a run's model where PyTorch is not installed: ONNX, through PyTorch's own exporter.

The exported graph is the whole model: the run's input transform (deskewing), its feature map
(pixel pairs), the linear layer and the calibrated softmax (its logits divided by the run's
temperature). Input ``images`` (batch, 1, 28, 28) float32 in [0, 1], light ink on black, placed
the MNIST way (``preprocess_array`` does that for a photo); output ``probabilities`` (batch,
outputs): one per class, then "not a digit" for a run with a reject class, whose threshold
model.json gives. Both have a dynamic batch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..images.inputs import SIDE
from .run_folder import load_run

OPSET = 17


class _Probabilities(torch.nn.Module):
    """What is exported: the model's own forward (input transform, features, linear layer), then the
    calibrated softmax."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(images) / self.model.temperature, dim=1)


def export_onnx(run_dir: Path | str, path: Path | str | None = None) -> Path:
    """Write the run's model as ONNX (default: RUN_DIR/model.onnx) and return its path."""
    model, _ = load_run(run_dir)
    path = Path(path) if path is not None else Path(run_dir) / "model.onnx"
    example = torch.zeros(1, 1, SIDE, SIDE)
    with warnings.catch_warnings():
        # The TorchScript-based exporter: the torch.export-based one needs onnxscript, and this
        # graph (gathers, slices, products, one matrix product) is what the older one was made for.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)  # notes on constant folding of the slices: nothing to act on
        torch.onnx.export(
            _Probabilities(model).eval(),
            (example,),
            str(path),
            input_names=["images"],
            output_names=["probabilities"],
            dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path
