"""Checks for hidden tests: the course's shared test toolkit.

A hidden test that checks one example can be passed by a wrong solution that happens to be
right on that example. The functions here check a solution systematically instead:

- `cases(...)` generates inputs that tell right from wrong: non-square shapes, batches larger
  than an internal chunk, tiny and huge magnitudes, rows of different scales, float32 and
  float64; always the same inputs (a fixed seed), so a notebook gets the same grade every run;
- `check_against(fn, oracle, cases)` compares a solution with a NumPy formula on every case;
- `assert_untouched(fn, ...)` fails when fn changed an input or an incoming gradient in place;
- `assert_dtype_kept(fn, ...)` fails when float32 comes out of float64 (or the other way);
- `check_graph(fn, inputs)` runs backward() through the course's autograd engine over what
  fn recorded (`_op`, `_parents`, `_saved`) and compares every gradient with an oracle;
- `assert_raises`, `assert_passes_through`, `assert_mode_restored`, `assert_every_example_appears`,
  `assert_all_outcomes` and `non_square_images` for errors, modes and random sampling.

Every failure is an AssertionError whose message is written for the student: it names the
case, the shape and dtype, what was expected and what came, and the worst element.

>>> from tinytorch.testing import cases, check_against
>>> check_against(lambda x: x * 2, lambda a: a * 2, cases())
"""

import types
import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Case", "cases", "check_against", "assert_untouched", "untouched", "assert_dtype_kept",
    "check_graph", "numerical_grads", "assert_raises", "assert_passes_through",
    "assert_mode_restored", "modes", "assert_every_example_appears", "assert_all_outcomes",
    "non_square_images",
]

# Default shapes: "scalar-ish", 1-D, non-square 2-D both ways, a non-square 4-D image batch
# (N, C, H, W) with H != W, so that a swapped axis gives a wrong answer rather than a right one.
SHAPES = ((1,), (1, 1), (7,), (3, 5), (5, 3), (2, 3, 4, 6))
# How big the numbers are: name -> scale of standard-normal values ("rows": each row its own
# scale, from 1e-3 to 1e3, so that a formula that mixes rows shows it).
MAGNITUDES = ("ordinary", "tiny", "huge", "rows")
_SCALES = {"ordinary": 1.0, "tiny": 1e-8, "huge": 1e8}
# (rtol, atol) per dtype; atol is relative to the largest expected value, so a tiny case is
# judged as strictly as an ordinary one.
TOLERANCES = (("float32", 1e-4, 1e-5), ("float64", 1e-9, 1e-12))


@dataclass(frozen=True)
class Case:
    """One generated input: `arrays` (one NumPy array per argument) and its description."""

    name: str
    arrays: tuple
    dtype: np.dtype

    def tensors(self, requires_grad=False, tensor=None):
        """Fresh Tensors of the case's arrays (copies: the case itself never changes)."""
        Tensor = _tensor_class(tensor)
        return tuple(Tensor(a.copy(), dtype=a.dtype, requires_grad=requires_grad) for a in self.arrays)


def _tensor_class(tensor):
    """The Tensor class to build inputs with: `tensor` when given (module 02's own hidden
    tests pass the notebook's Tensor), else the package's."""
    if tensor is not None:
        return tensor
    from tinytorch.core.tensor import Tensor

    return Tensor


def _values(rng, shape, magnitude, dtype, positive):
    values = rng.standard_normal(shape)
    if positive:
        values = np.abs(values) + 0.1                # away from 0, for log, sqrt, division
    if magnitude == "rows":
        rows = shape[0] if len(shape) else 1
        scale = np.logspace(-3, 3, rows).reshape((rows,) + (1,) * max(len(shape) - 1, 0))
        values = values * (scale if len(shape) else 1.0)
    else:
        values = values * _SCALES[magnitude]
    return values.astype(dtype)


def cases(shapes=SHAPES, *, inputs=1, dtypes=("float32", "float64"), magnitudes=MAGNITUDES,
          chunk=None, features=(3,), positive=False, seed=0):
    """The inputs a hidden test checks a solution on: every shape x magnitude x dtype.

    shapes: a list of shapes; an entry may instead be a tuple of shapes, one per argument
        (e.g. ((4, 3), (3, 2)) for a matrix product). A plain shape is used for all `inputs`.
    inputs: how many arrays each case holds (for plain shapes).
    magnitudes: a subset of "ordinary", "tiny" (~1e-8), "huge" (~1e8) and "rows" (each row of
        its own scale, 1e-3 .. 1e3); leave out "huge" where the operation overflows there.
    chunk: an internal batch size of the solution (a loader's batch, a kernel's block): adds a
        batch of 2 * chunk + 1 rows of `features`, so that a remainder must be handled too.
    positive: draw values > 0 (for log, sqrt, division).
    seed: the generator's seed; the same arguments always give the same cases.

    >>> [c.name for c in cases([(2, 3)], magnitudes=["ordinary"], dtypes=["float32"])]
    ['ordinary (2, 3) float32']
    """
    entries = list(shapes)
    if chunk is not None:
        entries.append((2 * int(chunk) + 1,) + tuple(features))
    rng = np.random.default_rng(seed)
    out = []
    for entry in entries:
        per_input = tuple(entry) if entry and isinstance(entry[0], (tuple, list)) else (tuple(entry),) * inputs
        for magnitude in magnitudes:
            for dtype in map(np.dtype, dtypes):
                arrays = tuple(_values(rng, s, magnitude, dtype, positive) for s in per_input)
                shown = " and ".join(str(tuple(s)) for s in per_input)
                out.append(Case(f"{magnitude} {shown} {dtype}", arrays, dtype))
    return out


def _tolerance(dtype, rtol, atol):
    """(rtol, atol) for a dtype: a number is used as is, a dict maps dtype names to numbers."""
    name = np.dtype(dtype).name
    default = {d: (r, a) for d, r, a in TOLERANCES}.get(name, TOLERANCES[0][1:])
    pick = lambda given, fallback: given.get(name, fallback) if isinstance(given, dict) else given  # noqa: E731
    return (default[0] if rtol is None else pick(rtol, default[0]),
            default[1] if atol is None else pick(atol, default[1]))


def _array(value):
    """The NumPy array behind a Tensor, an array or a number."""
    return np.asarray(getattr(value, "data", value))


def _quietly(fn, *args, **kwargs):
    """fn(*args) with NumPy's overflow and invalid-value warnings off: a test cell that writes
    to stderr scores zero, and an inf or nan in the result is judged by the comparison."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def assert_close(got, expected, *, rtol=None, atol=None, what="the result", dtype=None):
    """got and expected have the same shape and agree elementwise within the tolerances
    of `dtype` (default: got's); the message names the worst element."""
    got, expected = _array(got), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise AssertionError(f"{what}: expected shape {expected.shape}, got {got.shape}.")
    rtol, atol = _tolerance(dtype or (got.dtype if got.dtype.kind == "f" else np.float64), rtol, atol)
    values = got.astype(np.float64)
    finite = np.abs(expected[np.isfinite(expected)])
    scale = finite.max() if finite.size and finite.max() > 0 else 1.0
    allowed = atol * scale + rtol * np.abs(expected)
    with np.errstate(all="ignore"):
        error = np.abs(values - expected)
        bad = ~((error <= allowed) | (values == expected) | (np.isnan(values) & np.isnan(expected)))
        if not bad.any():
            return
        excess = np.where(bad, np.nan_to_num(error / allowed, nan=np.inf), -1.0)
    worst = np.unravel_index(int(np.argmax(excess)), expected.shape) if expected.ndim else ()
    index = [int(i) for i in worst] if worst else "(the only element)"
    raise AssertionError(
        f"{what}: {int(bad.sum())} of {expected.size} elements differ; worst at {index}: "
        f"expected {expected[worst]:.6g}, got {values[worst]:.6g} "
        f"(allowed difference {allowed[worst]:.2g}; shape {expected.shape}, dtype {got.dtype})."
    )


def check_against(fn, oracle, cases, *, rtol=None, atol=None, name=None, tensor=None):
    """fn agrees with oracle on every case.

    fn gets the case as Tensors (of the case's dtype) and returns a Tensor or an array;
    oracle gets the same values as float64 NumPy arrays and returns the right answer.
    rtol/atol: numbers, or dicts by dtype name ({"float32": 1e-3}).
    tensor: the Tensor class to build inputs with (default: tinytorch.core.tensor.Tensor).
    """
    label = name or getattr(fn, "__name__", "the function")
    for case in cases:
        expected = _quietly(oracle, *(a.astype(np.float64) for a in case.arrays))
        try:
            got = _quietly(fn, *case.tensors(tensor=tensor))
        except Exception as error:
            raise AssertionError(f"{label} on case '{case.name}' raised {type(error).__name__}: {error}") from error
        assert_close(got, expected, rtol=rtol, atol=atol, what=f"{label} on case '{case.name}'", dtype=case.dtype)


# ---- side effects ---------------------------------------------------------------------------

_CODE = (type, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType)


def _arrays_in(value, label, found, depth=0):
    """(label, array) for every array reachable in value: arrays, Tensor data and grads,
    lists, tuples and dicts of them, and objects' attributes (one level)."""
    if isinstance(value, np.ndarray):
        found.append((label, value))
    elif hasattr(value, "data") and isinstance(getattr(value, "data", None), np.ndarray):
        found.append((label + ".data", value.data))
        grad = getattr(value, "grad", None)
        if grad is not None:
            _arrays_in(grad, label + ".grad", found, depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _arrays_in(item, f"{label}[{i}]", found, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _arrays_in(item, f"{label}[{key!r}]", found, depth + 1)
    elif depth == 0 and hasattr(value, "__dict__") and not isinstance(value, _CODE):
        for key, item in vars(value).items():
            _arrays_in(item, f"{label}.{key}", found, depth + 1)
    return found


def assert_untouched(fn, *args, no_view=False, watch=(), **kwargs):
    """Call fn(*args, **kwargs) and fail if it changed, in place, any array it was given:
    an input array, a Tensor's data or grad (an incoming gradient), or anything in `watch`
    (e.g. an optimizer's parameters). With no_view=True the result must also not share memory
    with an input (a view of an input that a caller may later change). Returns fn's result."""
    found = []
    for i, arg in enumerate(args):
        _arrays_in(arg, f"argument {i}", found)
    for key, arg in kwargs.items():
        _arrays_in(arg, f"argument {key}", found)
    for i, item in enumerate(watch):
        _arrays_in(item, f"watched {i}", found)
    before = [(label, array, array.copy()) for label, array in found]
    result = _quietly(fn, *args, **kwargs)
    name = getattr(fn, "__name__", "the function")
    for label, array, copy in before:
        if array.shape != copy.shape or not np.array_equal(array, copy, equal_nan=True):
            changed = (np.argwhere(~((array == copy) | (np.isnan(array) & np.isnan(copy))))[0]
                       if array.shape == copy.shape and array.ndim else ())
            where = f" (element {[int(i) for i in changed]}: was {copy[tuple(changed)]:.6g}, now {array[tuple(changed)]:.6g})" if len(changed) else ""
            raise AssertionError(
                f"{name} changed {label} (shape {copy.shape}, {copy.dtype}) in place{where}. "
                "Leave what you are given as it is: compute a new array (g = g * mask, not g *= mask)."
            )
    if no_view:
        for out_label, out in _arrays_in(result, "its result", []):
            for label, array, _ in before:
                if np.shares_memory(out, array):
                    raise AssertionError(
                        f"{name} returned {out_label.replace('.data', '')} that shares memory with "
                        f"{label}: changing one would change the other. Return a copy (.copy()).")
    return result


def untouched(fn, **options):
    """fn wrapped so that every call runs through assert_untouched (e.g. a backward rule)."""
    def checked(*args, **kwargs):
        return assert_untouched(fn, *args, **options, **kwargs)
    checked.__name__ = getattr(fn, "__name__", "the function")
    return checked


# ---- dtypes -----------------------------------------------------------------------------------

def assert_dtype_kept(fn, shapes=((3, 4),), *, dtypes=("float32", "float64"), grad=True, seed=0,
                      backward=None, tensor=None):
    """For each dtype: fn(*Tensors of that dtype) returns that dtype (every Tensor or array
    in its result), and with grad=True, backward() gives every input a gradient of that dtype
    (a float64 leaf gets a float64 grad). backward: the engine (default: the course's);
    tensor: the Tensor class (default: the package's)."""
    Tensor = _tensor_class(tensor)
    rng = np.random.default_rng(seed)
    name = getattr(fn, "__name__", "the function")
    for dtype in map(np.dtype, dtypes):
        leaves = [Tensor(rng.standard_normal(s).astype(dtype), dtype=dtype, requires_grad=grad) for s in shapes]
        out = _quietly(fn, *leaves)
        for label, array in _arrays_in(out, "its result", []):
            if array.dtype.kind == "f" and array.dtype != dtype:
                raise AssertionError(
                    f"{name} turned {dtype} inputs of shapes {list(shapes)} into {label.replace('.data', '')} "
                    f"of dtype {array.dtype}. Keep the input's dtype: build results with x._result(...) or "
                    "Tensor(..., dtype=x.dtype), and avoid NumPy float64 constants (use Python floats).")
        if not grad:
            continue
        if not getattr(out, "requires_grad", False):
            raise AssertionError(f"{name} on {dtype} inputs that require a gradient returned a result "
                                 "that records no graph (requires_grad False): end it with x._result(...).")
        engine = backward or course_engine()
        if engine is None:  # no module 07 in this package yet: the forward's dtype is what is checked
            continue
        engine(out, _weights(out.shape, dtype))
        for i, leaf in enumerate(leaves):
            if leaf.grad is not None and leaf.grad.dtype != dtype:
                raise AssertionError(f"{name}: input {i} is a {dtype} leaf but its .grad is {leaf.grad.dtype}; "
                                     "a gradient has the dtype of the Tensor it belongs to.")


# ---- the graph contract ------------------------------------------------------------------------

def _weights(shape, dtype=np.float64):
    """Fixed, distinct weights for reducing an output: every element's gradient counts."""
    size = int(np.prod(shape))
    return np.linspace(0.5, 1.5, size).reshape(shape).astype(dtype) if size else np.zeros(shape, dtype)


def course_engine():
    """Module 07's `backward(tensor, grad)`, or None in a package that does not hold module 07
    yet (a student's package of modules 1..N-1 alone). The grader imports the whole reference
    package, where it is always there."""
    try:
        from tinytorch.core.autograd import backward
    except ModuleNotFoundError as error:
        if error.name != "tinytorch.core.autograd":
            raise
        return None
    return backward


def numerical_grads(fn, arrays, weights, eps=1e-6, tensor=None):
    """Central finite differences in float64 of sum(weights * fn(*arrays)) by every input."""
    Tensor = _tensor_class(tensor)
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    loss = lambda: float(np.sum(weights * _array(_quietly(fn, *(Tensor(a, dtype=np.float64) for a in arrays)))))  # noqa: E731
    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            saved = a[index]
            a[index] = saved + eps
            up = loss()
            a[index] = saved - eps
            down = loss()
            a[index] = saved
            grad[index] = (up - down) / (2 * eps)
        grads.append(grad)
    return grads


def _describe_node(out):
    parents = ", ".join(f"{tuple(p.shape)} {p.dtype}" if hasattr(p, "shape") else repr(p)
                        for p in getattr(out, "_parents", ()))
    saved = ", ".join(f"{k}={v!r}" for k, v in getattr(out, "_saved", {}).items())
    return f"op {out._op!r} with parents [{parents}]" + (f" and saved {saved}" if saved else "")


def check_graph(fn, inputs, oracle_grads=None, *, rtol=1e-6, atol=1e-8, name=None, backward=None,
                tensor=None):
    """The contract between a module's operations and module 07's engine.

    fn(*Tensors) must record its computation (the output's `_op`, `_parents`, `_saved`) so
    that backward() through tinytorch.core.autograd gives every input the right gradient.
    inputs: NumPy arrays, used as float64 leaves that require a gradient.
    oracle_grads(*arrays, weights): the gradients of sum(weights * output) by each input, as a
        list of arrays (None for an input with no gradient); default: central differences.
    backward: the engine to run (default: the course's; module 07 passes its own).
    tensor: the Tensor class (default: the package's; module 02 passes its own).
    Returns True when the gradients were compared; False in a package without module 07's
    engine (see course_engine), where only the recorded operation could be checked.
    """
    Tensor = _tensor_class(tensor)
    label = name or getattr(fn, "__name__", "the function")
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    leaves = [Tensor(a.copy(), dtype=np.float64, requires_grad=True) for a in arrays]
    out = _quietly(fn, *leaves)
    shapes = ", ".join(str(a.shape) for a in arrays)
    if getattr(out, "_op", None) is None or not getattr(out, "requires_grad", False):
        raise AssertionError(
            f"{label} on float64 inputs {shapes} that require a gradient returned a result with no "
            "recorded operation (its _op is None), so backward() cannot reach the inputs. End the "
            "operation with x._result(array, 'op_name', x, ...) on the Tensors it was computed from.")
    engine = backward or course_engine()
    if engine is None:
        return False
    weights = _weights(out.shape)
    engine(out, weights)
    expected = (oracle_grads(*arrays, weights) if oracle_grads is not None
                else numerical_grads(fn, arrays, weights, tensor=tensor))
    for i, (leaf, want) in enumerate(zip(leaves, expected)):
        if want is None:
            continue
        where = f"{label}: the gradient of input {i} (shape {leaf.shape}) through {_describe_node(out)}"
        if leaf.grad is None:
            raise AssertionError(f"{where} is None: the recorded graph does not reach this input.")
        assert_close(leaf.grad, want, rtol=rtol, atol=atol, what=where, dtype=np.float64)
    return True


# ---- errors, modes ------------------------------------------------------------------------------

def assert_raises(exception, fn, *args, match=None, **kwargs):
    """fn(*args, **kwargs) raises `exception` (whose message contains `match`, if given).
    Fails when nothing comes out: an error caught and swallowed on the way is a bug too."""
    import re

    name = getattr(fn, "__name__", "the function")
    try:
        _quietly(fn, *args, **kwargs)
    except exception as error:
        if match is not None and not re.search(match, str(error)):
            raise AssertionError(f"{name} raised {type(error).__name__} as it should, but its message "
                                 f"{str(error)!r} does not say {match!r}.") from None
        return error
    except Exception as error:
        raise AssertionError(f"{name} should raise {exception.__name__}, got {type(error).__name__}: {error}") from error
    raise AssertionError(f"{name} should raise {exception.__name__}, but nothing was raised "
                         "(was it caught and silently dropped?).")


class _Probe(Exception):
    """An exception raised inside a context manager to see whether it comes out."""


def assert_passes_through(context):
    """An exception raised inside `with context:` comes out of it unchanged (a context
    manager's __exit__ must not return True)."""
    def inside():
        with context:
            raise _Probe("raised inside the with block")
    assert_raises(_Probe, inside)


def modes(model):
    """{dotted name: training flag} of a module and every sub-module."""
    found, queue = {}, [("model", model)]
    while queue:
        name, module = queue.pop(0)
        found[name] = bool(getattr(module, "training", None))
        for key, child in getattr(module, "_modules", {}).items():
            queue.append((f"{name}.{key}", child))
    return found


def assert_mode_restored(model, fn, *args, **kwargs):
    """fn(*args, **kwargs) leaves `model` and its sub-modules in the train/eval mode they had,
    in both starting modes (code that switches to eval() must switch back). Returns fn's result."""
    name = getattr(fn, "__name__", "the function")
    result = None
    for start in (True, False):
        model.train(start)
        before = modes(model)
        result = _quietly(fn, *args, **kwargs)
        changed = [key for key, flag in modes(model).items() if before.get(key) != flag]
        if changed:
            was = "training" if start else "eval"
            raise AssertionError(f"{name} left {', '.join(changed)} out of {was} mode, the mode it was "
                                 "called in. Remember model.training and restore it at the end.")
    return result


# ---- sampling -----------------------------------------------------------------------------------

def _example_ids(batch):
    """The ids of a batch's examples: the first value of each row of its first array."""
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    values = _array(first)
    return [int(round(float(v))) for v in values.reshape(len(values), -1)[:, 0]]


def assert_every_example_appears(loader, n, epochs=8, ids=_example_ids):
    """Iterating `loader` for `epochs` epochs shows every example 0..n-1 at least once, and
    no example twice within an epoch. Build the loader on data where example i is filled with
    the number i (the default `ids` reads the first value of each row of the batch's first
    array). Shuffling with drop_last must drop different examples in different epochs."""
    seen = set()
    for epoch in range(epochs):
        this_epoch = Counter()
        for batch in loader:
            this_epoch.update(ids(batch))
        twice = sorted(i for i, count in this_epoch.items() if count > 1)
        if twice:
            raise AssertionError(f"epoch {epoch}: examples {twice[:5]} came more than once; an epoch "
                                 "shows each example at most once.")
        seen.update(this_epoch)
    unknown = sorted(seen - set(range(n)))
    missing = sorted(set(range(n)) - seen)
    if unknown:
        raise AssertionError(f"the loader produced examples {unknown[:5]} that are not among the {n} given.")
    if missing:
        raise AssertionError(
            f"in {epochs} epochs, examples {missing[:10]} of {n} never appeared. With shuffle, every "
            "example must be able to appear (draw a new order every epoch, before dropping the last batch).")


def assert_all_outcomes(draw, expected, trials=200):
    """Calling draw() `trials` times gives only the `expected` outcomes (a dict name -> array)
    and each of them at least once: e.g. every crop offset, both flips."""
    counts = dict.fromkeys(expected, 0)
    for trial in range(trials):
        got = _array(draw())
        match = next((k for k, want in expected.items() if got.shape == np.shape(want) and np.array_equal(got, want)), None)
        if match is None:
            raise AssertionError(f"draw {trial} gave a result (shape {got.shape}) that is none of the "
                                 f"expected outcomes {sorted(expected)}.")
        counts[match] += 1
    never = [k for k, count in counts.items() if not count]
    if never:
        raise AssertionError(f"in {trials} draws, {never} never came (counts: {counts}); every outcome "
                             "must be possible. Check which axis each random choice uses.")


def non_square_images(n=2, channels=3, height=5, width=7, dtype=np.float32):
    """A batch (n, channels, height, width) where every value names its place: 1000*n +
    100*c + 10*h + w, so that a swapped or flipped axis is visible in the numbers."""
    n_, c, h, w = np.meshgrid(*(np.arange(k) for k in (n, channels, height, width)), indexing="ij")
    return (1000 * n_ + 100 * c + 10 * h + w).astype(dtype)
