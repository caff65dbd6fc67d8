"""The lesson's training API: the model, fit, evaluate, and the closed-form gradient."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from mnist_logreg import MNISTModel, evaluate, fit
from mnist_logreg.config import SCHEDULES, get_preset
from mnist_logreg.data.loaders import TensorLoader, dataloaders, tensor_loaders
from mnist_logreg.data.splits import load_splits
from mnist_logreg.train.loop import (
    AutogradStep,
    ClosedFormStep,
    is_plain_sgd,
    make_opt_func,
    supports_fused,
    uses_closed_form,
)
from tests.helpers import make_images, random_batch


def closed_form_gradients(model: MNISTModel, images, labels):
    """(loss, dW, db) of one ClosedFormStep on the batch, read from the .grad buffers it fills: the
    optimizer keeps the step from being fused into the product, and its zero rate from moving a weight."""
    before = model.linear.weight.detach().clone()
    loss = ClosedFormStep(model, torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.5))(images, labels)
    assert torch.equal(model.linear.weight, before)
    return loss, model.linear.weight.grad.clone(), model.linear.bias.grad.clone()


def assert_closed_form_matches_autograd(model: MNISTModel, images, labels) -> float:
    """Check one closed-form step's loss and gradients against autograd's on the batch; return the loss."""
    loss = model.training_step((images, labels))
    loss.backward()
    reference = [p.grad.clone() for p in (model.linear.weight, model.linear.bias)]
    model.zero_grad(set_to_none=True)
    closed_loss, weight_grad, bias_grad = closed_form_gradients(model, images, labels)
    assert closed_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    torch.testing.assert_close(weight_grad, reference[0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(bias_grad, reference[1], rtol=1e-5, atol=1e-7)
    return loss.item()


@pytest.mark.parametrize("reject_weight", [None, 3.0])  # plain, and the reject class's loss weighed 3
def test_closed_form_gradient_matches_autograd(reject_weight):
    torch.manual_seed(0)
    model = MNISTModel(reject=reject_weight is not None)
    images, labels = random_batch()
    if reject_weight is not None:
        labels[::4] = 10  # a quarter of the batch outliers
        model.class_weight = torch.tensor([1.0] * 10 + [reject_weight])
        unweighted = torch.nn.functional.cross_entropy(model(images), labels)
    loss = assert_closed_form_matches_autograd(model, images, labels)
    if reject_weight is not None:  # the weighted loss is larger: its outliers count three times
        assert loss > unweighted.item()


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda params: torch.optim.SGD(params, 0.1),  # fused into the gradient's matrix product
        lambda params: torch.optim.SGD(params, 0.1, momentum=0.9, weight_decay=1e-3),
        lambda params: torch.optim.Adam(params, 0.01, fused=True),
        lambda params: torch.optim.AdamW(params, 0.01, weight_decay=0.1),
    ],
)
def test_closed_form_steps_match_autograd_steps(make_optimizer):
    models = three_steps_each_way(make_optimizer)
    torch.testing.assert_close(models[0].linear.weight, models[1].linear.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(models[0].linear.bias, models[1].linear.bias, rtol=1e-5, atol=1e-6)


def three_steps_each_way(make_optimizer, **model_options) -> list[MNISTModel]:
    """The same model after three steps in closed form, and after the same three through autograd."""
    models = []
    for step_class in (ClosedFormStep, AutogradStep):
        torch.manual_seed(0)
        model = MNISTModel(**model_options)
        step = step_class(model, make_optimizer(model.parameters()))
        for seed in range(3):
            step(*random_batch(seed=seed))
        models.append(model)
    return models


def test_only_plain_sgd_is_fused():
    params = list(MNISTModel().parameters())
    assert is_plain_sgd(torch.optim.SGD(params, 0.1))
    assert not is_plain_sgd(torch.optim.SGD(params, 0.1, momentum=0.9))
    assert not is_plain_sgd(torch.optim.SGD(params, 0.1, weight_decay=0.01))
    assert not is_plain_sgd(torch.optim.Adam(params, 0.1))


def test_closed_form_only_for_models_whose_loss_it_knows():
    class Scaled(MNISTModel):
        def forward(self, xb):
            return 2 * super().forward(xb)

    assert uses_closed_form(MNISTModel())
    assert not uses_closed_form(Scaled())
    assert not uses_closed_form(torch.nn.Linear(784, 10))


def test_fit_gives_the_same_history_with_and_without_the_closed_form():
    images, labels = random_batch(200, seed=1)
    histories = []
    for closed_form in (True, False):
        torch.manual_seed(0)
        model = MNISTModel()
        train = TensorLoader(images, labels, 32, shuffle=True, generator=torch.Generator().manual_seed(5))
        val = TensorLoader(images[:50], labels[:50], 32)
        histories.append(fit(3, 0.5, model, train, val, closed_form=closed_form, verbose=False))
    for a, b in zip(*histories, strict=True):
        assert a["val_acc"] == b["val_acc"]
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)


def test_a_custom_model_trains_through_autograd():
    class Doubled(MNISTModel):
        def forward(self, xb):
            return 2 * super().forward(xb)

    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(2))
    images = torch.from_numpy(make_images(labels.numpy(), seed=3)).unsqueeze(1).float() / 255
    torch.manual_seed(0)
    model = Doubled()
    history = fit(5, 0.05, model, TensorLoader(images, labels, 50), TensorLoader(images, labels, 50), verbose=False)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.9


def test_dataloader_and_in_memory_paths_train_identically(fake_data):
    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=0)
    histories, weights = [], []
    for make in (dataloaders, tensor_loaders):
        train, val, _ = make(splits, batch_size=32, seed=11)
        torch.manual_seed(0)
        model = MNISTModel()
        histories.append(fit(3, 0.1, model, train, val, verbose=False))
        weights.append(model.linear.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])
    for a, b in zip(*histories, strict=True):
        assert (a["val_acc"], a["val_loss"], a["train_loss"]) == (b["val_acc"], b["val_loss"], b["train_loss"])


def test_fit_learns_the_fake_digits_and_reports_every_field(fake_data, capsys):
    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=0)
    train, val, test = tensor_loaders(splits, batch_size=32, seed=0)
    torch.manual_seed(0)
    model = MNISTModel()
    history = fit(5, 0.01, model, train, val, functools.partial(torch.optim.Adam))
    assert len(history) == 5
    assert set(history[0]) == {"val_loss", "val_acc", "train_loss", "seconds"}
    assert history[-1]["val_acc"] > 0.9  # bars at a different row per class: easy when learnt
    assert all(h["seconds"] > 0 for h in history)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("Epoch [0], val_loss: ") and ", val_acc: " in printed[0]
    assert evaluate(model, test)["val_acc"] > 0.9


def test_evaluate_counts_correct_over_the_whole_set_not_a_mean_of_batch_means():
    model = MNISTModel()
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.copy_(torch.tensor([1.0] + [0.0] * 9))  # always predicts 0
    images = torch.zeros(5, 1, 28, 28)
    labels = torch.tensor([0, 0, 0, 1, 0])  # batches of 4 and 1: means 0.75 and 1.0
    result = evaluate(model, TensorLoader(images, labels, batch_size=4))
    assert result["val_acc"] == pytest.approx(4 / 5)  # not (0.75 + 1.0) / 2
    expected_loss = F.cross_entropy(model(images), labels).item()
    assert result["val_loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_fit_takes_any_re_iterable_loader_even_without_a_length():
    images, labels = random_batch(64, seed=4)

    class Batches:  # no __len__: fit must not need one unless a schedule does
        def __iter__(self):
            return iter([(images[:32], labels[:32]), (images[32:], labels[32:])])

    history = fit(3, 0.01, MNISTModel(), Batches(), Batches(), verbose=False)
    assert len(history) == 3
    assert history[2]["train_loss"] < history[0]["train_loss"]  # it trained on the batches it was given


class RecordingSGD(torch.optim.SGD):
    """SGD that records the learning rate of every step (a subclass, so fit steps it as given)."""

    def __init__(self, params, lr):
        super().__init__(params, lr)
        self.lrs = []

    def step(self, closure=None):
        self.lrs.append(self.param_groups[0]["lr"])
        return super().step(closure)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("constant", lambda t: 1.0),
        ("cosine", lambda t: (1 + math.cos(math.pi * t)) / 2),
        ("linear", lambda t: 1 - t),
    ],
)
def test_learning_rate_schedules_follow_their_formula_every_step(name, expected):
    images, labels = random_batch(40, seed=5)
    loader = TensorLoader(images, labels, batch_size=10)  # 4 steps per epoch
    optimizers = []

    def opt_func(params, lr):
        optimizers.append(RecordingSGD(params, lr))
        return optimizers[0]

    fit(3, 0.5, MNISTModel(), loader, loader, opt_func, schedule=SCHEDULES[name], verbose=False)
    steps = 3 * 4
    assert optimizers[0].lrs == pytest.approx([0.5 * expected(i / steps) for i in range(steps)])


def test_fused_optimizers_are_used_only_where_torch_has_them():
    try:  # whether this torch has a fused CPU kernel, asked of torch itself
        torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=0.1, fused=True)
        has_kernel = True
    except RuntimeError:
        has_kernel = False
    assert supports_fused(torch.optim.Adam, "cpu") == has_kernel
    assert make_opt_func(get_preset("raw")).keywords.get("fused", False) == has_kernel

    class NoFusedKernel(torch.optim.Adam):  # as torch.optim.Adam on a torch without a CPU kernel
        def __init__(self, params, lr, fused=None, **options):
            if fused:
                raise RuntimeError(
                    "`fused=True` requires all the params to be floating point Tensors of supported devices"
                )
            super().__init__(params, lr, **options)

    assert not supports_fused(NoFusedKernel, "cpu")
    assert supports_fused(torch.optim.Adam, "cpu")  # torch 2.4 and later, as installed here


@pytest.mark.parametrize("progress", [False, True])
def test_the_progress_bar_leaves_the_batches_as_they_are(fake_data, progress):
    """A bar over the epoch must not iterate the loader itself: an extra ``iter()`` of a shuffling
    DataLoader draws from its generator and shifts every later shuffle."""
    spec, data_dir = fake_data
    splits = load_splits(spec, data_dir, val_size=60, seed=0)
    weights = []
    for make in (dataloaders, tensor_loaders):
        train, val, _ = make(splits, batch_size=32, seed=11)
        torch.manual_seed(0)
        model = MNISTModel()
        fit(3, 0.1, model, train, val, verbose=False, progress=progress)
        weights.append(model.linear.weight.detach().clone())
    torch.manual_seed(0)
    quiet = MNISTModel()
    train, val, _ = tensor_loaders(splits, batch_size=32, seed=11)
    fit(3, 0.1, quiet, train, val, verbose=False, progress=False)
    assert torch.equal(weights[0], weights[1])
    assert torch.equal(weights[0], quiet.linear.weight)


def test_closed_form_gradient_matches_autograd_on_pixel_pairs():
    torch.manual_seed(0)
    model = MNISTModel(input_transform="deskew", features="pixel-pairs")
    assert model.linear.in_features == 10192 and uses_closed_form(model)
    images, labels = random_batch()
    assert_closed_form_matches_autograd(model, images, labels)


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda params: torch.optim.SGD(params, 0.1), lambda params: torch.optim.Adam(params, 0.01, weight_decay=1e-4)],
)
def test_closed_form_steps_match_autograd_steps_on_pixel_pairs(make_optimizer):
    models = three_steps_each_way(make_optimizer, features="pixel-pairs")
    # Adam divides each step by its gradient's running size: on the weights of pairs that are rarely
    # inked, float rounding of a tiny gradient becomes a step of a few 1e-6, either way.
    torch.testing.assert_close(models[0].linear.weight, models[1].linear.weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(models[0].linear.bias, models[1].linear.bias, rtol=1e-5, atol=1e-6)
