"""tinytorch.core.layers against PyTorch (CPU) as the oracle.

Linear's forward and its hand-written backward are compared with torch.nn.functional.linear
and torch's autograd over shapes drawn by hypothesis (float64 to 1e-10, float32 to 1e-5);
Sequential with module 03's activations against torch.nn.Sequential; the Module API (names,
state_dict, modes) against torch.nn's; Dropout and the initialization by their statistics.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.layers import (
    Dropout,
    Linear,
    Module,
    Parameter,
    Sequential,
    default_generator,
    get_rng_state,
    manual_seed,
    set_rng_state,
)
from tinytorch.core.tensor import Tensor

SETTINGS = settings(max_examples=25, deadline=None)
TOL = {np.float64: dict(rtol=1e-10, atol=1e-10), np.float32: dict(rtol=1e-5, atol=1e-5)}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


@st.composite
def linear_cases(draw):
    """(batch shape, in, out, bias, dtype, seed) for one Linear comparison."""
    batch = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    return (batch, draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.booleans()),
            draw(st.sampled_from([np.float64, np.float32])), draw(st.integers(0, 2**31)))


def make_linear(n_in, n_out, bias, dtype, rng):
    """A tinytorch Linear and its torch twin with the same (random) weights."""
    layer = Linear(n_in, n_out, bias=bias)
    layer.weight = Parameter(rng.standard_normal((n_in, n_out)), dtype=dtype)
    if bias:
        layer.bias = Parameter(rng.standard_normal(n_out), dtype=dtype)
    twin = torch.nn.Linear(n_in, n_out, bias=bias, dtype=TORCH_DTYPE[dtype])
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))      # torch stores (out, in)
        if bias:
            twin.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
    return layer, twin


@SETTINGS
@given(linear_cases())
def test_linear_forward_backward_match_torch(case):
    batch, n_in, n_out, bias, dtype, seed = case
    rng = np.random.default_rng(seed)
    layer, twin = make_linear(n_in, n_out, bias, dtype, rng)
    x = rng.standard_normal(batch + (n_in,)).astype(dtype)
    g = rng.standard_normal(batch + (n_out,)).astype(dtype)

    y = layer(Tensor(x, dtype=dtype))
    tx = torch.tensor(x, requires_grad=True)
    ty = twin(tx)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **TOL[dtype])

    dx = layer.backward(Tensor(g, dtype=dtype))
    ty.backward(torch.from_numpy(g))
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_allclose(dx.data, tx.grad.numpy(), **TOL[dtype])
    assert layer.weight.grad.dtype == dtype
    np.testing.assert_allclose(layer.weight.grad.data, twin.weight.grad.numpy().T, **TOL[dtype])
    if bias:
        np.testing.assert_allclose(layer.bias.grad.data, twin.bias.grad.numpy(), **TOL[dtype])
    else:
        assert layer.bias is None and len(layer.parameters()) == 1


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 4))
def test_linear_gradients_accumulate_like_torch(seed, passes):
    rng = np.random.default_rng(seed)
    layer, twin = make_linear(3, 2, True, np.float64, rng)
    for _ in range(passes):
        x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
        layer(Tensor(x, dtype=np.float64))
        layer.backward(Tensor(g, dtype=np.float64))
        twin(torch.from_numpy(x)).backward(torch.from_numpy(g))
    np.testing.assert_allclose(layer.weight.grad.data, twin.weight.grad.numpy().T, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(layer.bias.grad.data, twin.bias.grad.numpy(), rtol=1e-10, atol=1e-10)
    layer.zero_grad()
    twin.zero_grad()                                   # torch >= 2.0 sets grads to None too
    assert layer.weight.grad is None and twin.weight.grad is None


@SETTINGS
@given(st.integers(0, 2**31), st.integers(1, 4), st.sampled_from([np.float64, np.float32]))
def test_sequential_matches_torch(seed, batch, dtype):
    rng = np.random.default_rng(seed)
    l1, t1 = make_linear(3, 5, True, dtype, rng)
    l2, t2 = make_linear(5, 4, True, dtype, rng)
    l3, t3 = make_linear(4, 2, False, dtype, rng)
    model = Sequential(l1, ReLU(), l2, Tanh(), l3, Sigmoid())
    twin = torch.nn.Sequential(t1, torch.nn.ReLU(), t2, torch.nn.Tanh(), t3, torch.nn.Sigmoid())
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()]

    x = rng.standard_normal((batch, 3)).astype(dtype)
    g = rng.standard_normal((batch, 2)).astype(dtype)
    y = model(Tensor(x, dtype=dtype))
    tx = torch.tensor(x, requires_grad=True)
    ty = twin(tx)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **TOL[dtype])
    dx = model.backward(Tensor(g, dtype=dtype))
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(dx.data, tx.grad.numpy(), **TOL[dtype])
    for (name, p), (_, tp) in zip(model.named_parameters(), twin.named_parameters()):
        expected = tp.grad.numpy().T if name.endswith("weight") else tp.grad.numpy()
        np.testing.assert_allclose(p.grad.data, expected, err_msg=name, **TOL[dtype])


class Block(Module):
    def __init__(self):
        super().__init__()
        self.fc = Linear(4, 3)
        self.drop = Dropout(0.2)


class Net(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter([1.0])
        self.block = Block()
        self.head = Sequential(Linear(3, 3), ReLU(), Linear(3, 1, bias=False))


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.drop = torch.nn.Dropout(0.2)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.block = TorchBlock()
        self.head = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1, bias=False))


def test_module_api_matches_torch():
    net, twin = Net(), TorchNet()
    names = [n for n, _ in net.named_parameters()]
    assert names == [n for n, _ in twin.named_parameters()]
    assert list(net.state_dict()) == list(twin.state_dict())
    for name, array in net.state_dict().items():
        expected = tuple(twin.state_dict()[name].shape)
        assert array.shape == (expected[::-1] if name.endswith("weight") else expected), name
    assert [type(c).__name__ for c in net.children()] == ["Block", "Sequential"]
    assert len(net.parameters()) == len(list(twin.parameters())) == 6
    net.eval()
    twin.eval()
    assert net.block.drop.training is twin.block.drop.training is False
    net.train()
    assert net.block.drop.training and net.head.training


def test_load_torch_weights_transposed():
    manual_seed(0)
    net, twin = Net(), TorchNet()
    state = {k: (v.numpy().T if k.endswith("weight") else v.numpy()) for k, v in twin.state_dict().items()}
    net.load_state_dict(state)
    net.eval()
    twin.eval()
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    ours = net.head(net.block.fc(Tensor(x)))
    theirs = twin.head(twin.block.fc(torch.from_numpy(x))).detach().numpy()
    np.testing.assert_allclose(ours.data, theirs, rtol=1e-5, atol=1e-6)


def test_load_state_dict_errors_name_the_problem():
    net = Net()
    good = net.state_dict()
    before = {k: v.copy() for k, v in good.items()}
    with pytest.raises(ValueError, match=r"'block\.fc\.weight'.*\(3, 4\).*\(4, 3\)"):
        net.load_state_dict(dict(good, **{"block.fc.weight": np.zeros((3, 4))}))
    with pytest.raises(ValueError, match="head.0.bias"):
        net.load_state_dict({k: v for k, v in good.items() if k != "head.0.bias"})
    with pytest.raises(ValueError, match="extra"):
        net.load_state_dict(dict(good, extra=np.zeros(1)))
    for name, array in net.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_shared_parameters_once_like_torch():
    shared = Linear(2, 2)
    model = Sequential(shared, Tanh(), shared)
    tshared = torch.nn.Linear(2, 2)
    twin = torch.nn.Sequential(tshared, torch.nn.Tanh(), tshared)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in twin.named_parameters()] == ["0.weight", "0.bias"]


def test_repr_is_readable():
    text = repr(Net())
    assert text.splitlines()[0] == "Net("
    assert "  (block): Block(\n    (fc): Linear(in_features=4, out_features=3, bias=True)\n    (drop): Dropout(p=0.2)\n  )" in text
    assert "(1): ReLU()" in text and "(2): Linear(in_features=3, out_features=1, bias=False)" in text


def test_linear_init_like_torch_default():
    manual_seed(0)
    ours = Linear(256, 512)
    theirs = torch.nn.Linear(256, 512)
    bound = 1 / np.sqrt(256)
    for mine, torchs in [(ours.weight.data, theirs.weight.detach().numpy()), (ours.bias.data, theirs.bias.detach().numpy())]:
        assert np.abs(mine).max() <= bound + 1e-7 and np.abs(torchs).max() <= bound + 1e-7
        assert abs(mine.std() - torchs.std()) < 0.1 * bound
    manual_seed(123)
    a = Linear(3, 4).weight.data.copy()
    manual_seed(123)
    assert np.array_equal(a, Linear(3, 4).weight.data)


def test_the_default_generator_is_public_and_its_state_restores_the_same_draws():
    """Later modules reach module 04's generator through default_generator() and
    get_rng_state()/set_rng_state(), never through its private name."""
    manual_seed(7)
    first = default_generator()
    state = get_rng_state()
    drawn = default_generator().uniform(size=5)
    layer = Linear(3, 4)
    set_rng_state(state)
    assert default_generator() is first, "restoring a state keeps the same generator"
    assert np.array_equal(default_generator().uniform(size=5), drawn)
    assert np.array_equal(Linear(3, 4).weight.data, layer.weight.data)
    assert json.loads(json.dumps(state)) == state, "the state is JSON-able, for checkpoints"
    manual_seed(7)
    assert default_generator() is not first, "manual_seed installs a new generator: look it up"
    assert np.array_equal(default_generator().uniform(size=5), drawn)


@SETTINGS
@given(st.floats(0.0, 0.9), st.integers(0, 2**31))
def test_dropout_statistics_mask_and_eval(p, seed):
    manual_seed(seed)
    drop = Dropout(p)
    x = np.random.default_rng(seed).uniform(1, 2, size=(64, 64))
    y = drop(Tensor(x, dtype=np.float64))
    assert y.dtype == np.float64
    kept = y.data != 0
    assert abs(1 - kept.mean() - p) < 0.05
    np.testing.assert_allclose(y.data[kept], x[kept] / (1 - p), rtol=1e-12)
    g = np.random.default_rng(seed + 1).standard_normal(x.shape)
    np.testing.assert_allclose(drop.backward(Tensor(g, dtype=np.float64)).data, g * kept / (1 - p), rtol=1e-12)
    manual_seed(seed)
    np.testing.assert_array_equal(Dropout(p)(Tensor(x, dtype=np.float64)).data, y.data)
    drop.eval()
    twin = torch.nn.Dropout(p).eval()
    np.testing.assert_array_equal(drop(Tensor(x, dtype=np.float64)).data, twin(torch.from_numpy(x)).numpy())


def test_dropout_rejects_bad_p():
    for p in (-0.1, 1.0, 2, "0.5", None):
        with pytest.raises(ValueError, match="p must"):
            Dropout(p)


# --- buffers: saved with the weights, never learned ---------------------------------------------


class Counted(Module):
    """A buffer reassigned in forward (as BatchNorm2d's running statistics are)."""

    def __init__(self):
        super().__init__()
        self.fc = Linear(2, 2)
        self.register_buffer("seen", np.zeros(2, dtype=np.float32))
        self.register_buffer("spare", None)

    def forward(self, x):
        self.seen = self.seen + x.data.sum(axis=0)
        return self.fc(x)


class TorchCounted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.register_buffer("seen", torch.zeros(2))
        self.register_buffer("spare", None)


def test_buffers_are_saved_loaded_and_never_learned_like_torch():
    model, twin = Sequential(Counted(), Counted()), torch.nn.Sequential(TorchCounted(), TorchCounted())
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in twin.named_buffers()] == ["0.seen", "1.seen"]
    assert sorted(model.state_dict()) == sorted(twin.state_dict())       # torch interleaves; same keys
    assert len(model.parameters()) == len(list(twin.parameters())) == 4
    model(Tensor([[1.0, 2.0], [3.0, 4.0]]))
    state = model.state_dict()
    assert list(state)[-2:] == ["0.seen", "1.seen"] and np.array_equal(state["0.seen"], [4, 6])
    assert model[0]._buffers["seen"] is model[0].seen, "a reassigned buffer stays registered"
    model[0].seen[...] = -1.0
    assert np.array_equal(state["0.seen"], [4, 6]), "state_dict copies buffers"
    fresh = Sequential(Counted(), Counted())
    fresh.load_state_dict(state)
    assert np.array_equal(fresh[0].seen, [4, 6]) and fresh[0].seen.dtype == np.float32
    state["0.seen"][0] = 99.0
    assert fresh[0].seen[0] == 4.0, "load_state_dict copies into the buffer"
    before = fresh.state_dict()
    with pytest.raises(ValueError, match=r"'1\.seen'.*\(3,\).*\(2,\)"):
        fresh.load_state_dict(dict(before, **{"1.seen": np.zeros(3)}))
    with pytest.raises(ValueError, match="0.seen"):
        fresh.load_state_dict({k: v for k, v in before.items() if k != "0.seen"})
    for name, array in fresh.state_dict().items():
        np.testing.assert_array_equal(array, before[name], err_msg=f"a failed load changed {name}")


def test_register_buffer_rules():
    layer = Counted()
    layer.seen = Tensor([5.0, 6.0])                         # a Tensor gives its array
    assert isinstance(layer.seen, np.ndarray) and list(layer.state_dict()) == ["fc.weight", "fc.bias", "seen"]
    layer.spare = np.ones(1)                                # a buffer that was None joins the state
    assert list(layer.state_dict())[-1] == "spare"
    layer.seen = Parameter([1.0, 1.0])                      # a Parameter takes the name over, as in torch
    assert "seen" not in dict(layer.named_buffers()) and "seen" in dict(layer.named_parameters())
    with pytest.raises(KeyError, match="already a parameter"):
        layer.register_buffer("fc", np.zeros(1))
    with pytest.raises(KeyError, match="without '.'"):
        layer.register_buffer("a.b", np.zeros(1))

    class Early(Module):
        def __init__(self):
            self.register_buffer("x", np.zeros(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Early()
    shared = Counted()
    assert [n for n, _ in Sequential(shared, shared).named_buffers()] == ["0.seen"], "each buffer once"
