"""tinytorch.core.tensor against NumPy and PyTorch (CPU, float32) as oracles.

Shapes and values come from hypothesis; every operation is checked for its values, its
float32 dtype, and for leaving its operands untouched.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinytorch.core.tensor import Tensor

SETTINGS = settings(max_examples=30, deadline=None)
TOL = dict(rtol=1e-5, atol=1e-5)

values = st.floats(-10, 10, width=32)
nonzero = st.one_of(st.floats(-10, -0.5, width=32), st.floats(0.5, 10, width=32))
positive = st.floats(0.5, 10, width=32)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def arrays(shape, elements=values):
    return hnp.arrays(np.float32, shape, elements=elements)


def check(got, expected, *, dtype=np.float32):
    """`got` is a Tensor equal to `expected` (a NumPy array or torch tensor), with `dtype`."""
    expected = expected.numpy() if isinstance(expected, torch.Tensor) else np.asarray(expected)
    assert isinstance(got, Tensor), f"expected a Tensor, got {type(got).__name__}"
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {np.dtype(dtype)}"
    if got.dtype == np.bool_:
        np.testing.assert_array_equal(got.data, expected)
    else:
        np.testing.assert_allclose(got.data, expected, **TOL)


BINARY = {
    "add": (operator.add, torch.add),
    "sub": (operator.sub, torch.sub),
    "mul": (operator.mul, torch.mul),
    "div": (operator.truediv, torch.div),
}


@st.composite
def broadcast_pairs(draw, right=values):
    shapes_ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4))
    a_shape, b_shape = shapes_.input_shapes
    return draw(arrays(a_shape)), draw(arrays(b_shape, right))


# --- creation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, shape",
    [(3, ()), (2.5, ()), ([1, 2, 3], (3,)), ([[1.5, 2], [3, 4]], (2, 2)),
     (np.arange(6).reshape(2, 3), (2, 3)), (np.ones((2, 1), dtype=np.float64), (2, 1)),
     (np.float64(1.5), ())],
)
def test_creation_makes_float32(data, shape):
    t = Tensor(data)
    assert isinstance(t.data, np.ndarray) and t.shape == shape and t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float32))
    assert t.requires_grad is False and t.grad is None


def test_creation_dtype_rules():
    assert Tensor([True, False]).dtype == np.bool_
    assert Tensor(np.array([True])).dtype == np.bool_
    assert Tensor([1, 2], dtype=np.int64).dtype == np.int64
    assert Tensor([1.5], dtype=np.float64).dtype == np.float64
    assert Tensor(Tensor([1, 2])).dtype == np.float32
    assert Tensor([1.0], requires_grad=True).requires_grad is True


@given(arrays(shapes))
@SETTINGS
def test_creation_copies(array):
    original = array.copy()
    t = Tensor(array)
    array[...] = 99.0
    np.testing.assert_array_equal(t.data, original)
    u = Tensor(t)
    t.data[...] = -99.0
    np.testing.assert_array_equal(u.data, original)


def test_properties_and_repr():
    t = Tensor([[1, 2, 3], [4, 5, 6]])
    assert (t.shape, t.size, t.ndim, len(t), t.dtype) == ((2, 3), 6, 2, 2, np.float32)
    assert Tensor([4.5]).item() == 4.5 and isinstance(Tensor(2).item(), float)
    assert t.numpy() is t.data
    assert repr(Tensor([[1, 2]])) == "Tensor([[1., 2.]], shape=(1, 2), dtype=float32)"
    assert repr(Tensor([1.0], requires_grad=True)) == (
        "Tensor([1.], shape=(1,), dtype=float32, requires_grad=True)")
    with pytest.raises(ValueError):
        bool(Tensor([1.0, 2.0]))
    assert bool(Tensor([0.0]) == 0)


def test_tensors_hash_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2 and {a: "a", b: "b"}[b] == "b"


# --- arithmetic and broadcasting ----------------------------------------------------------------


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
@SETTINGS
def test_binary_ops_broadcast_like_numpy_and_torch(name, data):
    a, b = data.draw(broadcast_pairs(right=nonzero if name == "div" else values))
    fn, torch_fn = BINARY[name]
    a0, b0 = a.copy(), b.copy()
    ta, tb = Tensor(a), Tensor(b)
    out = fn(ta, tb)
    check(out, fn(a, b))
    check(out, torch_fn(torch.tensor(a), torch.tensor(b)))
    np.testing.assert_array_equal(ta.data, a0)
    np.testing.assert_array_equal(tb.data, b0)


@pytest.mark.parametrize("name", BINARY)
@given(array=arrays(shapes, nonzero), number=st.one_of(nonzero, st.integers(1, 5)))
@SETTINGS
def test_number_on_either_side(name, array, number):
    fn, torch_fn = BINARY[name]
    t, x = Tensor(array), torch.tensor(array)
    check(fn(t, number), torch_fn(x, number))
    check(fn(number, t), torch_fn(torch.tensor(number, dtype=torch.float32), x))
    check(fn(t, np.float64(number)), torch_fn(x, number))       # no float64 leak
    check(fn(np.float64(number), t), fn(np.float32(number), array))
    np.testing.assert_array_equal(t.data, array)


@given(array=arrays(shapes, positive), exponent=st.sampled_from([2, 3, 0.5, -1, 1.5]))
@SETTINGS
def test_pow_and_neg(array, exponent):
    t, x = Tensor(array), torch.tensor(array)
    check(t ** exponent, x ** exponent)
    check(t ** np.float64(exponent), x ** exponent)
    check(-t, -x)
    np.testing.assert_array_equal(t.data, array)


def test_incompatible_shapes_raise():
    with pytest.raises(ValueError):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(2))


def test_explicit_dtype_is_kept_by_arithmetic():
    assert (Tensor([1.0], dtype=np.float64) * 2).dtype == np.float64
    mask = Tensor([1.0, -1.0]) > 0
    check(mask * -10.0, [-10.0, 0.0])


# --- matmul -------------------------------------------------------------------------------------


@st.composite
def matmul_pairs(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    a_shape, b_shape = draw(st.sampled_from([
        ((m, k), (k, n)), ((k,), (k, n)), ((m, k), (k,)), ((k,), (k,)),
        (batch + (m, k), (k, n)), (batch + (m, k), batch + (k, n)), ((m, k), batch + (k, n)),
    ]))
    return draw(arrays(a_shape)), draw(arrays(b_shape))


@given(matmul_pairs())
@SETTINGS
def test_matmul_like_torch(pair):
    a, b = pair
    ta, tb = Tensor(a), Tensor(b)
    expected = torch.matmul(torch.tensor(a), torch.tensor(b))
    check(ta @ tb, expected)
    check(ta.matmul(tb), expected)
    np.testing.assert_array_equal(ta.data, a)
    np.testing.assert_array_equal(tb.data, b)


@pytest.mark.parametrize("a_shape, b_shape, inner", [
    ((2, 3), (4, 5), (3, 4)), ((3,), (4,), (3, 4)), ((2, 3), (2,), (3, 2)), ((5, 2, 3), (4, 1), (3, 4)),
])
def test_matmul_mismatch_names_both_shapes(a_shape, b_shape, inner):
    with pytest.raises(ValueError) as error:
        Tensor(np.ones(a_shape)) @ Tensor(np.ones(b_shape))
    message = str(error.value)
    assert message.startswith("matmul: cannot multiply shapes")
    assert str(a_shape) in message and str(b_shape) in message
    assert f"inner dimensions {inner[0]} and {inner[1]} must match" in message


def test_matmul_exact_message():
    with pytest.raises(ValueError, match=r"^matmul: cannot multiply shapes \(2, 3\) and \(4, 5\): "
                                         r"the inner dimensions 3 and 4 must match$"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


# --- reductions ---------------------------------------------------------------------------------


@st.composite
def array_and_axis(draw):
    array = draw(arrays(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)))
    ndim = array.ndim
    axis = draw(st.one_of(
        st.none(),
        st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple),
    ))
    return array, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["sum", "mean", "max"])
@given(case=array_and_axis())
@SETTINGS
def test_reductions_like_torch(name, case):
    array, axis, keepdims = case
    x = torch.tensor(array)
    dims = tuple(range(array.ndim)) if axis is None else axis
    expected = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}[name](x, dim=dims, keepdim=keepdims)
    t = Tensor(array)
    got = getattr(t, name)(axis=axis, keepdims=keepdims)
    check(got, expected.numpy().reshape(getattr(np, name)(array, axis=axis, keepdims=keepdims).shape))
    np.testing.assert_array_equal(t.data, array)


def test_reduction_defaults_reduce_everything():
    x = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.sum().shape == () and x.sum().item() == 21
    assert x.mean().item() == 3.5 and x.max().item() == 6
    check(x - x.mean(axis=1, keepdims=True), [[-1, 0, 1], [-1, 0, 1]])


# --- shapes and indexing ------------------------------------------------------------------------


@given(array=arrays(shapes), data=st.data())
@SETTINGS
def test_reshape_and_transpose_like_torch(array, data):
    t, x = Tensor(array), torch.tensor(array)
    check(t.reshape(-1), x.reshape(-1))
    check(t.reshape((array.size, 1)), x.reshape(array.size, 1))
    check(t.reshape(1, -1), x.reshape(1, -1))
    axes = tuple(data.draw(st.permutations(range(array.ndim))))
    check(t.transpose(*axes), x.permute(axes))
    check(t.transpose(axes), x.permute(axes))
    check(t.transpose(), x.permute(tuple(reversed(range(array.ndim)))))
    check(t.T, array.T)
    np.testing.assert_array_equal(t.data, array)


@given(arrays(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)), st.data())
@SETTINGS
def test_indexing_like_numpy(array, data):
    t = Tensor(array)
    i = data.draw(st.integers(-array.shape[0], array.shape[0] - 1))
    rows = data.draw(st.lists(st.integers(0, array.shape[0] - 1), min_size=1, max_size=5))
    check(t[i], array[i])
    check(t[1:], array[1:])
    check(t[..., :1], array[..., :1])
    check(t[rows], array[rows])
    check(t[Tensor(rows, dtype=np.int64)], array[rows])
    check(t[t > 0], array[array > 0])
    out = t[i]
    out.data[...] = 123.0
    np.testing.assert_array_equal(t.data, array)


@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge"])
@given(data=st.data())
@SETTINGS
def test_comparisons_like_torch(name, data):
    a, b = data.draw(broadcast_pairs(right=st.sampled_from([-1.0, 0.0, 1.0])))
    a = np.round(a)  # make ties likely
    fn = getattr(operator, name)
    got = fn(Tensor(a), Tensor(b))
    check(got, getattr(torch, name)(torch.tensor(a), torch.tensor(b)), dtype=np.bool_)
    check(fn(Tensor(a), 0.0), fn(a, 0.0), dtype=np.bool_)


# --- the single door for results ----------------------------------------------------------------


def test_every_op_goes_through_result(monkeypatch):
    calls = []
    original = Tensor._result

    def recording(self, data, op, *parents, **saved):
        calls.append((op, parents, saved))
        return original(self, data, op, *parents, **saved)

    monkeypatch.setattr(Tensor, "_result", recording)
    a, b = Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[5.0, 6.0], [7.0, 8.0]])
    cases = [
        (lambda: a + b, "add", (a, b), {}), (lambda: a - b, "sub", (a, b), {}),
        (lambda: a * b, "mul", (a, b), {}), (lambda: a / b, "div", (a, b), {}),
        (lambda: -a, "neg", (a,), {}), (lambda: a ** 2, "pow", (a,), {"exponent": 2}),
        (lambda: a @ b, "matmul", (a, b), {}),
        (lambda: a.sum(axis=1, keepdims=True), "sum", (a,), {"axis": 1, "keepdims": True}),
        (lambda: a.mean(axis=0), "mean", (a,), {"axis": 0, "keepdims": False}),
        (lambda: a.max(), "max", (a,), {"axis": None, "keepdims": False}),
        (lambda: a.reshape(4), "reshape", (a,), {}), (lambda: a.transpose(), "transpose", (a,), {}),
        (lambda: a[0], "getitem", (a,), {}), (lambda: a == b, "eq", (a, b), {}),
        (lambda: a < b, "lt", (a, b), {}),
    ]
    for run, op, parents, saved in cases:
        calls.clear()
        run()
        got_op, got_parents, got_saved = calls[-1]
        assert got_op == op
        assert len(got_parents) == len(parents) and all(g is p for g, p in zip(got_parents, parents))
        assert all(got_saved.get(key) == value for key, value in saved.items()), (op, got_saved)
    for run, op in [(lambda: 2 - a, "sub"), (lambda: 2 / a, "div"), (lambda: a * 2, "mul")]:
        calls.clear()
        run()
        got_op, got_parents, _ = calls[-1]
        assert got_op == op and all(isinstance(p, Tensor) for p in got_parents)
        assert any(p is a for p in got_parents)
