"""Evidence maps: each pixel's exact contribution to each class, in the CLI, the API and the page."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from mnist_logreg import MNISTModel
from mnist_logreg.infer.explain import contributions, evidence, evidence_pngs
from mnist_logreg.model.linear import as_weights
from tests.helpers import cli, model_json, rejecting_run, untrained_run
from tests.photos import image_bytes, seven
from tests.servers import multipart, request, serving


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
    upload = multipart("file", "seven.png", image_bytes(seven()))
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


def pair_model(seed: int = 2) -> MNISTModel:
    torch.manual_seed(seed)
    model = MNISTModel(input_transform="deskew", features="pixel-pairs").double()
    with torch.no_grad():
        model.linear.weight.normal_()  # weights of every size, so that a lost pair would show
    return model


def test_on_pixel_pairs_the_maps_still_sum_with_the_bias_to_the_logits_exactly():
    from mnist_logreg.images.inputs import deskew

    model = pair_model()
    weights = as_weights(model)
    seen = deskew(np.random.default_rng(3).random((28, 28)))  # what the model saw: the maps are over its pixels
    model.input_transform = "none"  # torch's own features and linear layer on that image, in float64
    with torch.no_grad():
        logits = model(torch.from_numpy(seen).double()[None])[0].numpy()
    parts = contributions(weights, seen)
    assert parts.shape == (10, 784)
    assert np.abs(parts.sum(axis=1) + weights.bias - logits).max() < 1e-9
    found = evidence(weights, seen)
    assert found["predicted"] == int(np.argmax(logits))
    for name, k in (("for_predicted", found["predicted"]), ("for_runner_up", found["runner_up"])):
        assert abs(found[name].sum() + weights.bias[k] - logits[k]) < 1e-9


def pair_run(folder):
    from mnist_logreg.model.run_folder import save_model

    model = pair_model().float()
    info = model_json()
    save_model(folder, model, info | {"input_transform": "deskew", "features": "pixel-pairs"})
    return folder


def test_the_cli_and_the_api_explain_a_pair_model_with_the_librarys_maps(tmp_path):
    from mnist_logreg.infer.classify import predict_image_file
    from mnist_logreg.infer.explain import save_evidence_figure
    from mnist_logreg.model.linear import load_weights

    run = pair_run(tmp_path / "run")
    seven().save(tmp_path / "seven.png")
    weights, info = load_weights(run)
    seen = predict_image_file(tmp_path / "seven.png", weights, info)["pixels"]
    found = evidence(weights, seen)
    save_evidence_figure(found, info.classes, tmp_path / "expected.png")
    done = cli("predict", run, tmp_path / "seven.png", "--explain", tmp_path / "why")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "why" / "0000-seven.png").read_bytes() == (tmp_path / "expected.png").read_bytes()
    expected = {
        name: "data:image/png;base64," + base64.b64encode(png).decode() for name, png in evidence_pngs(found).items()
    }
    with serving(run) as url:
        status, answer = request(f"{url}/api/predict?explain=1", *multipart("file", "7.png", image_bytes(seven())))
    assert status == 200
    assert {name: answer["evidence"][name] for name in expected} == expected
    assert answer["evidence"]["predicted"] == found["predicted"] == answer["label"]


def test_a_rejected_image_is_explained_by_the_evidence_for_not_a_digit(tmp_path):
    from mnist_logreg.infer.explain import output_name
    from mnist_logreg.model.linear import load_weights

    rejecting_run(tmp_path / "run")
    weights, info = load_weights(tmp_path / "run")
    found = evidence(weights, np.random.default_rng(0).random((28, 28)))
    assert found["predicted"] == 10 and output_name(info.classes, found["predicted"]) == "not a digit"
    seven().save(tmp_path / "seven.png")
    result = cli("predict", tmp_path / "run", tmp_path / "seven.png", "--explain", tmp_path / "why")
    assert result.returncode == 0, result.stderr
    [figure] = (tmp_path / "why").iterdir()
    with Image.open(figure) as image:
        assert image.width >= 600
