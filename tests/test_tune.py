"""mnist-logreg tune: a copy of a run taught one writer's hand, on a run trained on drawn shapes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import SHAPES, assert_clean_error, cli, draw_shape, untrained_run


def write_own_hand(root: Path, train: int = 5, test: int = 10, seed: int = 7, classes=SHAPES) -> Path:
    """A writer's folder in another hand than the run's (``draw_shape``'s ``other_hand``): ``train``
    images per class to learn from, ``test`` held out (train/ and test/)."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        for split, count in (("train", train), ("test", test)):
            (root / split / kind).mkdir(parents=True, exist_ok=True)
            for n in range(count):
                draw_shape(kind, rng, other_hand=True).save(root / split / kind / f"{n:03d}.png")
    return root


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_tuned_run_reads_the_writers_hand_and_the_run_it_came_from_is_unchanged(shapes_run, tmp_path):
    from mnist_logreg.train.tune import tune_run

    writer = write_own_hand(tmp_path / "writer")
    before_files = digests(shapes_run)
    result = tune_run(shapes_run, writer, out=tmp_path / "tuned", log=lambda m: None)
    assert digests(shapes_run) == before_files
    before, after = result.before["writer"]["acc"], result.after["writer"]["acc"]
    assert result.before["writer"]["images"] == 30 and before < 0.9
    assert after >= 0.95 and after >= before + 0.1
    assert result.after["test"]["acc"] >= result.before["test"]["acc"] - 0.1  # the shapes it knew, still read

    info = json.loads((tmp_path / "tuned" / "model.json").read_text())
    tuned = info["tuned_from"]
    assert tuned["run"] == str(shapes_run.resolve())
    assert tuned["model_json_sha256"] == hashlib.sha256((shapes_run / "model.json").read_bytes()).hexdigest()
    assert tuned["writer"]["train"] == 15 and tuned["writer"]["held_out"] == 30
    assert tuned["writer"]["classes"] == list(SHAPES) and tuned["writer"]["files"].startswith("sha256:")
    assert tuned["after"]["writer"]["acc"] == result.after["writer"]["acc"]
    assert info["source"] == json.loads((shapes_run / "model.json").read_text())["source"]  # its own data


def test_every_command_works_on_a_tuned_run_and_the_report_shows_before_and_after(shapes_run, tmp_path):
    writer = write_own_hand(tmp_path / "writer")
    tuned = tmp_path / "tuned"
    done = cli("tune", shapes_run, "--dataset", writer, "--out", tuned)
    assert done.returncode == 0, done.stderr
    assert f"tuned run written to {tuned}" in done.stdout
    evaluated = cli("evaluate", tuned, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["accuracy"] == json.loads((tuned / "metrics.json").read_text())["test_acc"]
    assert cli("report", tuned).returncode == 0
    page = (tuned / "report.html").read_text()
    assert "Tuned on one writer" in page and "the writer&#x27;s held-out images (30 images)" in page
    weight = json.loads((tuned / "model.json").read_text())["tuned_from"]["writer_weight_reached"]
    assert f"a writer&#x27;s image weighing {weight:g} of a replayed one" in page
    square = next((writer / "test" / "circle").glob("*.png"))
    predicted = cli("predict", tuned, square, "--json")
    assert predicted.returncode == 0 and json.loads(predicted.stdout)[0]["class"] == "circle"  # drawn square


def test_tune_refuses_what_it_cannot_learn_from_in_one_line(shapes_run, tmp_path):
    strange = write_own_hand(tmp_path / "strange", classes=("bar", "star"))
    assert_clean_error(cli("tune", shapes_run, "--dataset", strange), "classes ['star'] that the run does not know")
    (tmp_path / "empty").mkdir()
    assert_clean_error(cli("tune", shapes_run, "--dataset", tmp_path / "empty"), "holds 0 class folder(s)")
    writer = write_own_hand(tmp_path / "writer", train=1, test=1)
    assert_clean_error(cli("tune", tmp_path / "empty", "--dataset", writer), "run 'mnist-logreg train' first")
    assert_clean_error(cli("tune", shapes_run, "--dataset", writer, "--out", shapes_run), "never changes")
    assert_clean_error(cli("tune", shapes_run, "--dataset", writer, "--out", strange), "choose another --out")
    untrained_run(tmp_path / "made-by-hand")  # a digits model.json with no splits: nothing to replay
    digits = write_own_hand(tmp_path / "digits", train=3, test=1, classes=("bar", "cross"))
    (digits / "train" / "bar").rename(digits / "train" / "1")
    (digits / "train" / "cross").rename(digits / "train" / "7")
    shutil.rmtree(digits / "test")
    assert_clean_error(cli("tune", tmp_path / "made-by-hand", "--dataset", digits / "train"), "records no splits")


def test_a_tuned_run_appears_whole_and_a_stopped_tunes_leftovers_are_cleared(shapes_run, tmp_path):
    from mnist_logreg.train.tune import Tuner, read_writer

    tuner = Tuner(shapes_run, log=lambda m: None)
    writer = read_writer(write_own_hand(tmp_path / "writer"), tuner.info, log=lambda m: None)
    leftover = tmp_path / ".tuned.partial"  # what a tune killed midway leaves
    leftover.mkdir()
    (leftover / "model.json").write_text("{half")
    first = tuner.tune(writer, tmp_path / "tuned")
    assert not leftover.exists() and sorted(p.name for p in (tmp_path / "tuned").iterdir()) == [
        "history.json", "metrics.json", "model.json", "model.pth", "weights.npz",
    ]  # fmt: skip
    second = tuner.tune(writer, tmp_path / "again")  # the tuner tunes from the run each time, not from the last tune
    assert second.after == first.after and second.before == first.before


def test_the_writers_weight_doubles_only_while_its_images_are_read_worse_than_the_runs_own(shapes_run, tmp_path):
    from dataclasses import replace

    import torch

    from mnist_logreg.config import TuneSettings
    from mnist_logreg.data.loaders import to_float_pixels
    from mnist_logreg.train.tune import Tuner, read_writer

    tuner = Tuner(shapes_run, log=lambda m: None)
    images, labels = tuner.replay  # a folder run of drawn shapes: no input transform, so forward() reads them alike
    with torch.no_grad():
        logits = tuner.model(to_float_pixels(images))
    assert tuner.own_accuracy == float((logits.argmax(1) == labels).float().mean()) > 0.5
    writer = read_writer(write_own_hand(tmp_path / "writer"), tuner.info, log=lambda m: None)
    # Each image twice, under two classes: never more than half read right, as with a wrong correction.
    torn = replace(
        writer,
        train_images=torch.cat([writer.train_images, writer.train_images]),
        train_labels=torch.cat([writer.train_labels, (writer.train_labels + 1) % len(SHAPES)]),
    )

    def reached(out: str, writer, **settings) -> float:
        # A tenth of the steps: the weight's schedule, not what the steps learn, is under test here
        tuner.settings = replace(TuneSettings(), steps=10, **settings)
        tuner.tune(writer, tmp_path / out)
        return json.loads((tmp_path / out / "model.json").read_text())["tuned_from"]["writer_weight_reached"]

    assert reached("torn", torn) == 1.0  # 0.25, 0.5, then the most it may weigh
    assert reached("capped", torn, writer_weight_max=0.4) == 0.4
    assert reached("no-room", torn, writer_weight=0.3, writer_weight_max=0.3) == 0.3
    tuner.own_accuracy = 0.0  # read as well as the run reads its own, however little is read right
    assert reached("learnt", torn) == 0.25


def test_a_runs_replay_pool_is_kept_in_the_data_folder_and_read_back_as_it_was_drawn(fake_data, tmp_path):
    import torch

    from mnist_logreg.config import REJECT_LOSS_WEIGHT, TuneSettings, get_preset
    from mnist_logreg.data.prepared import write_prepared
    from mnist_logreg.data.splits import run_splits
    from mnist_logreg.model.run_folder import info_digest, load_run
    from mnist_logreg.train.run import train_run
    from mnist_logreg.train.tune import replay_pool, trained_class_weight

    spec, data_dir = fake_data
    config = get_preset("default").updated(epochs=1, val_size=60)  # with pen copies and outliers
    train_run(spec, config, data_dir=data_dir, run_dir=tmp_path / "run", verbose=False, log=lambda m: None)
    _, info = load_run(tmp_path / "run")
    # The replay weighs "not a digit" as the run's training did, from what model.json recorded of it
    assert trained_class_weight(info).tolist() == [1.0] * 10 + [REJECT_LOSS_WEIGHT] != [1.0] * 11
    splits, settings = run_splits(info, data_dir, dataset=spec), TuneSettings(replay_pool=300)
    said, run_digest = [], info_digest(tmp_path / "run")

    def pool(digest=run_digest):
        return replay_pool(info, splits, data_dir, settings, run_digest=digest, log=said.append)

    drawn = pool()
    [kept] = (data_dir / "replay").iterdir()
    shutil.rmtree(data_dir / "outliers")
    shutil.rmtree(data_dir / "pens")
    read = pool()  # from the kept pool: the outliers and pen copies it came from are not needed
    assert not (data_dir / "outliers").exists() and not (data_dir / "pens").exists()
    assert len(drawn[1]) == 300 and all(torch.equal(a, b) for a, b in zip(drawn, read, strict=True))
    assert read[0].dtype == torch.uint8 and set(read[1].tolist()) >= {10}  # "not a digit" among them

    kept.write_bytes(b"not a zip file")
    said.clear()
    again = pool()
    assert any("is damaged" in line for line in said)  # drawn again, the same
    assert all(torch.equal(a, b) for a, b in zip(drawn, again, strict=True))
    with np.load(kept) as arrays:
        key = str(arrays["key"])
    write_prepared(kept, key, {"images": np.zeros((3, 1, 28, 28), np.float32)})  # its key, not its pool
    said.clear()
    assert all(torch.equal(a, b) for a, b in zip(drawn, pool(), strict=True))
    assert any("does not hold the replay pool" in line for line in said)
    pool(digest="another run")
    assert len(list((data_dir / "replay").iterdir())) == 2  # each run its own


def test_the_replays_loss_weighs_each_class_as_training_did_and_older_runs_weigh_all_alike(tmp_path):
    import torch

    from mnist_logreg.model.lesson import weighted_cross_entropy
    from mnist_logreg.model.run_folder import read_info
    from mnist_logreg.train.tune import trained_class_weight
    from tests.helpers import REJECT_INFO, rejecting_run

    older = read_info(rejecting_run(tmp_path / "older"))  # its reject record predates loss_weight
    weighing = read_info(rejecting_run(tmp_path / "weighing", reject=REJECT_INFO | {"loss_weight": 3.0}))
    plain = read_info(untrained_run(tmp_path / "plain"))  # no reject class
    assert trained_class_weight(older) is None and trained_class_weight(plain) is None
    weight = trained_class_weight(weighing)
    assert weight.tolist() == [1.0] * 10 + [3.0]
    logits, labels = torch.zeros(2, 11), torch.tensor([4, 10])  # each image's loss is log 11
    assert weighted_cross_entropy(logits, labels, weight).item() == pytest.approx((1 + 3) / 2 * np.log(11))
    assert weighted_cross_entropy(logits, labels, None).item() == pytest.approx(np.log(11))


def test_a_refitted_threshold_is_never_lower_than_the_floor_it_is_given():
    """A tune refits the threshold no lower than the run's own (train/tune.py): score_logits' floor."""
    from mnist_logreg.train.run import score_logits

    rng = np.random.default_rng(0)
    val_logits, test_logits = (
        rng.normal(0, 2, (400, 11)).astype(np.float32),
        rng.normal(0, 2, (200, 11)).astype(np.float32),
    )
    val_logits[:, 10] = -10  # "not a digit" likeliest for none of them: a threshold can accept 0.96
    # Read right two times in three: a temperature that leaves the digits unsure of themselves
    val_labels = np.where(rng.random(400) < 2 / 3, val_logits[:, :10].argmax(1), rng.integers(0, 10, 400))
    test_labels = rng.integers(0, 10, 200)
    names = [str(n) for n in range(10)]

    def scored(floor: float) -> dict:
        return score_logits(
            val_logits, val_labels, test_logits, test_labels, names=names, reject=True, threshold_floor=floor
        )

    refitted = scored(0.0)
    assert refitted["reject"]["val_accepted"] >= 0.96 and 0 < refitted["threshold"] < 0.9
    assert scored(refitted["threshold"] - 0.1)["threshold"] == refitted["threshold"]  # a floor below: the refit stands
    raised = scored(0.9)
    assert raised["threshold"] == 0.9 and raised["reject"]["val_accepted"] < refitted["reject"]["val_accepted"]


def test_the_writers_non_digit_shapes_are_its_digits_mirrored_or_turned_and_only_for_a_run_of_digits(tmp_path):
    import torch

    from mnist_logreg.model.run_folder import read_info
    from mnist_logreg.train.tune import MIRRORED_DIGITS, TURNED_DIGITS, Writer, non_digit_shapes
    from tests.helpers import rejecting_run

    labels = torch.arange(10).repeat(2)  # two of each digit, each image a single bright pixel left of the middle
    images = torch.zeros(20, 28, 28, dtype=torch.uint8)
    images[torch.arange(20), 10, labels + 2] = 255
    writer = Writer(images, labels, images[:0], labels[:0], record={})
    shapes = non_digit_shapes(writer, read_info(rejecting_run(tmp_path / "digits")))
    assert len(shapes) == 2 * (len(MIRRORED_DIGITS) + len(TURNED_DIGITS))  # 0 and 8 are never made into shapes
    mirrored, turned = shapes[: 2 * len(MIRRORED_DIGITS)], shapes[2 * len(MIRRORED_DIGITS) :]
    columns = [int(image[10].argmax()) for image in mirrored]  # digit d's pixel was at column d + 2, row 10
    assert columns == [27 - (d + 2) for d in labels.tolist() if str(d) in MIRRORED_DIGITS]
    rows = [int(image.flatten().argmax()) // 28 for image in turned]  # a quarter turn: column c goes to row 27 - c
    assert rows == [27 - (d + 2) for d in labels.tolist() if str(d) in TURNED_DIGITS]
    assert len(non_digit_shapes(writer, read_info(untrained_run(tmp_path / "plain")))) == 0  # no "not a digit"
