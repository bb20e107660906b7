"""The hidden-test toolkit (tinytorch.testing) tells right from wrong where one example cannot.

For each of the five classes of misses (contracts between modules, inputs too narrow, side
effects, modes/errors/dtypes, sampling) a deliberately wrong implementation passes the naive
example test a module used to have, and the toolkit catches it; the right one passes both."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch import testing
from tinytorch.core.autograd import GRADIENTS, no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.tensor import Tensor


def fails(check, *args, **kwargs) -> str:
    """The message of the AssertionError `check` must raise."""
    with pytest.raises(AssertionError) as caught:
        check(*args, **kwargs)
    return str(caught.value)


# --- the generated cases -----------------------------------------------------------------------


def test_cases_are_deterministic_and_cover_shapes_magnitudes_and_dtypes():
    first, again = testing.cases(chunk=4), testing.cases(chunk=4)
    assert [c.name for c in first] == [c.name for c in again]
    assert all(np.array_equal(a, b) for c, d in zip(first, again) for a, b in zip(c.arrays, d.arrays))
    shapes = {c.arrays[0].shape for c in first}
    assert {(3, 5), (5, 3), (2, 3, 4, 6), (9, 3), (1,)} <= shapes, "non-square, 4-D, a batch beyond the chunk"
    assert {c.dtype for c in first} == {np.dtype(np.float32), np.dtype(np.float64)}
    tiny = next(c for c in first if c.name.startswith("tiny"))
    huge = next(c for c in first if c.name.startswith("huge"))
    assert np.abs(tiny.arrays[0]).max() < 1e-6 and np.abs(huge.arrays[0]).max() > 1e6
    rows = next(c for c in first if c.name == "rows (3, 5) float64").arrays[0]
    scales = np.abs(rows).max(axis=1)
    assert scales[-1] / scales[0] > 1e4, "rows of different scales"
    pair = testing.cases([((4, 3), (3, 2))], magnitudes=["ordinary"], dtypes=["float64"])
    assert [a.shape for a in pair[0].arrays] == [(4, 3), (3, 2)]


def test_a_failure_names_the_case_the_shape_the_dtype_and_the_worst_element():
    def off_by_a_bit(x):
        out = x.data.copy()
        out.flat[-1] += 1
        return out

    message = fails(testing.check_against, off_by_a_bit, lambda a: a, testing.cases([(3, 5)], magnitudes=["ordinary"]))
    assert "off_by_a_bit on case 'ordinary (3, 5) float32'" in message
    assert "1 of 15 elements differ; worst at [2, 4]" in message and "dtype float32" in message
    assert "expected" in message and "got" in message


# --- 1. contracts between modules: what an operation records is what module 07 needs ---------


def double_records_x_twice(x):
    return x._result(x.data * 2, "mul", x, x)            # d(x*x)/dx = 2x, not 2


def double_records_nothing(x):
    return Tensor(x.data * 2, dtype=x.dtype)


def double(x):
    return x * 2


@pytest.mark.parametrize("wrong", [double_records_x_twice, double_records_nothing])
def test_contract_a_wrong_graph_passes_the_example_and_fails_check_graph(wrong):
    assert np.allclose(wrong(Tensor([1.0, 2.0])).data, [2, 4])             # the naive test
    message = fails(testing.check_graph, wrong, [np.linspace(-1, 2, 6).reshape(2, 3)])
    if wrong is double_records_x_twice:
        assert "through op 'mul' with parents [(2, 3) float64, (2, 3) float64]" in message
    else:
        assert "no recorded operation" in message
    testing.check_graph(double, [np.linspace(-1, 2, 6).reshape(2, 3)])
    testing.check_graph(double, [np.ones((2, 3))], oracle_grads=lambda a, w: [2 * w])


def test_check_graph_runs_a_given_engine():
    """Module 07 checks its own engine: one that forgets to accumulate is caught."""
    from tinytorch.core.autograd import backward

    def no_accumulation(tensor, grad):
        backward(tensor, grad)
        for leaf in (p for p in tensor._parents if p._op is None):
            leaf.grad.data[...] = 0

    assert "gradient of input 0" in fails(testing.check_graph, lambda x: x * x, [np.ones(3)], backward=no_accumulation)
    testing.check_graph(lambda x: x * x, [np.ones(3)], backward=backward)


# --- 2. inputs too narrow: rows of one scale, batches within one chunk, eps that hides -------


def softmax_global_shift(x):
    e = np.exp(x.data - x.data.max())                     # one shift for every row
    return e / e.sum(axis=1, keepdims=True)


def softmax(x):
    e = np.exp(x.data - x.data.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_oracle(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def row_sums_in_chunks(x, chunk=4):
    parts = [x.data[i:i + chunk].sum(axis=1) for i in range(0, len(x.data) - chunk + 1, chunk)]
    return np.concatenate(parts)                          # forgets the rows after the last chunk


def row_sums_in_chunks_right(x, chunk=4):
    return np.concatenate([x.data[i:i + chunk].sum(axis=1) for i in range(0, len(x.data), chunk)])


def standardize_eps_outside(x, eps=1e-5):
    d = x.data - x.data.mean(axis=1, keepdims=True)
    return d / np.sqrt((d ** 2).mean(axis=1, keepdims=True)) + eps


def standardize(x, eps=1e-5):
    d = x.data - x.data.mean(axis=1, keepdims=True)
    return d / np.sqrt((d ** 2).mean(axis=1, keepdims=True) + eps)


def standardize_oracle(a, eps=1e-5):
    d = a - a.mean(axis=1, keepdims=True)
    return d / np.sqrt((d ** 2).mean(axis=1, keepdims=True) + eps)


@pytest.mark.parametrize(
    ("wrong", "right", "oracle", "cases", "example"),
    [
        (softmax_global_shift, softmax, softmax_oracle, testing.cases([(4, 5), (5, 4)]), [[1.0, 2.0, 3.0], [3.0, 1.0, 0.0]]),
        (row_sums_in_chunks, row_sums_in_chunks_right, lambda a: a.sum(axis=1), testing.cases([(4, 3)], chunk=4),
         np.ones((4, 3))),
        (standardize_eps_outside, standardize, standardize_oracle, testing.cases([(3, 5)]), [[1.0, 2.0, 4.0]]),
    ],
    ids=["rows-of-different-scales", "batch-beyond-the-chunk", "eps-placement"],
)
def test_narrow_inputs_a_wrong_formula_passes_the_example_and_fails_the_cases(wrong, right, oracle, cases, example):
    naive = wrong(Tensor(example, dtype=np.float64))
    assert np.allclose(naive, oracle(np.array(example)), atol=1e-4)                # the naive test
    fails(testing.check_against, wrong, oracle, cases)
    testing.check_against(right, oracle, cases)


# --- 3. side effects: the incoming gradient and the inputs stay as they were ------------------


def relu_grad_in_place(g, x):
    g[x.data <= 0] = 0
    return (g,)


def relu_grad(g, x):
    return (g * (x.data > 0),)


def test_side_effects_a_rule_that_zeroes_the_incoming_gradient_is_caught():
    g, x = np.array([1.0, 2.0, 3.0]), Tensor([-1.0, 0.5, 2.0])
    assert np.allclose(relu_grad_in_place(g.copy(), x)[0], [0, 2, 3])          # the naive test
    message = fails(testing.assert_untouched, relu_grad_in_place, g, x)
    assert "changed argument 0 (shape (3,), float64) in place (element [0]: was 1, now 0)" in message
    assert np.allclose(testing.assert_untouched(relu_grad, g, x)[0], [0, 2, 3])
    assert np.allclose(testing.untouched(relu_grad)(g, x)[0], [0, 2, 3])


def test_side_effects_an_optimizer_that_scales_the_gradient_in_place_is_caught():
    def sgd_step_in_place(params, lr=0.1):
        for p in params:
            p.grad.data *= lr                                                   # scales the gradient itself
            p.data -= p.grad.data

    def sgd_step(params, lr=0.1):
        for p in params:
            p.data -= lr * p.grad.data

    def fresh():
        p = Tensor([1.0, 2.0], requires_grad=True)
        p.grad = Tensor([1.0, 1.0])
        return [p]

    params = fresh()
    sgd_step_in_place(params)
    assert np.allclose(params[0].data, [0.9, 1.9])                             # the naive test
    params = fresh()
    message = fails(testing.assert_untouched, lambda: sgd_step_in_place(params), watch=[p.grad for p in params])
    assert "changed watched 0.data (shape (2,), float32) in place (element [0]: was 1, now 0.1)" in message
    params = fresh()
    testing.assert_untouched(lambda: sgd_step(params), watch=[p.grad for p in params])
    assert np.allclose(params[0].data, [0.9, 1.9])


def test_side_effects_returning_a_view_of_the_input_is_caught_when_asked():
    flatten_view, flatten = (lambda a: a.reshape(-1)), (lambda a: a.reshape(-1).copy())
    a = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(flatten_view(a), np.arange(6.0))                     # the naive test
    assert "shares memory with argument 0" in fails(testing.assert_untouched, flatten_view, a, no_view=True)
    testing.assert_untouched(flatten, a, no_view=True)


# --- 4. modes, errors and dtypes ------------------------------------------------------------------


class quiet_no_grad(no_grad):
    def __exit__(self, *exc_info):
        super().__exit__(*exc_info)
        return True                                       # swallows every error in the block


def test_errors_a_context_manager_that_swallows_exceptions_is_caught():
    with quiet_no_grad():                                 # the naive test: recording is off inside
        assert not (Tensor([1.0], requires_grad=True) * 2).requires_grad
    assert "nothing was raised" in fails(testing.assert_passes_through, quiet_no_grad())
    testing.assert_passes_through(no_grad())


def test_errors_assert_raises_checks_the_type_and_the_message():
    def reshape_or_none(x, shape):
        try:
            return x.reshape(shape)
        except ValueError:
            return None

    assert "nothing was raised" in fails(testing.assert_raises, ValueError, reshape_or_none, Tensor([1.0, 2.0]), (3,))
    error = testing.assert_raises(ValueError, Tensor([1.0, 2.0]).matmul, Tensor([1.0, 2.0, 3.0]), match="inner dimensions")
    assert "(2,)" in str(error)
    assert "does not say" in fails(testing.assert_raises, ValueError, Tensor([1.0]).matmul, Tensor([1.0, 2.0]), match="nope")
    assert "got TypeError" in fails(testing.assert_raises, ValueError, Tensor([1.0]).__pow__, Tensor(2.0))


def test_modes_code_that_leaves_the_model_in_eval_mode_is_caught():
    def evaluate_and_forget(model, x):
        model.eval()
        return model(x)

    def evaluate(model, x):
        was = model.training
        try:
            return evaluate_and_forget(model, x)
        finally:
            model.train(was)

    model, x = Sequential(Linear(3, 2), Dropout(0.5)), Tensor(np.ones((4, 3)))
    assert evaluate_and_forget(model, x).shape == (4, 2)                       # the naive test
    message = fails(testing.assert_mode_restored, model, evaluate_and_forget, model, x)
    assert "left model, model.0, model.1 out of training mode" in message
    testing.assert_mode_restored(model, evaluate, model, x)


def tanh_through_the_constructor(x):
    return Tensor(np.tanh(x.data))                        # the constructor's default: float32


def tanh(x):
    return x._result(np.tanh(x.data), "tanh", x)


def engine_float32_grads(tensor, grad):
    """A backward that stores every leaf's gradient as Tensor(g): float32 even for a float64 leaf."""
    grads, order = {tensor: np.asarray(grad)}, []

    def visit(node):
        if node not in order:
            for parent in node._parents:
                visit(parent)
            order.append(node)

    visit(tensor)
    for node in reversed(order):
        g = grads.pop(node, None)
        if g is None:
            continue
        if node._op is None:
            node.grad = Tensor(g)
            continue
        for parent, share in zip(node._parents, GRADIENTS[node._op](g, *node._parents, **node._saved)):
            if share is not None and parent.requires_grad:
                grads[parent] = grads.get(parent, 0) + share


def test_dtypes_a_float32_result_or_gradient_for_float64_is_caught():
    assert np.allclose(tanh_through_the_constructor(Tensor([0.5])).data, np.tanh(0.5))  # float32: passes
    message = fails(testing.assert_dtype_kept, tanh_through_the_constructor, grad=False)
    assert "turned float64 inputs of shapes [(3, 4)] into its result of dtype float32" in message
    testing.assert_dtype_kept(tanh)
    message = fails(testing.assert_dtype_kept, tanh, backward=engine_float32_grads)
    assert "input 0 is a float64 leaf but its .grad is float32" in message


# --- 5. sampling: every example can appear, every crop can come --------------------------------


def numbered(n):
    return np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)   # example i is all i


class ShuffledOnce:
    """Shuffles at construction only: with drop_last the same examples are dropped every epoch."""

    def __init__(self, data, batch, seed=0):
        self.data, self.batch = data, batch
        self.order = np.random.default_rng(seed).permutation(len(data))

    def _order(self):
        return self.order

    def __iter__(self):
        order = self._order()
        for start in range(0, len(order) - self.batch + 1, self.batch):      # drop_last
            yield Tensor(self.data[order[start:start + self.batch]])


class Shuffled(ShuffledOnce):
    def __init__(self, data, batch, seed=0):
        super().__init__(data, batch)
        self.rng = np.random.default_rng(seed)

    def _order(self):
        return self.rng.permutation(len(self.data))


def test_sampling_a_loader_that_always_drops_the_same_examples_is_caught():
    wrong = ShuffledOnce(numbered(10), batch=3)
    assert all(len(batch) == 3 for batch in wrong)                             # the naive test
    message = fails(testing.assert_every_example_appears, wrong, 10)
    assert "in 8 epochs, examples [" in message and "never appeared" in message
    testing.assert_every_example_appears(Shuffled(numbered(10), batch=3), 10)


def test_sampling_a_crop_that_draws_both_offsets_from_the_height_is_caught():
    image = testing.non_square_images(n=1, channels=1, height=5, width=7)[0, 0]
    size = 3
    rng = np.random.default_rng(0)

    def crop_height_only():
        top, left = rng.integers(0, 5 - size + 1), rng.integers(0, 5 - size + 1)
        return image[top:top + size, left:left + size]

    def crop():
        top, left = rng.integers(0, 5 - size + 1), rng.integers(0, 7 - size + 1)
        return image[top:top + size, left:left + size]

    expected = {(t, left): image[t:t + size, left:left + size] for t in range(3) for left in range(5)}
    assert crop_height_only().shape == (size, size)                            # the naive test
    message = fails(testing.assert_all_outcomes, crop_height_only, expected)
    assert "(0, 3)" in message and "never came" in message
    testing.assert_all_outcomes(crop, expected)
    flipped_wrong_axis = lambda: image[::-1] if rng.random() < 0.5 else image  # noqa: E731
    assert "none of the expected" in fails(testing.assert_all_outcomes, flipped_wrong_axis,
                                           {"kept": image, "flipped": image[:, ::-1]})


def test_non_square_images_name_their_places():
    images = testing.non_square_images(n=2, channels=3, height=4, width=6)
    assert images.shape == (2, 3, 4, 6) and images.dtype == np.float32
    assert images[1, 2, 3, 5] == 1000 + 200 + 30 + 5
