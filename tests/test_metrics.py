"""Scores of a model's outputs."""

from __future__ import annotations

import numpy as np

from mnist_logreg.model.metrics import auroc


def test_auroc_counts_pairs_and_halves_ties():
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert auroc(np.array([1.0, 3.0]), np.array([2.0, 2.0])) == 0.5
    assert auroc(np.array([2.0]), np.array([2.0, 1.0])) == 0.75
