"""The lesson's pipeline, copied faithfully: the baseline the benchmark measures against.

Only two things are added, both outside the lesson's code paths: the split and the shuffle
take seeded generators, so that for the same seed this pipeline sees exactly the batches the
``notebook`` preset sees, and ``fit`` records each epoch's wall time.
"""

import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as transforms
from torch.utils.data import DataLoader, random_split
from torchvision.datasets import MNIST

input_size = 28 * 28
num_classes = 10


def accuracy(outputs, labels):
    _, preds = torch.max(outputs, dim=1)
    return torch.tensor(torch.sum(preds == labels).item() / len(preds))


class MNISTModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(input_size, num_classes)

    def forward(self, xb):
        xb = xb.reshape(-1, 784)
        out = self.linear(xb)
        return out

    def training_step(self, batch):
        images, labels = batch
        out = self(images)
        loss = F.cross_entropy(out, labels)
        return loss

    def validation_step(self, batch):
        images, labels = batch
        out = self(images)
        loss = F.cross_entropy(out, labels)
        acc = accuracy(out, labels)
        return {"val_loss": loss, "val_acc": acc}

    def validation_epoch_end(self, outputs):
        batch_losses = [x["val_loss"] for x in outputs]
        epoch_loss = torch.stack(batch_losses).mean()
        batch_accs = [x["val_acc"] for x in outputs]
        epoch_acc = torch.stack(batch_accs).mean()
        return {"val_loss": epoch_loss.item(), "val_acc": epoch_acc.item()}

    def epoch_end(self, epoch, result):
        print("Epoch [{}], val_loss: {:.4f}, val_acc: {:.4f}".format(epoch, result["val_loss"], result["val_acc"]))


def evaluate(model, val_loader):
    outputs = [model.validation_step(batch) for batch in val_loader]
    return model.validation_epoch_end(outputs)


def fit(epochs, lr, model, train_loader, val_loader, opt_func=torch.optim.SGD):
    optimizer = opt_func(model.parameters(), lr)
    history = []
    for epoch in range(epochs):
        start = time.perf_counter()  # added: the benchmark's clock
        for batch in train_loader:
            loss = model.training_step(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        result = evaluate(model, val_loader)
        result["seconds"] = time.perf_counter() - start  # added
        model.epoch_end(epoch, result)
        history.append(result)
    return history


def run(data_dir, epochs, seed, batch_size=128, lr=0.001):
    """The lesson from dataset to trained model; returns (history, test accuracy)."""
    dataset = MNIST(root=data_dir, train=True, transform=transforms.ToTensor())
    train_ds, val_ds = random_split(dataset, [50000, 10000], generator=torch.Generator().manual_seed(seed))
    train_loader = DataLoader(train_ds, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    val_loader = DataLoader(val_ds, batch_size)
    torch.manual_seed(seed)
    model = MNISTModel()
    history = fit(epochs, lr, model, train_loader, val_loader)
    test_dataset = MNIST(root=data_dir, train=False, transform=transforms.ToTensor())
    test_loader = DataLoader(test_dataset, batch_size=256)
    return history, evaluate(model, test_loader)["val_acc"]
