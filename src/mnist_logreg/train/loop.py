"""Training: the lesson's ``fit`` and ``evaluate``, and the fast gradient step (the presets are config.py's).

``fit`` is one loop for every model and loader. What varies is how a batch's step is taken:
through autograd (any model, the lesson's way), or, for the plain ``MNISTModel``, with the
closed form of the softmax-regression gradient — the same mathematics without autograd's and
the optimizer's bookkeeping, which on 128-image batches costs more than the arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn as nn

from ..config import SCHEDULES, TrainConfig
from ..model.lesson import FEATURE_CHUNK, MNISTModel
from . import distributed

OPTIMIZER_CLASSES: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}


@functools.cache
def supports_fused(optimizer: type[torch.optim.Optimizer], device_type: str) -> bool:
    """Whether this torch has a fused kernel of ``optimizer`` for the device (CPU: torch 2.4 and later)."""
    try:
        optimizer([torch.zeros(1, device=device_type, requires_grad=True)], lr=0.1, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def make_opt_func(config: TrainConfig, device: torch.device | str = "cpu") -> Callable[..., torch.optim.Optimizer]:
    """``opt_func`` for ``fit``: the optimizer class with the config's extra settings bound."""
    optimizer = OPTIMIZER_CLASSES[config.optimizer]
    extra = {"weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        extra["momentum"] = config.momentum
    elif supports_fused(optimizer, torch.device(device).type):
        extra["fused"] = True  # one kernel per step instead of a dozen: half the step's time here
    return functools.partial(optimizer, **extra)


# ---------------------------------------------------------------------------------------------
# The lesson's evaluate and fit
# ---------------------------------------------------------------------------------------------


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(model: nn.Module, val_loader: Iterable) -> dict:
    """Loss and accuracy of ``model`` over every batch of ``val_loader``: ``{'val_loss', 'val_acc'}``."""
    device = _device_of(model)
    outputs = [model.validation_step(_to(batch, device)) for batch in val_loader]
    return model.validation_epoch_end(outputs)


def _to(batch, device: torch.device):
    images, labels = batch
    return images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


class ClosedFormStep:
    """One optimisation step of ``MNISTModel``, with the gradient of the loss in closed form.

    For logits z = W x + b, p = softmax(z) and mean cross-entropy over B images,
    d(loss)/dz = (p - onehot(y)) / B, so dW = (p - onehot)ᵀ X / B and db = Σ (p - onehot) / B,
    where x is what the linear layer sees: the pixels, or the model's fixed features of them
    (``model.seen``), computed per batch. With the model's ``class_weight`` w, the loss is the
    mean of w[y] · cross-entropy, and each image's column of p - onehot is scaled by its w[y].
    Everything runs in the (10, B) orientation: MKL multiplies (10, 784) @ (784, B) faster
    than (B, 784) @ (784, 10). Gradients go into persistent ``.grad`` buffers and the
    optimizer steps as usual; for plain SGD (no momentum, no weight decay) the update
    W -= lr · dW is fused into the gradient's matrix product, saving the optimizer's overhead,
    which on these small tensors is larger than the arithmetic.

    With ``average`` (data-parallel training: each process holds a shard of the batch), the
    gradients, one buffer of 7850 numbers (101,930 on pixel pairs), are averaged across the processes before the step,
    as DistributedDataParallel averages them: the mean over processes of each shard's mean.
    """

    def __init__(
        self,
        model: MNISTModel,
        optimizer: torch.optim.Optimizer,
        average: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.weight, self.bias = model.linear.weight, model.linear.bias
        self.seen = model.seen
        self.class_weight = model.class_weight  # each image's loss times its class's weight (None: 1)
        self._inputs: torch.Tensor | None = None
        # On wide features, a batch is taken FEATURE_CHUNK images at a time, each chunk's features
        # used for its forward and backward products while they are still in the cache.
        self.chunk = None if model.features == "pixels" else FEATURE_CHUNK
        self.optimizer = optimizer
        self.average = average
        self.fused_sgd = is_plain_sgd(optimizer) and average is None and self.chunk is None
        device = self.weight.device
        self._columns = torch.empty(0, dtype=torch.int64, device=device)
        self._minus_one = torch.tensor(-1.0, device=device)
        if not self.fused_sgd:  # .grad buffers as views of one flat buffer: one all-reduce per step
            self._gradients = torch.zeros(self.weight.numel() + self.bias.numel(), device=device)
            self.weight.grad = self._gradients[: self.weight.numel()].view_as(self.weight)
            self.bias.grad = self._gradients[self.weight.numel() :]

    def residual(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss, p - onehot of shape (10, B), the linear layer's inputs (B, features))."""
        n = labels.shape[0]
        x = self.seen(images, self._inputs)  # (B, 784), or (B, 10192) for pixel pairs: per batch, never for all
        self._inputs = x  # the next batch's features go into the same memory
        log_probs = torch.addmm(self.bias.unsqueeze(1), self.weight, x.t()).log_softmax(0)  # (10, B)
        losses = -log_probs.gather(0, labels.unsqueeze(0))
        weights = self.class_weight[labels] if self.class_weight is not None else None
        loss = (losses * weights).mean() if weights is not None else losses.mean()
        residual = log_probs.exp_()  # softmax, in place
        residual.index_put_((labels, self._column_indices(n)), self._minus_one, accumulate=True)  # p - onehot
        if weights is not None:  # d(w · loss)/dz = w (p - onehot), column by column
            residual.mul_(weights)
        return loss, residual, x

    def _accumulate(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Σ over chunks of the batch of (p - onehot)ᵀ X, divided by the batch's size, into the
        .grad buffers; returns the batch's mean loss. The same sums as one product, in pieces."""
        n = labels.shape[0]
        self._gradients.zero_()
        loss = torch.zeros((), device=self.weight.device)
        for start in range(0, n, self.chunk):
            part, residual, x = self.residual(images[start : start + self.chunk], labels[start : start + self.chunk])
            loss.add_(part, alpha=residual.shape[1])
            self.weight.grad.addmm_(residual, x)
            self.bias.grad.add_(residual.sum(1))
        self._gradients.div_(n)
        return loss.div_(n)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.chunk is not None:
            loss = self._accumulate(images, labels)
        else:
            loss, residual, x = self.residual(images, labels)
            n = labels.shape[0]
            if self.fused_sgd:
                step = -self.optimizer.param_groups[0]["lr"] / n
                self.weight.addmm_(residual, x, alpha=step)  # W -= lr · (p - onehot)ᵀ X / B
                self.bias.add_(residual.sum(1), alpha=step)
                return loss
            residual.div_(n)
            torch.mm(residual, x, out=self.weight.grad)
            torch.sum(residual, 1, out=self.bias.grad)
        if self.average is not None:
            self.average(self._gradients)
        self.optimizer.step()
        return loss

    def _column_indices(self, n: int) -> torch.Tensor:
        if self._columns.numel() < n:
            self._columns = torch.arange(n, device=self.weight.device)
        return self._columns[:n]


class TrainingLoss(nn.Module):
    """A model's own ``training_step`` as a module's forward, so that DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model.training_step((images, labels))


class AutogradStep:
    """One optimisation step the lesson's way: ``training_step``, ``backward``, ``step``, ``zero_grad``.

    With ``data_parallel`` (a process group is running), the loss goes through
    DistributedDataParallel, which averages the gradients across the processes during backward.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, data_parallel: bool = False) -> None:
        self.optimizer = optimizer
        self.loss = TrainingLoss(model)
        if data_parallel:
            from torch.nn.parallel import DistributedDataParallel

            self.loss = DistributedDataParallel(self.loss)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = self.loss(images, labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        return loss.detach()


class NonFiniteLoss(ArithmeticError):
    """A loss was NaN or infinite: training has diverged (usually a learning rate far too large)."""


def is_plain_sgd(optimizer: torch.optim.Optimizer) -> bool:
    """True for torch.optim.SGD with one parameter group and no momentum, weight decay or extras."""
    if type(optimizer) is not torch.optim.SGD or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    return group["momentum"] == 0 and group["weight_decay"] == 0 and not group["maximize"] and not group["nesterov"]


def uses_closed_form(model: nn.Module) -> bool:
    """True when ``model`` computes exactly MNISTModel's loss, so its gradient has a closed form."""
    cls = type(model)
    return (
        isinstance(model, MNISTModel)
        and cls.forward is MNISTModel.forward
        and cls.training_step is MNISTModel.training_step
        and not model._forward_hooks
        and not model._forward_pre_hooks
    )


def fit(
    epochs: int,
    lr: float,
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    opt_func: Callable[..., torch.optim.Optimizer] = torch.optim.SGD,
    *,
    schedule: Callable[[float], float] | None = None,
    closed_form: bool | None = None,
    progress: bool = False,
    verbose: bool = True,
    on_epoch_end: Callable[..., None] | None = None,
    start_epoch: int = 0,
    optimizer_state: dict | None = None,
) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs, validating after each; return the history.

    The lesson's ``fit``, with the same positional arguments. Each history entry holds
    ``val_loss``, ``val_acc``, ``train_loss`` (mean over the epoch's images) and ``seconds``
    (the epoch's wall time, validation included).

    Parameters
    ----------
    schedule : learning-rate multiplier as a function of training progress in [0, 1), applied
        every step; ``None`` keeps ``lr`` constant, as the lesson does.
    closed_form : compute gradients in closed form (default: whenever ``uses_closed_form``).
    progress : show a tqdm progress bar over each epoch's batches.
    verbose : print the lesson's ``Epoch [n], val_loss: ..., val_acc: ...`` line per epoch.
    on_epoch_end : called with each epoch's result and the optimizer once the epoch is complete
        (to keep a checkpoint).

    Raises NonFiniteLoss at the first loss that is not finite (a step's, or the validation's).
    start_epoch, optimizer_state : resume a run: the epochs before ``start_epoch`` are done, and
        the optimizer continues from this state (the loaders' random state is the caller's).

    Under torchrun, with a process group started (``distributed.start``) and each process's
    ``train_loader`` giving its shard of every batch (``loaders.shard_batches``), ``fit`` trains
    one model data-parallel: gradients are averaged across the processes every step, the
    reported ``train_loss`` is over every process's images, and only rank 0 prints.
    """
    if closed_form is None:
        closed_form = uses_closed_form(model)
    processes = distributed.current()
    optimizer = opt_func(model.parameters(), lr)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    if closed_form:
        train_step = ClosedFormStep(model, optimizer, distributed.average_ if processes.parallel else None)
    else:
        train_step = AutogradStep(model, optimizer, data_parallel=processes.parallel)
    progress = progress and processes.is_main
    verbose = verbose and processes.is_main
    device = _device_of(model)
    steps_per_epoch = len(train_loader) if schedule is not None else None  # a schedule needs the run's length
    history = []
    for epoch in range(start_epoch, epochs):
        start = time.perf_counter()
        # Σ loss · images over this process's images, in float64: finite losses never sum to inf
        loss_sum = torch.zeros((), device=device, dtype=torch.float64)
        seen = 0
        bar = _progress_bar(train_loader, f"epoch {epoch + 1}/{epochs}") if progress else contextlib.nullcontext()
        with bar:  # closed however the epoch ends, so that no half-drawn bar precedes a message
            for step, batch in enumerate(train_loader):
                if schedule is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = lr * schedule((epoch * steps_per_epoch + step) / (epochs * steps_per_epoch))
                images, labels = _to(batch, device)
                loss = train_step(images, labels)
                if not torch.isfinite(loss):  # every later step would only spread the NaN
                    raise NonFiniteLoss(
                        f"the training loss became {float(loss)} at step {step + 1} of epoch {epoch + 1}"
                    )
                loss_sum.add_(loss, alpha=labels.shape[0])
                seen += labels.shape[0]
                if progress:
                    bar.update()
        result = evaluate(model, val_loader)  # every process holds the same weights: the same result
        if not math.isfinite(result["val_loss"]):  # the epoch's last step left the weights unusable
            raise NonFiniteLoss(f"the validation loss became {result['val_loss']} after epoch {epoch + 1}")
        if processes.parallel:  # the mean over every process's images
            loss_sum, seen = distributed.sum_(torch.stack([loss_sum, loss_sum.new_tensor(seen)])).tolist()
        result["train_loss"] = float(loss_sum) / seen
        result["seconds"] = time.perf_counter() - start
        history.append(result)
        if on_epoch_end is not None:
            on_epoch_end(result, optimizer)
        if verbose:  # after the checkpoint: an epoch that has been reported is an epoch that is kept
            model.epoch_end(epoch, result)
    optimizer.zero_grad()  # no gradient buffers left behind: the lesson's loop ends with none either
    return history


def _progress_bar(loader: Iterable, description: str):
    """A bar over one epoch's batches that never touches the loader itself.

    Wrapping the loader (``tqdm(loader)``) lets the bar iterate it: tqdm.auto's asyncio variant
    calls ``iter()`` in its constructor, and each extra ``iter()`` of a shuffling DataLoader
    draws from its generator, so the epoch would train on other batches. The bar is only told
    how far the loop has got.
    """
    from tqdm.auto import tqdm

    total = len(loader) if hasattr(loader, "__len__") else None
    return tqdm(total=total, desc=description, leave=False, unit="batch")


def fit_config(
    config: TrainConfig, model: nn.Module, train_loader: Iterable, val_loader: Iterable, **options
) -> list[dict]:
    """``fit`` with a TrainConfig's epochs, learning rate, optimizer and schedule; ``options`` go to ``fit``."""
    return fit(
        config.epochs,
        config.lr,
        model,
        train_loader,
        val_loader,
        make_opt_func(config, _device_of(model)),
        schedule=SCHEDULES[config.schedule],
        **options,
    )
