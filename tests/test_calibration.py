"""model/calibration.py: the temperature, the expected calibration error, and the reject rule."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_logreg.model.calibration import (
    accepted,
    choose_threshold,
    digit_scores,
    expected_calibration_error,
    fit_temperature,
    reliability,
    softmax,
)


def sampled(temperature: float, n: int = 20000, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): T is the one calibrating them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 10))
    p = softmax(logits, temperature)
    labels = np.array([rng.choice(10, p=row) for row in p])
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_with(true_temperature):
    logits, labels = sampled(true_temperature)
    assert fit_temperature(logits, labels) == pytest.approx(true_temperature, rel=0.05)


def test_calibration_lowers_the_error_of_overconfident_logits():
    logits, labels = sampled(2.5)  # the raw logits are 2.5 times too sure
    temperature = fit_temperature(logits, labels)
    before = expected_calibration_error(softmax(logits), labels)
    after = expected_calibration_error(softmax(logits, temperature), labels)
    assert before > 0.1 and after < 0.02
    assert (softmax(logits, temperature).argmax(1) == logits.argmax(1)).all()  # no prediction changes


def test_the_calibration_error_by_hand():
    # Two bins used: confidence 0.9 (right 1 of 2) and 0.6 (right 2 of 2); 15 bins of width 1/15.
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    expected = 2 / 4 * abs(0.5 - 0.9) + 2 / 4 * abs(1.0 - 0.6)
    assert expected_calibration_error(p, labels) == pytest.approx(expected)
    rows = reliability(p, labels)
    assert len(rows) == 15 and sum(row["count"] for row in rows) == 4
    assert [row["count"] for row in rows if row["count"]] == [2, 2]


def test_the_threshold_accepts_the_share_asked_and_no_more_than_it_must():
    scores = np.linspace(0, 1, 101)
    threshold = choose_threshold(scores, 0.96)
    assert np.mean(scores >= threshold) >= 0.96
    assert np.mean(scores >= np.nextafter(threshold, 2)) < 0.96  # any higher threshold accepts too few


def test_no_threshold_is_below_0_even_where_too_many_images_are_rejected_by_the_reject_class():
    scores = np.array([-1.0] * 10 + [0.9] * 90)  # a tenth have "not a digit" likeliest
    assert choose_threshold(scores, 0.96) == 0.0


def test_an_image_whose_likeliest_output_is_the_reject_class_is_never_accepted():
    p = np.array([[0.7, 0.1, 0.2], [0.3, 0.2, 0.5], [0.45, 0.1, 0.45]])  # two classes, then "not a digit"
    assert digit_scores(p, 2).tolist() == [0.7, -1.0, 0.45]
    assert accepted(p, 2, 0.0).tolist() == [True, False, True]  # a tie is not "likelier"
    assert accepted(p, 2, 0.5).tolist() == [True, False, False]
    assert accepted(p, 2, None).tolist() == [True, True, True]  # no threshold: no reject option


# Two classes, then "not a digit": each row one case of the rule, with the state it must give.
STATE_CASES = [
    ([0.90, 0.05, 0.05], "accepted"),  # a class, sure
    ([0.45, 0.40, 0.15], "unsure"),  # a class likeliest, below the threshold of 0.6
    ([0.20, 0.10, 0.70], "rejected"),  # "not a digit" likeliest, however sure or not
    ([0.35, 0.30, 0.35], "unsure"),  # a tie with the reject output: a class is not less likely
    ([0.60, 0.10, 0.30], "accepted"),  # at the threshold itself
]


def test_the_three_states_come_from_the_rule_in_numpy_and_in_torch():
    import torch

    from mnist_logreg.model.calibration import STATES, answer_states
    from mnist_logreg.model.lesson import MNISTModel

    p = np.array([row for row, _ in STATE_CASES])
    expected = [state for _, state in STATE_CASES]
    assert [STATES[s] for s in answer_states(p, 2, 0.6)] == expected
    assert [STATES[s] for s in answer_states(p, 2, None)] == ["accepted"] * len(p)  # no reject option
    # The torch model's rule on the same probabilities: logits log(p) with no bias, temperature 1.
    model = MNISTModel(3, 2, reject=True)
    with torch.no_grad():
        model.linear.weight.copy_(torch.eye(3))
        model.linear.bias.zero_()
    model.threshold = 0.6
    states = model.answer_states(torch.log(torch.tensor(p, dtype=torch.float32)))
    assert [STATES[s] for s in states.tolist()] == expected
    model.threshold = None
    assert model.answer_states(torch.log(torch.tensor(p, dtype=torch.float32))).tolist() == [0] * len(p)
    assert accepted(p, 2, 0.6).tolist() == [state == "accepted" for state in expected]  # accepted: as it was


def test_the_reject_output_has_one_name_in_answers_maps_and_figures():
    from mnist_logreg.model.calibration import DIGITS, output_name, rejected_name

    assert output_name(DIGITS, 10) == rejected_name(DIGITS) == "not a digit"
    shapes = ["bar", "circle", "cross"]  # a folder run's classes
    assert output_name(shapes, 3) == rejected_name(shapes) == "none of the classes"
    assert output_name(shapes, 1) == "circle"


def test_the_fitted_temperature_is_the_minimum_of_the_loss():
    """Newton's steps end where the loss is lowest: no temperature a little either side does better."""
    logits, labels = sampled(1.7, n=5000, seed=3)
    temperature = fit_temperature(logits, labels)

    def loss(t: float) -> float:
        return float(-np.mean(np.log(softmax(logits, t)[np.arange(len(labels)), labels])))

    assert loss(temperature * 0.999) > loss(temperature) < loss(temperature * 1.001)
