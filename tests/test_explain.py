"""Evidence maps: each pixel's exact contribution to each class, in the CLI, the API and the page."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from mnist_logreg import MNISTModel
from mnist_logreg.explain import contributions, evidence, evidence_pngs
from mnist_logreg.predict import as_weights

from helpers import cli, multipart, request, serving, seven, untrained_run


def test_contributions_plus_the_bias_are_the_models_logits_exactly():
    torch.manual_seed(0)
    model = MNISTModel().double()
    x = torch.rand(1, 784, dtype=torch.float64)
    with torch.no_grad():
        logits = model(x)[0].numpy()  # float64 through torch's own linear layer
    weights = as_weights(model)
    parts = contributions(weights, x[0].numpy())
    assert parts.shape == (10, 784)
    assert np.abs(parts.sum(axis=1) + weights.bias - logits).max() < 1e-9


def test_evidence_names_the_two_likeliest_classes_and_their_difference():
    torch.manual_seed(1)
    weights = as_weights(MNISTModel())
    x = np.random.default_rng(0).random(784)
    found = evidence(weights, x)
    order = np.argsort(-(weights.weight.astype(np.float64) @ x + weights.bias))
    assert (found["predicted"], found["runner_up"]) == (order[0], order[1])
    assert np.allclose(found["difference"], found["for_predicted"] - found["for_runner_up"])
    assert (
        found["limit"] == np.abs(np.stack([found[k] for k in ("for_predicted", "for_runner_up", "difference")])).max()
    )
    pngs = evidence_pngs(found)
    for name, png in pngs.items():
        image = Image.open(io.BytesIO(png))
        assert image.size == (224, 224), name
    # Zero evidence is white at the centre of the diverging scale; the input is grey.
    zero = np.asarray(
        Image.open(io.BytesIO(evidence_pngs({**found, "for_predicted": np.zeros((28, 28))})["for_predicted"]))
    )
    assert (zero > 240).all()


def test_predict_explain_writes_one_figure_per_image(tmp_path):
    untrained_run(tmp_path / "run", input_transform="deskew")
    seven().save(tmp_path / "seven.png")
    result = cli("predict", tmp_path / "run", tmp_path / "seven.png", "--explain", tmp_path / "why")
    assert result.returncode == 0, result.stderr
    [figure] = (tmp_path / "why").iterdir()
    with Image.open(figure) as image:
        assert image.format == "PNG" and image.width >= 600
        assert np.asarray(image.convert("L")).std() > 10


def test_the_api_explains_only_when_asked(tmp_path):
    untrained_run(tmp_path / "run", input_transform="deskew")
    buffer = io.BytesIO()
    seven().save(buffer, format="PNG")
    upload = multipart("file", "seven.png", buffer.getvalue())
    with serving(tmp_path / "run") as url:
        status, plain = request(f"{url}/api/predict", *upload)
        assert status == 200 and "evidence" not in plain
        status, explained = request(f"{url}/api/predict?explain=1", *upload)
    assert status == 200
    found = explained["evidence"]
    assert found["predicted"] == explained["label"] and found["runner_up"] == explained["top_k"][1]["label"]
    for name in ("input", "for_predicted", "for_runner_up", "difference"):
        png = base64.b64decode(found[name].split(",", 1)[1])
        assert Image.open(io.BytesIO(png)).size == (224, 224)
    assert explained["probabilities"] == plain["probabilities"]
