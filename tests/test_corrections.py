"""`serve RUN --corrections DIR`: corrections kept on disk under names the server makes, a tune in the
background with the model swapped whole, and nothing answered 201 lost to a SIGKILL. A real server
on the shapes run (bars, circles and crosses); the writer lays bars down (``other_hand``)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mnist_logreg.config import Limits, TrainConfig
from mnist_logreg.data.folders import open_folder
from mnist_logreg.train.run import train_run
from mnist_logreg.web.bodies import ClientError
from mnist_logreg.web.service import ModelService
from tests.helpers import assert_clean_error, cli, lying, write_shape_folder
from tests.servers import correct, multipart, request, server_pid, serving

FRESH = {"stored": 0, "learnt": 0, "tuning": False, "error": None, "limit": 10_000}  # and "ready", true or not yet
NAMED = re.compile(r"^(bar|circle|cross)/[0-9a-f]{32}\.png$")  # the server's names, and only those


def correct_json(url: str, content: bytes, label: str):
    image = "data:image/png;base64," + base64.b64encode(content).decode()
    body = json.dumps({"image": image, "label": label}).encode()
    return request(f"{url}/api/corrections", body, {"Content-Type": "application/json"})


def model(url: str) -> dict:
    status, answer = request(f"{url}/api/model")
    assert status == 200
    return answer


def tuned(url: str, seconds: float = 120.0) -> dict:
    """GET /api/model once the tune running has ended."""
    deadline = time.monotonic() + seconds
    while (answer := model(url))["corrections"]["tuning"]:
        assert time.monotonic() < deadline, "the tune did not end"
        time.sleep(0.1)
    return answer


def read_as(url: str, content: bytes) -> str:
    body, headers = multipart("file", "drawing.png", content, "image/png")
    status, answer = request(f"{url}/api/predict", body, headers)
    assert status == 200, answer
    return answer["class"]


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".runs" not in p.parts)


def test_a_correction_is_kept_under_a_name_the_server_makes(shapes_run, tmp_path):
    folder = tmp_path / "corrections"
    with serving(shapes_run, options=("--corrections", str(folder))) as url:
        state = model(url)["corrections"]
        assert state.pop("ready") in (True, False) and state == FRESH
        status, kept = correct(url, lying(1), "circle", filename="../../escape.png")
        assert status == 201, kept
        assert NAMED.match(kept["name"]) and kept["label"] == "circle" and kept["stored"] == 1
        assert (folder / kept["name"]).read_bytes() == lying(1)  # as sent
        status, again = correct_json(url, lying(2), "circle")
        assert status == 201 and NAMED.match(again["name"]) and again["stored"] == 2
        assert model(url)["corrections"]["stored"] == 2
    assert files_in(folder) == sorted([kept["name"], again["name"]])
    assert not list(tmp_path.rglob("escape*"))  # the client's name is never used


def test_a_correction_for_an_unknown_class_or_of_no_image_is_refused_and_nothing_is_kept(shapes_run, tmp_path):
    folder = tmp_path / "corrections"
    with serving(shapes_run, options=("--corrections", str(folder))) as url:
        for label in ("square", "../circle", "", "0"):
            status, answer = correct(url, lying(1), label)
            assert status == 422 and "not one of the run's classes: bar, circle, cross" in answer["error"]
        assert correct(url, b"not an image", "circle")[0] == 422
        assert correct(url, np.full(64, 255, np.uint8).tobytes(), "circle")[0] == 422
        body = json.dumps({"image": base64.b64encode(lying(1)).decode()}).encode()
        status, answer = request(f"{url}/api/corrections", body, {"Content-Type": "application/json"})
        assert status == 400 and "'label'" in answer["error"]
        status, answer = request(f"{url}/api/tune", b"", method="POST")
        assert status == 409 and "no corrections yet" in answer["error"]
        assert model(url)["corrections"]["stored"] == 0
    assert files_in(folder) == []


def test_a_tune_learns_the_writers_hand_and_predictions_during_it_never_fail(shapes_run, tmp_path):
    folder = tmp_path / "corrections"
    held_out = [lying(seed) for seed in range(100, 110)]
    with serving(shapes_run, options=("--corrections", str(folder))) as url:
        before = [read_as(url, image) for image in held_out]
        for seed in range(5):
            assert correct(url, lying(seed), "bar")[0] == 201
        answers, stop = [], threading.Event()

        def predict_meanwhile() -> None:
            while not stop.is_set():
                body, headers = multipart("file", "drawing.png", held_out[0], "image/png")
                answers.append(request(f"{url}/api/predict", body, headers))

        predicting = threading.Thread(target=predict_meanwhile)
        predicting.start()
        try:
            status, started = request(f"{url}/api/tune", b"", method="POST")
            second, refused = request(f"{url}/api/tune", b"", method="POST")
            assert (status, started) == (202, {"status": "tuning", "corrections": 5})
            assert second == 409 and "already running" in refused["error"]
            answer = tuned(url)
        finally:
            stop.set()
            predicting.join()
        after = [read_as(url, image) for image in held_out]
    assert answer["run"] == "tuned-0001" and answer["model"]["tuned_from"]["writer"]["train"] == 5
    assert answer["corrections"] == FRESH | {"stored": 5, "learnt": 5, "ready": True}
    assert answers and all(status == 200 and sum(a["probabilities"]) == pytest.approx(1) for status, a in answers)
    assert before.count("bar") <= 7 and after == ["bar"] * 10, (before, after)  # 6 of 10 before, when written
    assert (folder / ".runs" / "tuned-0001" / "metrics.json").is_file()  # a whole run


def test_no_correction_answered_201_is_lost_to_a_sigkill_and_a_restart_serves_what_was_learnt(shapes_run, tmp_path):
    folder = tmp_path / "corrections"
    options = ("--corrections", str(folder))
    with serving(shapes_run, options=options) as url:
        kept = [correct(url, lying(seed), "bar")[1]["name"] for seed in range(12)]
        assert request(f"{url}/api/tune", b"", method="POST")[0] == 202
        os.kill(server_pid(url), signal.SIGKILL)  # now, during the tune or just after
    assert files_in(folder) == sorted(kept)
    assert all((folder / name).read_bytes() == lying(seed) for seed, name in enumerate(kept))
    with serving(shapes_run, options=options) as url:
        answer = model(url)
        assert answer["corrections"]["stored"] == 12
        assert answer["run"] in ("run", "tuned-0001")  # the run itself, or a whole tuned run: never half of one
        assert request(f"{url}/api/tune", b"", method="POST")[0] == 202
        assert tuned(url)["corrections"]["learnt"] == 12
        name = tuned(url)["run"]
    with serving(shapes_run, options=options) as url:
        assert model(url)["run"] == name and model(url)["corrections"]["learnt"] == 12  # what it learnt, kept


def test_the_corrections_routes_answer_404_when_corrections_are_off(shapes_run):
    with serving(shapes_run) as url:
        assert model(url)["corrections"] is None
        status, answer = correct(url, lying(1), "circle")
        assert status == 404 and "--corrections DIR" in answer["error"]
        assert request(f"{url}/api/tune", b"", method="POST")[0] == 404


def test_the_folder_keeps_at_most_its_limit(shapes_run, tmp_path):
    service = ModelService(shapes_run, Limits(corrections=2), tmp_path / "corrections")
    service.corrections.add(lying(1), "circle")
    service.corrections.add(lying(2), "bar")
    with pytest.raises(ClientError) as refused:
        service.corrections.add(lying(3), "circle")
    assert refused.value.status == 409 and "holds 2 corrections" in str(refused.value)
    assert len(files_in(tmp_path / "corrections")) == 2


def test_serve_refuses_corrections_it_cannot_keep_in_one_line(shapes_run, tmp_path):
    (tmp_path / "a-file").write_text("")
    assert_clean_error(
        cli("serve", shapes_run, "--corrections", tmp_path / "a-file", "--port", "1"), "is a file; give a folder"
    )
    assert_clean_error(
        cli("serve", shapes_run, "--corrections", tmp_path / "c", "--workers", "2"), "serves with one worker"
    )


def test_a_tune_that_cannot_run_says_why_and_the_served_model_stays(tmp_path):
    """A run whose images are gone (its folder deleted): the tune fails, GET /api/model says why in
    one line, the run is still served, and the correction is kept."""
    folder = write_shape_folder(tmp_path / "shapes", per_class=10)
    config = TrainConfig(epochs=2, lr=0.05, batch_size=16, optimizer="sgd", val_size=6, seed=1)
    train_run(open_folder(folder), config, preset="test", run_dir=tmp_path / "run", verbose=False, log=lambda m: None)
    shutil.rmtree(folder)
    with serving(tmp_path / "run", options=("--corrections", str(tmp_path / "corrections"))) as url:
        assert correct(url, lying(1), "bar")[0] == 201
        assert request(f"{url}/api/tune", b"", method="POST")[0] == 202
        answer = tuned(url)
        read_as(url, lying(2))  # still answering
    assert answer["run"] == "run" and answer["corrections"]["learnt"] == 0 and answer["corrections"]["stored"] == 1
    error = answer["corrections"]["error"]
    assert error.startswith(f"no folder at {folder}") and "\n" not in error, error
