"""ONNX export: the model runs in onnxruntime, without torch, and gives torch's probabilities."""

from __future__ import annotations

import numpy as np
import torch

from mnist_logreg import MNISTModel
from mnist_logreg.model.run_folder import save_model
from tests.helpers import cli, model_json

INFO = model_json(input_transform="deskew", features="pixel-pairs")


def test_export_writes_a_checked_onnx_model_with_a_dynamic_batch_and_named_io(tmp_path):
    import onnx
    import onnxruntime

    torch.manual_seed(0)
    model = MNISTModel(input_transform="deskew", features="pixel-pairs")
    save_model(tmp_path / "run", model, INFO)
    result = cli("export", tmp_path / "run", "--format", "onnx")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "run" / "model.onnx"
    assert result.stdout.strip() == f"wrote {path}"
    onnx.checker.check_model(onnx.load(str(path)))
    session = onnxruntime.InferenceSession(str(path))
    [images], [probabilities] = session.get_inputs(), session.get_outputs()
    assert (images.name, images.shape, images.type) == ("images", ["batch", 1, 28, 28], "tensor(float)")
    assert probabilities.name == "probabilities" and probabilities.shape == ["batch", 10]
    for batch in (1, 7):
        x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
        got = session.run(None, {"images": x})[0]
        with torch.no_grad():  # the export holds the whole model, deskewing and all
            expected = model.predict_proba(torch.from_numpy(x)).numpy()
        assert got.shape == (batch, 10) and np.abs(got - expected).max() <= 1e-5


def test_the_docs_onnxruntime_example_runs_without_torch(tmp_path):
    """The example of docs/onnx.md, as written, in a fresh process where importing torch would fail."""
    import re
    import subprocess
    import sys

    from tests.helpers import REPO_ROOT
    from tests.photos import seven

    torch.manual_seed(0)
    model = MNISTModel(input_transform="deskew", features="pixel-pairs")
    save_model(tmp_path / "runs" / "mnist-default", model, INFO)
    (tmp_path / "runs" / "latest").symlink_to("mnist-default")  # as train leaves it
    assert cli("export", tmp_path / "runs" / "latest").returncode == 0
    (tmp_path / "examples").mkdir()
    seven().save(tmp_path / "examples" / "digit.png")  # as python -m tests.examples makes it
    page = (REPO_ROOT / "docs" / "onnx.md").read_text()
    example = re.search(r"```python\n(import json, numpy as np, onnxruntime\n.*?)```", page, re.S).group(1)
    assert len(example.strip().splitlines()) <= 10
    assert "mnist_logreg" not in example.replace(
        "from mnist_logreg.images.preprocess import open_image, preprocess_array", ""
    )
    blocker = "import sys\nsys.modules['torch'] = None  # no torch here: importing it fails\n"
    done = subprocess.run(
        [sys.executable, "-c", blocker + example], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    label, probability = done.stdout.split()
    assert label in INFO["classes"] and 0 < float(probability) <= 1
