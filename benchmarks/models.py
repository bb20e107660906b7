"""The models the training benchmark times, each in tinytorch and as its PyTorch twin.

A twin is the same `torch.nn.Sequential`, layer for layer, and `copy_weights` gives it the
tinytorch model's initial weights, so that both compute the same loss on the same batch
(tests/benchmarks/test_training_bench.py checks it). The tinytorch models are the
milestones' own: the digits MLP of milestones/mnist.py, the digits CNN of milestones/cnn.py
(`build_model()`), and the cifar10 milestone's CNN.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MILESTONES = Path(__file__).resolve().parent.parent / "milestones"
CLASSES = 10


def milestone(name: str):
    """milestones/NAME.py as the module milestones.NAME."""
    return importlib.import_module(f"milestones.{name}")


# --- the tinytorch models -----------------------------------------------------------------------

def cifar10_model():
    """The cifar10 milestone's CNN, from its own build_model(): (N, 3, 32, 32) -> 10 logits."""
    return milestone("cifar10").build_model()


def digits_mlp_model():
    """The mnist milestone's MLP: Linear(784, HIDDEN) -> ReLU -> Linear(HIDDEN, 10)."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential

    mnist = milestone("mnist")
    return Sequential(Linear(784, mnist.HIDDEN), ReLU(), Linear(mnist.HIDDEN, CLASSES))


def digits_cnn_model():
    """The cnn milestone's CNN, from its own build_model()."""
    return milestone("cnn").build_model()


# --- the PyTorch twins ----------------------------------------------------------------------------

def torch_twin(model):
    """The torch.nn.Sequential with the same layers as the tinytorch Sequential `model`, holding
    a copy of its weights (float32)."""
    from torch import nn

    layers = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2d":
            layers.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                    stride=layer.stride, padding=layer.padding, bias=layer.bias is not None))
        elif kind == "BatchNorm2d":
            layers.append(nn.BatchNorm2d(layer.num_features, eps=layer.eps, momentum=layer.momentum))
        elif kind == "Linear":
            layers.append(nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None))
        elif kind == "ReLU":
            layers.append(nn.ReLU())
        elif kind == "MaxPool2d":
            layers.append(nn.MaxPool2d(layer.kernel_size, layer.stride))
        elif kind == "Flatten":
            layers.append(nn.Flatten())
        else:
            raise TypeError(f"torch_twin: no PyTorch twin for a {kind} layer")
    twin = nn.Sequential(*layers)
    copy_weights(model, twin)
    return twin


def copy_weights(model, twin) -> None:
    """Copy every parameter (and BatchNorm2d's running statistics) of the tinytorch Sequential
    `model` into the torch Sequential `twin`, layer by layer. tinytorch's Linear keeps its
    weight as (in, out), torch's as (out, in): it is transposed."""
    import torch

    if len(model.layers) != len(twin):
        raise ValueError(f"copy_weights: {len(model.layers)} tinytorch layers but {len(twin)} torch layers")
    with torch.no_grad():
        for layer, twin_layer in zip(model.layers, twin):
            kind = type(layer).__name__
            if kind == "Linear":
                twin_layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.weight.data.T)))
            elif kind in ("Conv2d", "BatchNorm2d"):
                twin_layer.weight.copy_(torch.from_numpy(layer.weight.data))
            else:
                continue
            if layer.bias is not None:
                twin_layer.bias.copy_(torch.from_numpy(layer.bias.data))
            if kind == "BatchNorm2d":
                twin_layer.running_mean.copy_(torch.from_numpy(np.asarray(layer.running_mean)))
                twin_layer.running_var.copy_(torch.from_numpy(np.asarray(layer.running_var)))


# --- what the benchmark trains ------------------------------------------------------------------

@dataclass(frozen=True)
class Spec:
    """One model of the benchmark: how to build it, its input and its optimizer settings."""

    key: str                     # a short name for tables and the command line
    title: str                   # what a reader sees
    build: object                # () -> the tinytorch model
    input_shape: tuple           # one image (or vector)
    batch: int                   # the milestone's batch size
    lr: float                    # SGD's learning rate (momentum 0.9)


def specs() -> list[Spec]:
    """The three models, largest first, with their milestones' batch sizes and learning rates."""
    mnist, cnn, cifar10 = milestone("mnist"), milestone("cnn"), milestone("cifar10")
    return [
        Spec("cifar10_cnn", "cifar10 CNN (milestone cifar10)", cifar10_model, (3, 32, 32), cifar10.BATCH_SIZE,
             cifar10.LR),
        Spec("digits_cnn", "digits CNN (milestone cnn)", digits_cnn_model, (1, 28, 28), cnn.BATCH_SIZE, cnn.LR),
        Spec("digits_mlp", "digits MLP (milestone mnist)", digits_mlp_model, (784,), mnist.BATCH_SIZE, mnist.LR),
    ]


def batch(spec: Spec, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A batch of standard-normal float32 inputs and random class ids (speed does not depend
    on the values)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((spec.batch, *spec.input_shape)).astype(np.float32)
    return x, rng.integers(0, CLASSES, spec.batch)


def pair(spec: Spec, seed: int = 0):
    """(tinytorch model, its torch twin with the same initial weights)."""
    from tinytorch.core.layers import manual_seed

    manual_seed(seed)
    model = spec.build()
    return model, torch_twin(model)
