"""The lesson's model: logistic regression as one ``nn.Linear(784, 10)``, or on wider fixed features."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import SettingError
from ..images.inputs import (
    INPUT_SIZE,
    SIDE,
    apply_input_transform,
    check_features,
    check_input_transform,
    feature_count,
    feature_map,
    tracing,
)

NUM_CLASSES = 10
# Wide features are computed and weighed this many images at a time. In training (loop.ClosedFormStep),
# a chunk's pixel-pair features (5 MB) stay in the cache between the two products (best of 64 to 512
# here); without gradients (validating, scoring, predicting), whole batches of them (21 MB for 512)
# left the allocator holding 270 MB more at the peak of a default train.
FEATURE_CHUNK = 128


def accuracy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Fraction of rows of ``outputs`` whose largest logit is at ``labels`` (the lesson's helper)."""
    _, preds = torch.max(outputs, dim=1)
    return torch.tensor(torch.sum(preds == labels).item() / len(preds))


def reject_class_weight(classes: int, reject_weight: float) -> torch.Tensor:
    """Each output's weight in the training loss: 1 for each of the ``classes``, ``reject_weight`` for
    the reject class after them (its outliers counting for more, as if an epoch held more of them)."""
    return torch.tensor([1.0] * classes + [float(reject_weight)])


def weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, class_weight: torch.Tensor | None
) -> torch.Tensor:
    """The mean cross-entropy of ``logits`` at ``labels``, each image's times its class's weight
    (``class_weight``; None: all 1)."""
    if class_weight is None:
        return F.cross_entropy(logits, labels)
    return (F.cross_entropy(logits, labels, reduction="none") * class_weight[labels]).mean()


class MNISTModel(nn.Module):
    """Logistic regression on flattened 28×28 images, with the lesson's training hooks.

    The methods are the lesson's, with one change: ``validation_step`` also returns the batch's
    size and correct count, so ``validation_epoch_end`` weighs batches by size and the accuracy
    is a count over the whole set rather than a mean of batch means (they differ when the last
    batch is short).

    With ``reject``, the layer has one more output after the ``num_classes``, "not a digit",
    trained on outliers; accuracy counts the likeliest of the classes, as for a model without it.
    """

    def __init__(
        self,
        input_size: int = INPUT_SIZE,
        num_classes: int = NUM_CLASSES,
        input_transform: str = "none",
        features: str = "pixels",
        reject: bool = False,
    ):
        super().__init__()
        self.input_size = input_size  # pixels per image
        self.num_classes = num_classes
        self.reject = reject  # one more output after the classes: "not a digit" (data/outliers.py)
        # Applied to every input before the linear layer, in this order (images/inputs.py): not weights,
        # but part of the model; model.json records both, and load_run sets them.
        self.input_transform = check_input_transform(input_transform)
        self.features = check_features(features)
        in_features = input_size if features == "pixels" else feature_count(features)  # pairs: of 28×28 images
        self.linear = nn.Linear(in_features, num_classes + reject)
        # Set from model.json by load_run, as the input transform is: probabilities are
        # softmax(logits / temperature), and the threshold is the run's reject rule (model/calibration.py).
        self.temperature = 1.0
        self.threshold: float | None = None
        # Training only: each class's weight in the training loss (None: all 1). A run with a reject
        # class weighs its outliers more, as if each epoch held more of them (train/run.py).
        self.class_weight: torch.Tensor | None = None

    def forward(self, xb: torch.Tensor) -> torch.Tensor:
        """Logits (B, 10) of images (B, 1, 28, 28), (B, 28, 28) or flattened (B, 784)."""
        return self._by_chunks(xb, lambda part: self.linear(self.seen(part)))  # (B, 10) logits

    def weighed(self, transformed: torch.Tensor) -> torch.Tensor:
        """Logits of images the input transform was applied to already (a tune's replay pool)."""
        return self._by_chunks(transformed, lambda part: self.linear(self.mapped(part)))

    def _by_chunks(self, xb: torch.Tensor, logits_of) -> torch.Tensor:
        """``logits_of(xb)``, FEATURE_CHUNK images at a time for wide features without gradients;
        never traced: an exported graph must take any batch at once."""
        if self.features != "pixels" and not torch.is_grad_enabled() and not tracing() and len(xb) > FEATURE_CHUNK:
            return torch.cat([logits_of(part) for part in xb.split(FEATURE_CHUNK)])
        return logits_of(xb)

    def seen(self, xb: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The images as the linear layer sees them: checked, input-transformed, feature-mapped (B, features).

        ``out`` is a buffer the features may be written into (see ``inputs.feature_map``)."""
        if xb.dim() < 2 or xb.shape[1:].numel() != self.input_size:
            raise SettingError(
                f"MNISTModel takes a batch of {self.input_size}-pixel images, shaped (B, 1, 28, 28) or "
                f"(B, {self.input_size}); got shape {tuple(xb.shape)}"
            )
        if self.input_transform != "none":
            xb = apply_input_transform(self.input_transform, xb.reshape(-1, SIDE, SIDE))
        return self.mapped(xb, out)

    def mapped(self, xb: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Images the input transform was applied to already, feature-mapped: what ``seen`` ends with."""
        if self.features != "pixels":
            return feature_map(self.features, xb, out)
        return xb.reshape(-1, self.input_size)  # (B, 784)

    def extra_repr(self) -> str:
        return f"input_transform={self.input_transform!r}, features={self.features!r}, reject={self.reject}"

    def training_step(self, batch) -> torch.Tensor:
        images, labels = batch
        return weighted_cross_entropy(self(images), labels, self.class_weight)

    def validation_step(self, batch) -> dict:
        images, labels = batch
        out = self(images)
        loss = F.cross_entropy(out, labels)
        correct = (
            out[:, : self.num_classes].argmax(dim=1) == labels
        ).sum()  # the likeliest class, a reject class aside
        return {"val_loss": loss, "val_acc": correct / len(labels), "n": len(labels), "correct": correct}

    def validation_epoch_end(self, outputs: list[dict]) -> dict:
        total = sum(x["n"] for x in outputs)
        loss = sum(x["val_loss"].item() * x["n"] for x in outputs) / total
        correct = sum(int(x["correct"]) for x in outputs)
        return {"val_loss": loss, "val_acc": correct / total}

    def epoch_end(self, epoch: int, result: dict) -> None:
        print("Epoch [{}], val_loss: {:.4f}, val_acc: {:.4f}".format(epoch, result["val_loss"], result["val_acc"]))

    @torch.no_grad()
    def predict_proba(self, xb: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities, (B, outputs), for images (B, 1, 28, 28) or (B, 784)."""
        return F.softmax(self(xb) / self.temperature, dim=1)

    @torch.no_grad()
    def answer_states(self, xb: torch.Tensor) -> torch.Tensor:
        """Each image's state, an index into calibration.STATES (accepted, unsure, rejected), by the
        run's threshold: the rule of ``calibration.answer_states``, in torch."""
        from .calibration import ACCEPTED, REJECTED, UNSURE

        p = self.predict_proba(xb)
        if self.threshold is None:
            return torch.full((len(p),), ACCEPTED, device=p.device)
        best = p[:, : self.num_classes].amax(dim=1)
        state = torch.where(best < self.threshold, UNSURE, ACCEPTED)
        return torch.where(p.argmax(dim=1) >= self.num_classes, REJECTED, state)

    @torch.no_grad()
    def predict(self, xb: torch.Tensor) -> torch.Tensor:
        """Predicted class index per image, (B,): the likeliest class, a reject class aside."""
        return self(xb)[:, : self.num_classes].argmax(dim=1)


def predict_image(img: torch.Tensor, model: nn.Module) -> int:
    """The lesson's helper: the predicted label of one image tensor (1, 28, 28); for a run with a reject
    class, its index (the number of classes) when "not a digit" is likeliest."""
    xb = img.unsqueeze(0).to(next(model.parameters()).device)
    with torch.no_grad():
        yb = model(xb)
    _, preds = torch.max(yb, dim=1)
    return preds[0].item()
