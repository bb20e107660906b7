"""tinytorch.perf.compression: exact counts, pruned models against their unpruned twins, and
torch (CPU, float64 and float32) as the oracle of the distillation loss and the SVD.

Magnitude pruning removes exactly round(amount * n) weights per layer or over the model, ties
included (hypothesis draws shapes, amounts and weights with many ties); the masks survive
optimizer steps when re-applied; sparsity is 0.0 for a model without weight matrices. A
channel-pruned model computes exactly what the original computes with those channels zeroed
(Conv2d + BatchNorm2d + Flatten + Linear, training and evaluation mode). low_rank at full
rank reproduces the Linear, and at rank r its error is the dropped singular values. The
distillation loss and its gradient agree with torch's kl_div and cross_entropy. CSR bytes
match a hand count.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import GRADIENTS
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD, Adam
from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.core.training import Trainer
from tinytorch.perf.compression import (
    apply_masks,
    channel_scores,
    csr_nbytes,
    dense_nbytes,
    distillation_loss,
    low_rank,
    magnitude_prune,
    prune_channels,
    prune_mask,
    soft_target_kl,
    sparsity,
    weight_matrices,
)

SETTINGS = settings(max_examples=25, deadline=None)


def mlp(sizes, seed=0):
    manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [Linear(fan_in, fan_out), ReLU()]
    return Sequential(*layers[:-1])


# --- sparsity -----------------------------------------------------------------------------------

def test_sparsity_of_nothing_is_zero_not_a_division_by_zero():
    assert sparsity(Sequential(ReLU())) == 0.0
    assert sparsity(Sequential()) == 0.0
    assert sparsity(np.zeros((0, 3))) == 0.0
    assert sparsity(Tensor(np.zeros(0))) == 0.0


def test_sparsity_pools_the_matrices_and_ignores_vectors():
    model = mlp([100, 10, 1])
    model[0].weight.data[:90] = 0                    # 900 of the 1000 entries
    model[0].bias.data[...] = 0                      # a vector: never counted
    assert sparsity(model) == 900 / 1010
    assert set(weight_matrices(model)) == {"0.weight", "2.weight"}
    assert sparsity(np.array([[0.0, -0.0], [1e-30, 2.0]])) == 0.5


# --- magnitude pruning --------------------------------------------------------------------------

weights_with_ties = st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(0, 1000),
                              st.integers(1, 4))


def tied(shape, seed, levels):
    """Weights drawn from only `levels` distinct magnitudes (and both signs): many ties."""
    rng = np.random.default_rng(seed)
    return (rng.integers(1, levels + 1, size=shape) * rng.choice([-1, 1], size=shape)
            ).astype(np.float32)


@SETTINGS
@given(weights_with_ties, st.floats(0, 1), st.sampled_from(["layer", "global"]))
def test_pruning_removes_exactly_round_amount_weights_even_with_ties(case, amount, scope):
    rows, cols, seed, levels = case
    model = mlp([rows, cols, 3], seed)
    for p in weight_matrices(model).values():
        p.data[...] = tied(p.shape, seed, levels)
    before = {name: np.abs(p.data).copy() for name, p in weight_matrices(model).items()}
    masks = magnitude_prune(model, amount, scope=scope)
    sizes = {name: p.size for name, p in weight_matrices(model).items()}
    if scope == "layer":
        for name, size in sizes.items():
            assert (~masks[name]).sum() == round(amount * size)
            assert (weight_matrices(model)[name].data == 0).sum() == round(amount * size)
    else:
        total = sum(sizes.values())
        assert sum((~m).sum() for m in masks.values()) == round(amount * total)
        assert sparsity(model) == round(amount * total) / total
        # every pruned weight is no larger than every kept one, across layers
        pruned = np.concatenate([before[n][~m] for n, m in masks.items()])
        kept = np.concatenate([before[n][m] for n, m in masks.items()])
        if len(pruned) and len(kept):
            assert pruned.max() <= kept.min()


def test_prune_mask_ranks_ties_in_row_major_order():
    assert prune_mask(np.ones(10), 0.3).tolist() == [False] * 3 + [True] * 7
    assert prune_mask(np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 0.5]]), 0.5).tolist() == [
        [False, False, True], [True, True, False]]


def test_global_pruning_prunes_the_layer_of_small_weights_more():
    model = mlp([50, 20, 10])
    model[2].weight.data *= 10
    magnitude_prune(model, 0.5, scope="global")
    assert sparsity(model[0].weight) > 0.5 > sparsity(model[2].weight)


def test_pruning_again_never_revives_a_weight():
    model = mlp([12, 8, 4])
    first = magnitude_prune(model, 0.5)
    second = magnitude_prune(model, 0.8)
    for name in first:
        assert not (second[name] & ~first[name]).any()
    assert sparsity(model) == pytest.approx(0.8, abs=1 / 128)


@pytest.mark.parametrize("optimizer", [lambda p: SGD(p, lr=0.1, momentum=0.9),
                                       lambda p: Adam(p, lr=0.01)], ids=["sgd", "adam"])
def test_masks_survive_fine_tuning_when_applied_after_every_step(optimizer):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 12)).astype(np.float32), rng.integers(0, 3, 64)
    model = mlp([12, 16, 3])
    masks = magnitude_prune(model, 0.9, scope="global")
    level = sparsity(model)
    trainer = Trainer(model, CrossEntropyLoss(), optimizer(model.parameters()), seed=0)
    steps = []

    def after_step(loss):
        regrown = sparsity(model)
        apply_masks(model, masks)
        steps.append((regrown, sparsity(model)))

    trainer.train_epoch(x, y, batch_size=16, on_batch=after_step)
    assert len(steps) == 4
    assert all(regrown < level for regrown, _ in steps), "the optimizer regrows pruned weights"
    assert all(after == level for _, after in steps)
    for name, p in weight_matrices(model).items():
        assert not p.data[~masks[name]].any()


def test_bad_arguments_are_one_line_errors():
    model = mlp([4, 3, 2])
    for amount in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="amount"):
            magnitude_prune(model, amount)
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(model, 0.5, scope="row")
    with pytest.raises(ValueError, match="no parameter"):
        apply_masks(model, {"5.weight": np.ones((3, 2), bool)})
    with pytest.raises(ValueError, match="shape"):
        apply_masks(model, {"0.weight": np.ones((3, 4), bool)})


# --- sizes --------------------------------------------------------------------------------------

def test_csr_bytes_match_a_hand_count():
    matrix = np.array([[5, 0, 0, 1], [0, 0, 0, 0], [0, 7, 0, 0]], dtype=np.float32)
    # values 3 x 4 bytes, column indices 3 x 4 (int32), row pointers (3 + 1) x 4
    assert csr_nbytes(matrix) == 12 + 12 + 16
    assert dense_nbytes(matrix) == 48
    kernel = np.zeros((4, 2, 3, 3), dtype=np.float32)        # as a (4, 18) matrix
    kernel[0, 1, 2, 2] = 1.0
    assert csr_nbytes(kernel) == 8 + 5 * 4
    model = mlp([4, 3, 2])
    model[0].weight.data[0] = 0                              # 9 of 12 left in layer 0
    assert csr_nbytes(model) == (9 * 8 + 5 * 4) + 3 * 4 + (6 * 8 + 4 * 4) + 2 * 4
    assert dense_nbytes(model) == (12 + 3 + 6 + 2) * 4


def test_csr_is_smaller_only_above_about_half_sparsity():
    w = np.random.default_rng(0).standard_normal((784, 128)).astype(np.float32)
    half = w * prune_mask(np.abs(w), 0.49)
    most = w * prune_mask(np.abs(w), 0.52)
    assert csr_nbytes(half) > dense_nbytes(half) and csr_nbytes(most) < dense_nbytes(most)


# --- structured pruning -------------------------------------------------------------------------

def conv_bn_linear(seed=0):
    manual_seed(seed)
    model = Sequential(Conv2d(2, 6, 3, padding=1), BatchNorm2d(6), ReLU(), MaxPool2d(2),
                       Conv2d(6, 8, 3, padding=1), BatchNorm2d(8), ReLU(),
                       Flatten(), Linear(8 * 3 * 4, 10), ReLU(), Linear(10, 4))
    rng = np.random.default_rng(seed)
    for bn in (model[1], model[5]):
        bn.weight.data[...] = rng.uniform(0.5, 2.0, bn.num_features)
        bn.bias.data[...] = rng.standard_normal(bn.num_features)
        bn.running_mean = rng.standard_normal(bn.num_features).astype(np.float32)
        bn.running_var = rng.uniform(0.5, 2.0, bn.num_features).astype(np.float32)
    return model


def zeroed_twin(model, amount):
    """The original model (a copy) with the channels prune_channels would drop set to zero:
    the weights and bias that make each channel and, behind a Conv2d, BatchNorm's scale and
    shift, so that the channel is exactly 0 everywhere after."""
    twin = prune_channels(model, 0.0)                        # a plain deep copy
    layers = list(twin)
    ends = [i for i, layer in enumerate(layers) if isinstance(layer, (Conv2d, Linear))]
    for i in ends[:-1]:
        layer = layers[i]
        scores = channel_scores(layer)
        drop = np.sort(np.argsort(-scores, kind="stable")[len(scores) - round(amount * len(scores)):])
        if isinstance(layer, Conv2d):
            layer.weight.data[drop] = 0
            if isinstance(layers[i + 1], BatchNorm2d):
                layers[i + 1].weight.data[drop] = 0
                layers[i + 1].bias.data[drop] = 0
        else:
            layer.weight.data[:, drop] = 0
        layer.bias.data[drop] = 0
    return twin


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("amount", [0.25, 0.5, 0.75])
def test_pruned_channels_compute_what_the_zeroed_original_computes(amount, training):
    model = conv_bn_linear().train(training)
    state = model.state_dict()
    pruned = prune_channels(model, amount)
    twin = zeroed_twin(model, amount).train(training)
    x = Tensor(np.random.default_rng(1).standard_normal((5, 2, 7, 8)))
    np.testing.assert_allclose(pruned(x).data, twin(x).data, rtol=1e-5, atol=1e-6)
    assert all(np.array_equal(state[k], v) for k, v in model.state_dict().items()), (
        "the original model must not change")
    kept = [6 - round(amount * 6), 8 - round(amount * 8), 10 - round(amount * 10)]
    assert (pruned[0].out_channels, pruned[1].num_features, pruned[4].in_channels) == (
        kept[0], kept[0], kept[0])
    assert pruned[1].running_mean.shape == (kept[0],) and pruned[5].running_var.shape == (kept[1],)
    assert pruned[8].weight.shape == (kept[1] * 12, kept[2]) and pruned[10].weight.shape == (kept[2], 4)
    assert pruned.training == training


def test_pruned_model_is_smaller_and_still_trains():
    model = conv_bn_linear()
    pruned = prune_channels(model, 0.5)
    assert dense_nbytes(pruned) < 0.5 * dense_nbytes(model)
    x = Tensor(np.random.default_rng(2).standard_normal((4, 2, 7, 8)))
    loss = CrossEntropyLoss()(pruned(x), np.array([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in pruned.parameters())


def test_channel_scores_are_l1_norms_per_output():
    conv = Conv2d(3, 5, 3)
    linear = Linear(7, 4)
    np.testing.assert_allclose(channel_scores(conv), np.abs(conv.weight.data).reshape(5, -1).sum(1), rtol=1e-6)
    np.testing.assert_allclose(channel_scores(linear), np.abs(linear.weight.data).sum(0), rtol=1e-6)


def test_prune_channels_refuses_what_it_cannot_cut():
    with pytest.raises(TypeError, match="Sequential"):
        prune_channels(Linear(3, 2), 0.5)
    with pytest.raises(TypeError, match="cannot cut"):
        prune_channels(Sequential(Linear(3, 4), Sequential(Linear(4, 4)), Linear(4, 2)), 0.5)
    assert prune_channels(mlp([5, 6, 2]), 1.0)[0].out_features == 1


# --- low rank -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(9, 5), (5, 9), (16, 16)])
def test_low_rank_at_full_rank_reproduces_the_linear(shape):
    manual_seed(3)
    linear = Linear(*shape)
    factored = low_rank(linear, min(shape))
    x = Tensor(np.random.default_rng(0).standard_normal((6, shape[0])))
    np.testing.assert_allclose(factored(x).data, linear(x).data, atol=1e-6)
    assert factored[0].bias is None and np.array_equal(factored[1].bias.data, linear.bias.data)
    assert factored[0].weight.dtype == np.float32


@pytest.mark.parametrize("rank", [1, 2, 4, 7])
def test_low_rank_error_is_the_dropped_singular_values(rank):
    manual_seed(4)
    linear = Linear(12, 8)
    w = torch.from_numpy(linear.weight.data.astype(np.float64))
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    best = (u[:, :rank] * s[:rank]) @ vh[:rank]
    factored = low_rank(linear, rank)
    product = factored[0].weight.data.astype(np.float64) @ factored[1].weight.data
    np.testing.assert_allclose(product, best.numpy(), atol=1e-6)
    error = np.linalg.norm(linear.weight.data - product)
    assert error == pytest.approx(float(torch.sqrt((s[rank:] ** 2).sum())), abs=1e-5)
    assert sum(p.size for p in factored.parameters()) == rank * (12 + 8) + 8


def test_low_rank_refuses_a_rank_out_of_range():
    for rank in (0, 9, 2.5):
        with pytest.raises(ValueError, match="rank"):
            low_rank(Linear(12, 8), rank)


# --- distillation -------------------------------------------------------------------------------

def torch_distillation(student, teacher, targets, temperature, alpha):
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1), F.softmax(teacher / temperature, dim=1),
                    reduction="batchmean")
    return alpha * temperature ** 2 * soft + (1 - alpha) * F.cross_entropy(student, targets)


@SETTINGS
@given(st.integers(1, 6), st.integers(2, 7), st.floats(0.5, 8.0), st.floats(0.0, 1.0), st.integers(0, 1000))
def test_distillation_loss_and_gradient_match_torch(rows, classes, temperature, alpha, seed):
    rng = np.random.default_rng(seed)
    z, t = rng.standard_normal((rows, classes)) * 3, rng.standard_normal((rows, classes)) * 3
    y = rng.integers(0, classes, rows)
    student = Tensor(z, dtype=np.float64, requires_grad=True)
    loss = distillation_loss(student, t, y, temperature=temperature, alpha=alpha)
    loss.backward()
    zt = torch.tensor(z, requires_grad=True)
    want = torch_distillation(zt, torch.tensor(t), torch.tensor(y), temperature, alpha)
    want.backward()
    assert loss.item() == pytest.approx(want.item(), rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(student.grad.data, zt.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_distillation_stays_float32_and_the_teacher_gets_no_gradient():
    rng = np.random.default_rng(0)
    student = Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    teacher = Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    loss = distillation_loss(student, teacher, np.array([0, 1, 2, 3]))
    loss.backward()
    assert loss.dtype == np.float32 and student.grad.dtype == np.float32
    assert teacher.grad is None
    assert "soft_target_kl" in GRADIENTS
    assert soft_target_kl(student, student.data, 2.0).item() == pytest.approx(0.0, abs=1e-7)


def test_distillation_refuses_bad_settings():
    z = Tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(z, np.zeros((2, 3)), np.array([0, 1]), temperature=0.0)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(z, np.zeros((2, 3)), np.array([0, 1]), alpha=1.5)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        soft_target_kl(z, np.zeros((3, 3)), 1.0)
