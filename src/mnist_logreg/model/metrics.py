"""Scores of a model on a labelled set: the confusion matrix and per-class precision, recall and F1."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def logits_and_labels(model, loader: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, outputs) float64, true labels (N,)) over every batch of ``loader`` (a torch model)."""
    import torch

    from .lesson import MNISTModel

    device = next(model.parameters()).device
    logits, true = [], []
    features = None  # MNISTModel's inputs written into one buffer: a new array per batch costs more than the product
    with torch.no_grad():
        for images, labels in loader:
            images = images.to(device)
            if isinstance(model, MNISTModel):
                if features is None or len(features) != len(images):
                    features = torch.empty(len(images), model.linear.in_features, device=device)
                logits.append(model.linear(model.seen(images, out=features)).cpu())
            else:
                logits.append(model(images).cpu())
            true.append(labels.cpu())
    return torch.cat(logits).double().numpy(), torch.cat(true).numpy()


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """The area under the ROC curve of a score meant to be higher for ``positives``: the chance that a
    random positive scores above a random negative, ties counting half (the Mann-Whitney U statistic)."""
    negatives = np.sort(np.asarray(negatives, dtype=np.float64))
    positives = np.asarray(positives, dtype=np.float64)
    below = np.searchsorted(negatives, positives, side="left")  # negatives strictly below each positive
    tied = np.searchsorted(negatives, positives, side="right") - below
    return float((below + 0.5 * tied).sum() / (len(positives) * len(negatives)))


def per_class_metrics(confusion: np.ndarray, classes: list[str]) -> list[dict]:
    """Precision, recall, F1 and support per class (0 where a ratio has no denominator)."""
    true_positives = np.diag(confusion).astype(float)
    predicted_counts = confusion.sum(axis=0).astype(float)
    support = confusion.sum(axis=1).astype(float)
    rows = []
    for k, name in enumerate(classes):
        precision = true_positives[k] / predicted_counts[k] if predicted_counts[k] else 0.0
        recall = true_positives[k] / support[k] if support[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": int(support[k])})
    return rows
