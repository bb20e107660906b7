# %% [markdown]
# # Module 19: Benchmarking — measure improvements scientifically
#
# Modules 15 to 18 each made a claim: im2col is faster than the kernel-offset loop, the KV
# cache generates faster, int8 weights are smaller, a pruned network runs faster. Each
# checked its claim with a few lines: time a function a few times, take the median. That
# is enough to see a 100× speed-up. It is not enough to tell a 1.1× speed-up from luck, and
# most real optimizations are 1.1×: a fused kernel, a better memory layout, one copy fewer.
#
# A timing is one draw from a noisy process. The processor changes its clock speed, other
# programs take the core you are on, the first call fills caches and allocates memory that
# later calls reuse, the BLAS library starts its threads. On a shared machine one run of
# `np.matmul` has been measured 300× slower than the next. So **one timing lies**, and two
# single timings compared lie twice.
#
# This module builds the harness that the optimize milestone and the capstone use to make
# every claim of speed:
#
# 1. `measure(fn)`: warm-up calls that are not recorded, then repeated timings;
# 2. the **median** of the timings and a **bootstrap confidence interval** around it;
# 3. `compare(baseline, candidate)`: a speed-up with its own interval, and a verdict that
#    says **"within noise"** when the interval holds 1;
# 4. `environment()`: Python, NumPy, the BLAS and its thread settings, the machine, the load
#    and the date, recorded with every result (a number without them cannot be checked);
# 5. `profile(model, x)`: per layer, its parameters, FLOPs, output bytes and time, so you
#    know *where* to optimize before you start.
#
# First, see the problem. Run the cell below: it times the same matrix product twenty
# times.

# %%
import os
import time

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d, conv2d_forward
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook

_rng = np.random.default_rng(0)
_a = _rng.standard_normal((128, 128)).astype(np.float32)
_times = []
for _ in range(20):
    _start = time.perf_counter()
    _a @ _a
    _times.append(time.perf_counter() - _start)
_times = np.array(_times) * 1e6                                   # microseconds
print(f"128x128 matmul, 20 timings: min {_times.min():.1f} us, "
      f"median {np.median(_times):.1f} us, max {_times.max():.1f} us")
print(f"first call {_times[0]:.1f} us; max / min = {_times.max() / _times.min():.1f}")
_counts, _edges = np.histogram(_times, bins=8)
for _count, _low, _high in zip(_counts, _edges, _edges[1:]):
    print(f"{_low:9.1f} - {_high:9.1f} us  {'#' * _count}")

# %% [markdown]
# Read the spread. The same 4 million multiply-adds, twenty times, and the slowest run took
# several times longer than the fastest. Often the very first call is among the slowest:
# it paid for work the others reuse. Had you timed once, you would have reported any number
# in that range. Time one function once, and a copy of it once, and one of the two looks
# "faster":

# %%
def _once(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


_ratio = _once(lambda: _a @ _a) / _once(lambda: _a @ _a)
print(f"the same product timed twice: a 'speed-up' of {_ratio:.2f}x, of nothing")

# %% [markdown]
# ## Warm-up and repeats
#
# The harness first calls the function a few times **without recording** (the warm-up:
# caches filled, memory allocated, threads started, lazy imports done), then records
# `repeats` timings. A very fast function (a microsecond) is shorter than what the clock
# resolves well, so each recorded sample can time `number` calls in a row and divide by
# `number`: every sample is **seconds per call**.
#
# ```
# warm-up:  fn() fn() fn()                        (not recorded)
# samples:  [fn() x number] / number   x repeats  -> repeats numbers, seconds per call
# ```
#
# The clock is a parameter, `timer` (by default `time.perf_counter`, the best clock Python
# has for intervals). That is what makes the harness testable: the tests below give it a
# fake clock whose every reading is known, so they check the arithmetic, never the speed of
# this machine.
#
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/perf/benchmarking.py`.

# %%
#| export
import datetime
import os
import platform
import time
from dataclasses import dataclass

import numpy as np

from tinytorch.core.activations import Activation
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Module, Sequential
from tinytorch.core.spatial import Conv2d
from tinytorch.core.tensor import Tensor
from tinytorch.text.attention import MultiHeadAttention


def _positive_int(name, value, smallest=1):
    if int(value) != value or value < smallest:
        raise ValueError(f"{name} must be a whole number >= {smallest}, got {value!r}")
    return int(value)


def _format_seconds(seconds):
    """A time in the unit that suits it: 1.23 s, 45.6 ms, 7.89 us, 120 ns."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


@dataclass
class Measurement:
    """Repeated timings of one function: `samples` in seconds per call, one per repeat.

    `.median`, `.mean`, `.stdev` and `.ci` (the 95% bootstrap interval of the median) are
    computed from the samples; print it for a one-line summary.
    """

    samples: np.ndarray
    number: int = 1

    def __post_init__(self):
        self.samples = np.asarray(self.samples, dtype=np.float64).reshape(-1)
        if self.samples.size == 0:
            raise ValueError("a Measurement needs at least one sample: repeats >= 1")

    @property
    def ci(self):
        """The 95% bootstrap confidence interval of the median, (low, high)."""
        return bootstrap_ci(self.samples)

    @property
    def median(self):
        return float(np.median(self.samples))

    @property
    def mean(self):
        return float(np.mean(self.samples))

    @property
    def stdev(self):
        """The sample standard deviation (divide by n - 1); 0 for a single sample."""
        if self.samples.size < 2:
            return 0.0
        return float(np.std(self.samples, ddof=1))

    def __str__(self):
        low, high = self.ci
        return (f"{_format_seconds(self.median)} median "
                f"(95% CI {_format_seconds(low)} .. {_format_seconds(high)}), "
                f"mean {_format_seconds(self.mean)} ± {_format_seconds(self.stdev)}, "
                f"{self.samples.size} runs of {self.number}")


def measure(fn, *, warmup=3, repeats=20, number=1, timer=time.perf_counter):
    """Time `fn()`: `warmup` calls not recorded, then `repeats` samples, each the time of
    `number` calls divided by `number`. Returns a Measurement (seconds per call).

    >>> print(measure(lambda: sum(range(1000))))          # doctest: +SKIP
    12.1 us median (95% CI 12 us .. 12.3 us), mean 12.4 us ± 0.9 us, 20 runs of 1
    """
    if not callable(fn):
        raise TypeError(f"measure(fn): fn must be a function to call, got {fn!r}; "
                        "pass e.g. lambda: model(x)")
    warmup = _positive_int("warmup", warmup, smallest=0)
    repeats = _positive_int("repeats", repeats)
    number = _positive_int("number", number)
    samples = np.empty(repeats, dtype=np.float64)
    # TODO: call fn() `warmup` times without timing it. Then, for each of the `repeats`
    #       samples: read the timer, call fn() `number` times, read the timer again, and
    #       store (end - start) / number in samples[i].
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn()
    for i in range(repeats):
        start = timer()
        for _ in range(number):
            fn()
        samples[i] = (timer() - start) / number
    ### END SOLUTION
    return Measurement(samples, number)

# %% [markdown]
# ### Test it: measure, with a clock that you control
#
# `_FakeClock` is a timer whose reading only moves when a fake "function" advances it, by
# durations the test chooses: the warm-up takes 100, 50 and 20 seconds, the recorded calls
# 1 to 5. A correct `measure` records exactly 1 to 5.

# %%
class _FakeClock:
    """A timer for tests: `clock()` reads the time; `clock.work(durations)` makes a
    function that advances the time by the next duration at each call."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def work(self, durations):
        remaining = iter(durations)

        def fn():
            try:
                self.now += next(remaining)
            except StopIteration:
                raise AssertionError("fn was called more often than warmup + "
                                     "repeats * number times") from None
        return fn

# %%
#| test: measure_basics (3 points)
def test_measure_basics():
    clock = _FakeClock()
    fn = clock.work([100.0, 50.0, 20.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    m = measure(fn, warmup=3, repeats=5, timer=clock)
    assert np.allclose(m.samples, [1, 2, 3, 4, 5]), (
        f"warm-up durations 100, 50, 20 then recorded 1..5: expected samples "
        f"[1, 2, 3, 4, 5], got {m.samples}. The warm-up calls are not recorded.")
    assert m.median == 3.0 and m.mean == 3.0, (
        f"median and mean of 1..5 are 3, got {m.median} and {m.mean}")
    clock = _FakeClock()
    fn = clock.work([9.0] + [1.0, 3.0] * 4)
    m = measure(fn, warmup=1, repeats=4, number=2, timer=clock)
    assert np.allclose(m.samples, 2.0), (
        f"number=2: each sample times two calls (1 s and 3 s) and divides by 2, so every "
        f"sample is 2 s per call, got {m.samples}")

test_measure_basics()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

# no warm-up at all, one repeat, many calls per sample, and durations that all differ
_clock = _FakeClock()
_m = measure(_clock.work([0.5, 1.5, 4.0]), warmup=0, repeats=1, number=3, timer=_clock)
assert np.allclose(_m.samples, [2.0]) and _m.stdev == 0.0, (
    f"warmup=0, repeats=1, number=3 with calls of 0.5, 1.5 and 4 s: one sample of 2 s "
    f"per call, stdev 0; got samples {_m.samples}, stdev {_m.stdev}")
_clock = _FakeClock()
_durations = [7.0, 7.0] + [1.0, 2.0, 6.0, 3.0, 8.0, 5.0, 4.0, 30.0, 3.0, 2.0]
_m = measure(_clock.work(_durations), warmup=2, repeats=5, number=2, timer=_clock)
assert np.allclose(_m.samples, [1.5, 4.5, 6.5, 17.0, 2.5]), (
    f"warmup=2, repeats=5, number=2: expected samples [1.5, 4.5, 6.5, 17, 2.5] (each the "
    f"mean of two consecutive calls after the two warm-up calls), got {_m.samples}")
assert _m.median == 4.5 and abs(_m.mean - 6.4) < 1e-12, (
    f"median 4.5 and mean 6.4 expected, got {_m.median} and {_m.mean}")
assert abs(_m.stdev - np.std([1.5, 4.5, 6.5, 17.0, 2.5], ddof=1)) < 1e-12, (
    f"stdev is the sample standard deviation (ddof=1), got {_m.stdev}")
_clock = _FakeClock()
_m = measure(_clock.work([1.0] * 3 + [2.0] * 20), timer=_clock)
assert _m.samples.size == 20 and np.allclose(_m.samples, 2.0), (
    "by default measure makes 3 warm-up calls and 20 recorded samples of one call each")
assert_raises(ValueError, measure, lambda: None, repeats=0, match="repeats")
assert_raises(ValueError, measure, lambda: None, number=0, match="number")
assert_raises(ValueError, measure, lambda: None, warmup=-1, match="warmup")
### END HIDDEN TESTS

# %% [markdown]
# ## The median, not the mean
#
# Noise on a computer is one-sided: nothing makes a function run faster than it can, but a
# context switch, a page fault or another program makes one run much slower. So the
# timings have a floor and a long right tail. Five timings in milliseconds, one of them hit
# by another process:
#
# ```
# 10.1  10.3  10.2  10.2  31.0
# mean   = 71.8 / 5 = 14.36 ms     pulled up by one outlier
# median = the middle of 10.1 10.2 10.2 10.3 31.0 = 10.2 ms     untouched
# ```
#
# The median moves only when *half* the runs are disturbed. (The minimum is a fair choice
# too for a pure computation, which has a true floor; but it is one lucky run and has no
# interval. This module reports the median.)
#
# ## How sure: a bootstrap confidence interval
#
# With 20 more timings the median would come out a little different. How different? The
# **bootstrap** (Efron, 1979) answers from the data alone: treat the samples you have as
# the population, draw a new set of n samples from them *with replacement* (some twice,
# some not at all), and take its median. Do that 2,000 times. The spread of those 2,000
# medians is how much the median moves from one set of runs to the next; the middle 95% of
# them (the 2.5% and 97.5% quantiles) is the **95% confidence interval**.
#
# Worked on the five numbers above, three resamples of the 2,000 (indices drawn at random):
#
# ```
# indices 0 4 4 2 1 -> 10.1 31.0 31.0 10.2 10.3 -> median 10.3
# indices 3 3 0 1 2 -> 10.2 10.2 10.1 10.3 10.2 -> median 10.2
# indices 1 0 0 2 0 -> 10.3 10.1 10.1 10.2 10.1 -> median 10.1
# ```
#
# Of the 2,000 medians, the lowest 2.5% and the highest 2.5% are cut off. Here the
# interval comes out (10.1, 31.0): a resample has the outlier as its median whenever 3 of
# its 5 draws are index 4, which happens 5.8% of the time, more than the 2.5% cut. Five
# runs cannot rule out that 31 ms is the typical time; twenty runs can.
#
# Without replacement every resample would hold the same five numbers and the same median:
# an interval of width zero, and every difference would look significant. "With
# replacement" is the whole idea. `rng.integers(0, n, size=(resamples, n))` draws all the
# indices at once; `samples[indices]` is then a (resamples, n) matrix, one resample a row.
# The `seed` makes the interval reproducible.

# %%
#| export
def _resamples(samples, resamples, rng):
    """`resamples` bootstrap resamples of `samples`, one per row: (resamples, n)."""
    n = samples.size
    # TODO: draw a (resamples, n) matrix of random indices in 0..n-1 *with replacement*
    #       (rng.integers) and return samples at those indices.
    ### BEGIN SOLUTION
    indices = rng.integers(0, n, size=(resamples, n))
    return samples[indices]
    ### END SOLUTION


def _check_samples(samples, what="samples"):
    values = np.asarray(samples, dtype=np.float64).reshape(-1)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: need at least one finite timing, got {values}")
    return values


def _check_confidence(confidence, resamples):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence is a fraction between 0 and 1 (0.95 for 95%), "
                         f"got {confidence!r}")
    return _positive_int("resamples", resamples)


def bootstrap_ci(samples, stat=np.median, confidence=0.95, resamples=2000, seed=0):
    """The percentile bootstrap interval (low, high) of `stat` of `samples`.

    `stat` is called as stat(matrix, axis=1), one resample a row (np.median, np.mean and
    np.min accept that).

    >>> bootstrap_ci([10.1, 10.3, 10.2, 10.2, 31.0])
    (10.1, 31.0)
    """
    samples = _check_samples(samples)
    resamples = _check_confidence(confidence, resamples)
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2
    # TODO: compute stat of every resample (_resamples, then stat along axis 1) and
    #       return the tail and 1 - tail quantiles of those values, as two floats.
    ### BEGIN SOLUTION
    stats = stat(_resamples(samples, resamples, rng), axis=1)
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    ### END SOLUTION
    return float(low), float(high)

# %%
#| test: bootstrap (3 points)
def test_bootstrap():
    low, high = bootstrap_ci([10.1, 10.3, 10.2, 10.2, 31.0])
    assert (low, high) == (10.1, 31.0), (
        f"the median of 10.1 10.3 10.2 10.2 31.0 resampled 2,000 times: expected the "
        f"interval (10.1, 31.0), got ({low}, {high})")
    low, high = bootstrap_ci([10.1, 10.3, 10.2, 10.2, 31.0] * 4)
    assert (low, high) == (10.2, 10.3), (
        f"the same five numbers four times (20 runs): expected (10.2, 10.3), got "
        f"({low}, {high}); the outlier no longer reaches the interval")
    rng = np.random.default_rng(1)
    samples = rng.lognormal(0.0, 0.5, size=30)
    low, high = bootstrap_ci(samples)
    assert low < np.median(samples) < high, (
        f"the interval ({low:.3f}, {high:.3f}) should hold the samples' own median "
        f"{np.median(samples):.3f}")
    assert bootstrap_ci(samples) == (low, high), "the same seed gives the same interval"
    assert bootstrap_ci([4.0]) == (4.0, 4.0), "one sample: the interval is that sample"
    narrow = bootstrap_ci(samples, confidence=0.5)
    assert low <= narrow[0] <= narrow[1] <= high, (
        f"a 50% interval {narrow} lies inside the 95% one ({low:.3f}, {high:.3f})")

test_bootstrap()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

# Coverage in a seeded simulation: draw 200 sets of 15 timings from a skewed distribution
# whose median is known (lognormal: median exp(mu)); the 90% interval should hold it in
# about 90% of the sets.
_r = np.random.default_rng(7)
_true = np.exp(-3.0)
_held = 0
for _trial in range(200):
    _set = _r.lognormal(-3.0, 0.6, size=15)
    _lo, _hi = bootstrap_ci(_set, confidence=0.9, resamples=400, seed=_trial)
    _held += _lo <= _true <= _hi
assert 160 <= _held <= 195, (
    f"a 90% interval should hold the true median in about 180 of 200 simulated sets, "
    f"held it in {_held}. Resample with replacement (rng.integers over 0..n-1), n per "
    "resample, and take the (1 - confidence)/2 and (1 + confidence)/2 quantiles.")
_lo, _hi = bootstrap_ci(np.arange(1.0, 12.0), stat=np.mean, confidence=0.8, seed=3)
_means = np.arange(1.0, 12.0)[np.random.default_rng(3).integers(0, 11, (2000, 11))]
_want = np.quantile(_means.mean(axis=1), [0.1, 0.9])
assert np.allclose([_lo, _hi], _want), (
    f"bootstrap_ci(1..11, stat=np.mean, confidence=0.8, seed=3): expected {_want}, got "
    f"({_lo}, {_hi}). Use stat, confidence, resamples and seed as given.")
_lo, _hi = bootstrap_ci([2.0, 9.0], resamples=50, seed=1)
assert 2.0 <= _lo <= _hi <= 9.0 and _lo < _hi, (
    f"two samples 2 and 9: the interval lies within [2, 9] and has width, got ({_lo}, "
    f"{_hi})")
assert isinstance(_lo, float) and isinstance(_hi, float), "return two Python floats"
assert_raises(ValueError, bootstrap_ci, [], match="at least one")
assert_raises(ValueError, bootstrap_ci, [1.0, 2.0], confidence=95, match="confidence")
### END HIDDEN TESTS

# %% [markdown]
# ## Comparing two variants: a speed-up, its interval, a verdict
#
# A speed-up is `median(baseline) / median(candidate)`: 2.0 means the candidate takes half
# the time. It comes from two noisy sets of timings, so it has an interval too, and the
# bootstrap gives it the same way: resample *both* sets (they were measured separately),
# take the ratio of the two medians, 2,000 times; the middle 95% of the ratios is the
# interval of the speed-up.
#
# The verdict reads the interval, not the point:
#
# | interval of the speed-up | verdict |
# |---|---|
# | entirely above 1, e.g. (1.08, 1.21) | `"faster"` |
# | entirely below 1, e.g. (0.62, 0.90) | `"slower"` |
# | holds 1, e.g. (0.97, 1.12) | `"within noise"` |
#
# A speed-up of 1.04 with the interval (0.97, 1.12) is *not* a speed-up: another set of
# runs could as well give 0.98. The optimize milestone never reports a speed-up whose
# interval holds 1.
#
# Two shortcuts look right and are not. Comparing only the medians turns every bit of noise
# into a verdict. Checking whether the two *measurements'* intervals overlap is too strict
# in the other direction: two intervals can overlap a little while the ratio's interval
# still lies above 1.

# %%
#| export
@dataclass
class Comparison:
    """A candidate against a baseline: `speedup` = median(baseline) / median(candidate),
    `ci` its bootstrap interval, `verdict` "faster", "slower" or "within noise"."""

    speedup: float
    ci: tuple
    verdict: str
    confidence: float = 0.95

    def __str__(self):
        low, high = self.ci
        percent = round(100 * self.confidence)
        return (f"{self.verdict}: {self.speedup:.3g}x "
                f"({percent}% CI {low:.3g}x .. {high:.3g}x)")


def _timings(value, role):
    samples = value.samples if isinstance(value, Measurement) else value
    samples = _check_samples(samples, what=f"compare: the {role}")
    if np.median(samples) <= 0:
        raise ValueError(f"compare: the {role} has a median time of 0, below what the "
                         "timer resolves; measure it with number= large enough")
    return samples


def compare(baseline, candidate, *, confidence=0.95, resamples=2000, seed=0):
    """How much faster `candidate` is than `baseline` (Measurements or arrays of timings).

    >>> print(compare(measure(slow), measure(fast)))                # doctest: +SKIP
    faster: 3.1x (95% CI 2.9x .. 3.3x)
    """
    base = _timings(baseline, "baseline")
    cand = _timings(candidate, "candidate")
    resamples = _check_confidence(confidence, resamples)
    rng = np.random.default_rng(seed)
    tail = (1.0 - confidence) / 2
    # TODO: the speed-up is median(base) / median(cand). For its interval, take the
    #       median of every resample of base and of cand (_resamples, np.median along axis
    #       1), divide them pairwise, and take the tail and 1 - tail quantiles of the
    #       ratios. The verdict: "faster" when the whole interval lies above 1, "slower"
    #       when it lies below 1, "within noise" otherwise.
    ### BEGIN SOLUTION
    speedup = float(np.median(base) / np.median(cand))
    base_medians = np.median(_resamples(base, resamples, rng), axis=1)
    cand_medians = np.median(_resamples(cand, resamples, rng), axis=1)
    low, high = np.quantile(base_medians / cand_medians, [tail, 1.0 - tail])
    if low > 1:
        verdict = "faster"
    elif high < 1:
        verdict = "slower"
    else:
        verdict = "within noise"
    ### END SOLUTION
    return Comparison(speedup, (float(low), float(high)), verdict, confidence)

# %% [markdown]
# ### Test it: clearly faster, clearly slower, and noise
#
# Synthetic timings with known answers: a candidate that takes half the time, one that takes
# twice as long, and two sets drawn from the *same* distribution.

# %%
#| test: compare_verdicts (3 points)
def test_compare_verdicts():
    rng = np.random.default_rng(0)
    slow = 0.010 * (1 + 0.05 * rng.random(20))             # about 10 ms, 5% noise
    fast = 0.005 * (1 + 0.05 * rng.random(20))             # about 5 ms
    c = compare(slow, fast)
    assert c.verdict == "faster" and 1.8 < c.speedup < 2.2, (
        f"5 ms against 10 ms is a speed-up of about 2 and 'faster', got {c}")
    assert c.ci[0] <= c.speedup <= c.ci[1], f"the interval should hold the speed-up: {c}"
    c = compare(fast, slow)
    assert c.verdict == "slower" and 0.45 < c.speedup < 0.55, (
        f"10 ms against a 5 ms baseline is a speed-up of about 0.5 and 'slower', got {c}")
    same = 0.010 * (1 + 0.3 * rng.random((2, 20)))         # one distribution, twice
    c = compare(same[0], same[1])
    assert c.verdict == "within noise" and c.ci[0] < 1 < c.ci[1], (
        f"two sets of the same timings: the interval should hold 1 and the verdict be "
        f"'within noise', got {c}")
    print(c)

test_compare_verdicts()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

# The medians differ by 4%, with noise of 30%: a point speed-up of 1.04 is no verdict.
_base = np.array([1.04, 0.80, 1.30, 1.10, 0.75, 1.35, 1.04, 0.90, 1.20, 1.00, 1.10])
_cand = np.array([1.00, 0.78, 1.28, 1.05, 0.74, 1.33, 0.95, 1.00, 1.25, 0.85, 1.06])
_c = compare(_base, _cand)
assert abs(_c.speedup - 1.04) < 1e-9 and _c.verdict == "within noise", (
    f"medians 1.04 and 1.00 with noise of about 30%: the speed-up 1.04's interval holds "
    f"1, so the verdict is 'within noise', got {_c}. Read the verdict off the interval, "
    "not off the speed-up.")
_slow = np.full(9, 2.0) + 0.01 * np.arange(9)
_fast = np.full(9, 1.0) + 0.01 * np.arange(9)
_c = compare(Measurement(_slow), Measurement(_fast))
assert _c.verdict == "faster" and abs(_c.speedup - 2.04 / 1.04) < 1e-9, (
    f"Measurements work as well as arrays; medians 2.04 and 1.04 give {2.04 / 1.04:.4f}, "
    f"got {_c}")
assert 1.8 < _c.ci[0] < _c.speedup < _c.ci[1] < 2.2, (
    f"the speed-up's interval: resample both sets, divide the resampled medians, "
    f"got {_c}")
# The two intervals overlap, but the speed-up's interval lies above 1: still "faster".
_r = np.random.default_rng(11)
_z = _r.standard_normal(400)
_a = 1.000 + 0.10 * _z                            # the same noise, shuffled, 2.3% less
_b = 0.977 + 0.10 * _r.permutation(_z)
_ma, _mb = Measurement(_a), Measurement(_b)
assert _mb.ci[1] > _ma.ci[0], "(the test's data: the two intervals overlap)"
_c = compare(_ma, _mb)
assert _c.verdict == "faster" and _c.ci[0] > 1, (
    f"the candidate is 2.3% faster over 400 runs each: the speed-up's interval lies "
    f"above 1 although the two measurements' intervals overlap; expected 'faster', "
    f"got {_c}")
_c90 = compare(_base, _cand, confidence=0.5, seed=4)
assert _c.confidence == 0.95 and _c90.confidence == 0.5 and (
    _c90.ci[1] - _c90.ci[0] < _c.ci[1] - _c.ci[0] + 1), "confidence is passed through"
# Identical timings: every resampled ratio is exactly 1, an interval [1, 1] lies neither
# above nor below 1.
_c = compare(np.full(10, 0.5), np.full(10, 0.5))
assert _c.ci == (1.0, 1.0) and _c.verdict == "within noise", (
    f"two sets of identical timings give the interval [1, 1], which is not above 1 (so "
    f"not 'faster') nor below 1 (not 'slower'): 'within noise', got {_c}")
# A constant baseline against a noisy candidate: the interval comes from the candidate's
# resampled medians, one per resample, so it has a width.
_c = compare(np.full(15, 1.0), np.linspace(0.5, 1.5, 15))
assert _c.ci[1] - _c.ci[0] > 0.1, (
    f"the candidate's timings spread from 0.5 to 1.5: the speed-up's interval must be "
    f"wide, got {_c.ci}. Take the median of each resample (axis 1), not of them all.")
assert_raises(ValueError, compare, [0.0, 0.0], [1.0, 1.0], match="median")
assert_raises(ValueError, compare, [], [1.0], match="at least one")
### END HIDDEN TESTS

# %% [markdown]
# ## The environment: what a number depends on
#
# "3 ms" means nothing without the machine it came from. A time depends on:
#
# - the **BLAS** that NumPy calls for every matrix product (OpenBLAS, MKL, Accelerate), its
#   version, and the processor kernel it chose;
# - the **threads** it may use, set by environment variables *before* NumPy loads
#   (`OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS`): pin them, e.g.
#   `OMP_NUM_THREADS=1 python train.py`, or the BLAS takes every core it sees, and on a
#   busy machine its threads wait for each other at every product;
# - the **load**: `os.getloadavg()` is how many processes wanted a core, averaged over 1,
#   5 and 15 minutes. Above the number of cores, every timing is someone else's too;
# - Python's and NumPy's versions, the processor, the date.
#
# NumPy ≥ 1.26 reports its own build, BLAS included, as a dictionary:
# `np.show_config(mode="dicts")["Build Dependencies"]["blas"]`. `environment()` gathers all
# of it with NumPy and the standard library only; store it with every result you keep.

# %%
#| export
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _blas():
    """What NumPy says about the BLAS it was built with: (name and version, details)."""
    try:
        config = np.show_config(mode="dicts")
    except TypeError:                                       # NumPy < 1.26: no dicts
        return "unknown (NumPy < 1.26 does not report it)", ""
    blas = config.get("Build Dependencies", {}).get("blas", {})
    name = f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()
    return name, blas.get("openblas configuration", "")


def environment():
    """What a timing depends on: Python, NumPy, the BLAS, the thread variables (None when
    unset), the CPUs, the machine, the load average and the date, as a dict."""
    blas, blas_config = _blas()
    # TODO: threads: a dict {name: os.environ's value for it, None when unset} for every
    #       name of THREAD_VARIABLES. load: os.getloadavg() where os has it, else None.
    ### BEGIN SOLUTION
    threads = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    ### END SOLUTION
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "blas_config": blas_config,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "system": platform.platform(),
        "load": load,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }

# %%
_env = environment()
for _key, _value in _env.items():
    print(f"{_key:>12}: {_value}")
if not any(_env["threads"].values()):
    print("no thread variable is set: the BLAS uses as many threads as it sees cores")

# %%
#| test: environment_keys (1 point)
def test_environment_keys():
    env = environment()
    expected = {"python", "numpy", "blas", "threads", "cpu_count", "machine", "load",
                "date"}
    assert expected <= set(env), f"environment() lacks {sorted(expected - set(env))}"
    assert env["numpy"] == np.__version__, "numpy: the version NumPy reports"
    assert set(env["threads"]) == set(THREAD_VARIABLES), (
        f"threads: one entry per variable of THREAD_VARIABLES, got {env['threads']}")
    saved = os.environ.pop("NUMEXPR_NUM_THREADS", None)
    try:
        assert environment()["threads"]["NUMEXPR_NUM_THREADS"] is None, (
            "an unset thread variable is recorded as None")
        os.environ["NUMEXPR_NUM_THREADS"] = "3"
        got = environment()["threads"]["NUMEXPR_NUM_THREADS"]
        assert got == "3", f"NUMEXPR_NUM_THREADS=3 should be recorded as '3', got {got!r}"
    finally:
        os.environ.pop("NUMEXPR_NUM_THREADS", None)
        if saved is not None:
            os.environ["NUMEXPR_NUM_THREADS"] = saved
    if hasattr(os, "getloadavg"):
        assert len(env["load"]) == 3, f"load: the three load averages, got {env['load']}"

test_environment_keys()

# %% [markdown]
# ## Where does the time go: a profiler
#
# Before optimizing, find out which layer costs what. For every layer, the profiler reports
# its **parameters**, its **FLOPs** (floating-point operations), the **bytes of its output**
# (what the next layer must read, and what training keeps for backward) and its **time**.
#
# FLOPs come from formulas, not from the clock: a multiply-add is 2 FLOPs, and a layer's
# work is its matrix products (bias additions and activations are small beside them and not
# counted here).
#
# | layer | input → output | FLOPs |
# |---|---|---|
# | `Linear(i, o)` | (M, i) → (M, o), M rows (all leading axes) | 2·M·i·o |
# | `Conv2d(c, o, K)` | (N, c, H, W) → (N, o, Ho, Wo) | 2·N·Ho·Wo·o·c·K·K |
# | `MultiHeadAttention(D, h)` | (B, T, D) → (B, T, D) | 8·B·T·D² + 4·B·T²·D |
#
# (the attention's first term is its four D×D projections, the second the scores q·kᵀ and
# the weighted sum of the values, 2·B·T²·D each)
#
# Worked example, a batch of 64 digits: `Linear(784, 128)` does 2·64·784·128 = 12.8 MFLOP;
# `Conv2d(1, 16, 3, padding=1)` on (64, 1, 28, 28) gives (64, 16, 28, 28) and does
# 2·64·28·28·16·1·3·3 = 14.5 MFLOP, about the same from 160 parameters as the Linear from
# 100,480. The attention's T² term is why long contexts are expensive: at T = D it equals
# half the projections' work. (The causal mask throws away half the scores, but they are
# computed all the same, so they count.)

# %%
#| export
def layer_flops(layer, input_shape, output_shape):
    """FLOPs of one call of `layer` (2 per multiply-add of its matrix products) from its
    input and output shapes; None for a layer without a formula."""
    # TODO: Linear: 2 · (rows: the product of the output's leading axes) · in · out;
    #       Conv2d: 2 · N · Ho · Wo (output shape) · C_out · C_in · K · K;
    #       MultiHeadAttention on (B, T, D): 8 · B · T · D² + 4 · B · T² · D. Else None.
    ### BEGIN SOLUTION
    if isinstance(layer, Linear):
        rows = int(np.prod(output_shape[:-1]))
        return 2 * rows * layer.in_features * layer.out_features
    if isinstance(layer, Conv2d):
        n, c_out, h_out, w_out = output_shape
        k = layer.kernel_size
        return 2 * n * h_out * w_out * c_out * layer.in_channels * k * k
    if isinstance(layer, MultiHeadAttention):
        batch, length, dim = input_shape
        return 8 * batch * length * dim * dim + 4 * batch * length * length * dim
    ### END SOLUTION
    return None

# %%
#| test: flop_counts (2 points)
def test_flop_counts():
    got = layer_flops(Linear(784, 128), (64, 784), (64, 128))
    assert got == 12_845_056, (
        f"Linear(784, 128) on 64 rows: 2*64*784*128 = 12,845,056 FLOPs, got {got}")
    got = layer_flops(Conv2d(1, 16, 3, padding=1), (64, 1, 28, 28), (64, 16, 28, 28))
    assert got == 14_450_688, (
        f"Conv2d(1, 16, 3, padding=1) on (64, 1, 28, 28): 2*64*28*28*16*1*9 = "
        f"14,450,688 FLOPs, got {got}")
    assert layer_flops(ReLU(), (4, 5), (4, 5)) is None, "a ReLU has no formula: None"

test_flop_counts()
### BEGIN HIDDEN TESTS
from tinytorch.text.attention import MultiHeadAttention as _MHA

_got = layer_flops(Linear(6, 5), (2, 3, 6), (2, 3, 5))
assert _got == 2 * 6 * 6 * 5, (
    f"Linear(6, 5) on (2, 3, 6): every leading axis is rows, 2*(2*3)*6*5 = 360, "
    f"got {_got}")
_got = layer_flops(Conv2d(3, 4, 5, stride=2), (2, 3, 13, 9), (2, 4, 5, 3))
assert _got == 2 * 2 * 5 * 3 * 4 * 3 * 25, (
    f"Conv2d(3, 4, 5, stride=2) on (2, 3, 13, 9) -> (2, 4, 5, 3): "
    f"2*N*Ho*Wo*C_out*C_in*K*K = {2 * 2 * 5 * 3 * 4 * 3 * 25}, got {_got} (the output's "
    "size, not the input's)")
_got = layer_flops(_MHA(8, 2), (3, 5, 8), (3, 5, 8))
_want = 8 * 3 * 5 * 64 + 4 * 3 * 25 * 8
assert _got == _want, (
    f"MultiHeadAttention(8, 2) on (3, 5, 8): 8*B*T*D^2 + 4*B*T^2*D = {_want}, "
    f"got {_got}: four projections, then the scores (T x T per head) and the weighted "
    "sum of the values")
### END HIDDEN TESTS

# %% [markdown]
# ### Timing each layer, and leaving the model as it was
#
# To time a layer while the whole model runs, replace its `forward` for the duration by a
# wrapper that reads the clock, calls the real `forward`, reads the clock again and notes
# the input's shape and the output's bytes. `Module.__call__` calls `self.forward`, and an
# attribute set on the *instance* is found before the class's method: so
# `layer.forward = wrapper` is enough, and deleting that attribute restores the class's.
#
# The profiler must put every `forward` back **whatever happens**, also when the model
# raises halfway (a wrong input shape): a model left wrapped would run the profiler's code
# in every later call. That is what `try: ... finally:` is for.
#
# Which layers get a row? The **units**: a layer with a FLOP formula (a
# `MultiHeadAttention` counts as one, its four projections inside it), or a layer without
# children. Each unit is wrapped once, so no time is counted twice. The last row, `total`,
# is the whole forward: what the units do not account for is work the containers do
# themselves (a residual addition, a tied output head).

# %%
#| export
@dataclass
class LayerProfile:
    """One row of profile(): a layer (or the whole model, name "total") in one forward
    pass. `seconds` is the median over the repeats; `flops` None means no formula."""

    name: str
    kind: str
    parameters: int
    flops: int | None
    output_bytes: int
    seconds: float
    calls: int = 1


def _children(layer):
    """(name, sub-layer) in definition order. Activations (module 03) are not Modules, so
    they are not among a Module's registered children: read the instance's attributes,
    and a Sequential's list of layers."""
    if isinstance(layer, Sequential):
        return [(str(i), item) for i, item in enumerate(layer.layers)]
    return [(name, value) for name, value in vars(layer).items()
            if isinstance(value, (Module, Activation))]


def _units(model):
    """(dotted name, layer) of the layers profile() times: those with a FLOP formula and
    those without sub-layers, each once (a shared layer under its first name)."""
    seen = set()

    def walk(layer, name):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        children = _children(layer)
        if isinstance(layer, (Linear, Conv2d, MultiHeadAttention)) or not children:
            yield name or type(layer).__name__, layer
            return
        for child_name, child in children:
            yield from walk(child, f"{name}.{child_name}" if name else child_name)

    yield from walk(model, "")


def _parameter_count(layer):
    return sum(p.size for p in layer.parameters()) if hasattr(layer, "parameters") else 0


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else ()


def _nbytes(value):
    data = value.data if isinstance(value, Tensor) else value
    if isinstance(data, np.ndarray):
        return int(data.nbytes)
    if isinstance(data, (tuple, list)):
        return sum(_nbytes(item) for item in data)
    return 0


def _wrap(layer, name, record, timer):
    """Replace layer.forward by a timed wrapper; return what restores it."""
    own = layer.__dict__.get("forward")         # a forward set on the instance, if any
    inner = layer.forward

    def timed(*args, **kwargs):
        start = timer()
        out = inner(*args, **kwargs)
        first = args[0] if args else next(iter(kwargs.values()), None)
        record(name, layer, _shape(first), out, timer() - start)
        return out

    # TODO: set `timed` as the instance's forward with object.__setattr__ (Module's own
    #       __setattr__ is for Parameters and sub-Modules), and return a function of no
    #       arguments that undoes it: it puts `own` back when there was one, and
    #       otherwise deletes the instance attribute (object.__delattr__).
    ### BEGIN SOLUTION
    object.__setattr__(layer, "forward", timed)

    def restore():
        if own is not None:
            object.__setattr__(layer, "forward", own)
        else:
            object.__delattr__(layer, "forward")
    return restore
    ### END SOLUTION


def profile(model, x, *, warmup=1, repeats=5, timer=time.perf_counter):
    """Run model(x) `warmup` + `repeats` times without recording a graph and return a
    LayerProfile per unit (see _units), then one named "total" for the whole model."""
    warmup = _positive_int("warmup", warmup, smallest=0)
    repeats = _positive_int("repeats", repeats)
    units = list(_units(model))
    times = {name: [] for name, _ in units}
    passes = {}           # name -> this pass's {"flops", "bytes", "seconds", "calls"}

    def record(name, layer, input_shape, out, seconds):
        entry = passes.setdefault(name, {"flops": 0, "bytes": 0, "seconds": 0.0,
                                         "calls": 0})
        flops = layer_flops(layer, input_shape, _shape(out))
        entry["flops"] = None if flops is None else entry["flops"] + flops
        entry["bytes"] += _nbytes(out)
        entry["seconds"] += seconds
        entry["calls"] += 1

    totals, restores = [], []
    try:
        for name, layer in units:
            restores.append(_wrap(layer, name, record, timer))
        with no_grad():
            for run in range(warmup + repeats):
                passes.clear()
                start = timer()
                out = model(x)
                elapsed = timer() - start
                if run >= warmup:
                    totals.append(elapsed)
                    for name, seconds in times.items():
                        seconds.append(passes.get(name, {}).get("seconds", 0.0))
    finally:
        for restore in reversed(restores):
            restore()
    rows = []
    for name, layer in units:
        entry = passes.get(name, {"flops": None, "bytes": 0, "calls": 0})
        rows.append(LayerProfile(name, type(layer).__name__, _parameter_count(layer),
                                 entry["flops"], entry["bytes"],
                                 float(np.median(times[name])), entry["calls"]))
    counted = [row.flops for row in rows if row.flops is not None]
    rows.append(LayerProfile("total", type(model).__name__, _parameter_count(model),
                             sum(counted) if counted else None, _nbytes(out),
                             float(np.median(totals))))
    return rows


def format_table(rows):
    """The rows of profile() as a text table, with each layer's share of the time."""
    total = rows[-1].seconds if rows and rows[-1].name == "total" else None
    lines = [f"{'layer':<22}{'kind':<20}{'params':>10}{'MFLOP':>10}{'out KB':>10}"
             f"{'ms':>10}{'time':>7}"]
    for row in rows:
        flops = "-" if row.flops is None else f"{row.flops / 1e6:.3f}"
        share = f"{100 * row.seconds / total:.0f}%" if total else ""
        lines.append(f"{row.name:<22.22}{row.kind:<20.20}{row.parameters:>10,}"
                     f"{flops:>10}{row.output_bytes / 1024:>10.1f}"
                     f"{1e3 * row.seconds:>10.3f}{share:>7}")
    return "\n".join(lines)

# %% [markdown]
# ### Test it: the profiler on an MLP and a small CNN
#
# The parameter and FLOP counts of each row must equal the hand counts; the times come from
# a fake clock, so they are exact too. And afterwards no layer may keep a wrapper, also
# when the model raised in the middle of a forward pass.

# %%
#| test: profile_counts (3 points)
def test_profile_counts():
    manual_seed(0)
    mlp = Sequential(Linear(20, 16), ReLU(), Linear(16, 3))
    x = Tensor(np.zeros((8, 20), dtype=np.float32))
    rows = profile(mlp, x)
    names = [row.name for row in rows]
    assert names == ["0", "1", "2", "total"], (
        f"one row per layer of Sequential(Linear, ReLU, Linear), then 'total', "
        f"got {names}")
    params = [row.parameters for row in rows]
    assert params == [20 * 16 + 16, 0, 16 * 3 + 3, 387], (
        f"parameters per row: [336, 0, 51, 387] expected, got {params}")
    flops = [row.flops for row in rows]
    assert flops == [2 * 8 * 20 * 16, None, 2 * 8 * 16 * 3, 5888], (
        f"FLOPs per row for a batch of 8: [5120, None, 768, 5888] expected, got {flops}")
    assert [row.output_bytes for row in rows] == [512, 512, 96, 96], (
        f"output bytes of (8, 16), (8, 16), (8, 3), (8, 3) float32 arrays: 512, 512, 96, "
        f"96, got {[row.output_bytes for row in rows]}")
    assert all(mlp[i].__dict__.get("forward") is None for i in range(3)), (
        "profile must put every layer's forward back: a layer still has the wrapper")
    print(format_table(rows))

test_profile_counts()
### BEGIN HIDDEN TESTS
from tinytorch.core.spatial import Conv2d as _Conv2d
from tinytorch.core.spatial import Flatten as _Flatten
from tinytorch.core.spatial import MaxPool2d as _MaxPool2d


class _StepClock(_FakeClock):
    """Each reading advances the clock by 1 s: every timed interval is exact."""

    def __call__(self):
        self.now += 1.0
        return self.now


manual_seed(1)
_cnn = Sequential(_Conv2d(1, 4, 3, padding=1), ReLU(), _MaxPool2d(2),
                  _Conv2d(4, 6, 3, stride=2), _Flatten(), Linear(6 * 1 * 1, 5))
_x = Tensor(np.zeros((2, 1, 6, 6), dtype=np.float32))
_rows = profile(_cnn, _x, warmup=2, repeats=3, timer=_StepClock())
assert [r.kind for r in _rows] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "Flatten",
                                   "Linear", "Sequential"], [r.kind for r in _rows]
_want = [1 * 4 * 9 + 4, 0, 0, 4 * 6 * 9 + 6, 0, 6 * 5 + 5]
_got = [r.parameters for r in _rows]
assert _got[:-1] == _want and _got[-1] == sum(_want), (
    f"parameters of the CNN's layers: expected {_want} and {sum(_want)} in total, got "
    f"{[r.parameters for r in _rows]}")
# conv1 (2, 1, 6, 6) -> (2, 4, 6, 6); pool -> (2, 4, 3, 3); conv2 stride 2 -> (2, 6, 1, 1)
_want = [2 * 2 * 36 * 4 * 1 * 9, None, None, 2 * 2 * 1 * 6 * 4 * 9, None, 2 * 2 * 6 * 5]
assert [r.flops for r in _rows[:-1]] == _want and _rows[-1].flops == 6168, (
    f"FLOPs of the CNN's layers: expected {_want} and 6168 in total, got "
    f"{[r.flops for r in _rows]}")
assert [r.output_bytes for r in _rows] == [1152, 1152, 288, 48, 48, 40, 40], (
    f"output bytes (float32): expected [1152, 1152, 288, 48, 48, 40, 40], got "
    f"{[r.output_bytes for r in _rows]}")
# the step clock advances 1 per reading: a layer's own wrapper reads it twice (1 s); the
# whole model reads it 2 + 2 per layer times (2 * 6 + 1 s)
assert [r.seconds for r in _rows] == [1.0] * 6 + [13.0], (
    f"with a clock that ticks 1 s per reading, each layer's time is 1 s and the total "
    f"13 s, got {[r.seconds for r in _rows]}: time each layer's call from a reading just "
    "before to one just after")
assert all(r.calls == 1 for r in _rows), [r.calls for r in _rows]
assert all("forward" not in layer.__dict__ for layer in _cnn.layers), (
    "profile left a wrapper on a layer's forward")
# a model that raises in its third layer: every wrapper removed all the same
_bad = Tensor(np.zeros((2, 3, 6, 6), dtype=np.float32))
_m = Sequential(ReLU(), ReLU(), _Conv2d(1, 2, 3))
try:
    profile(_m, _bad)
except ValueError:
    pass
else:
    raise AssertionError("a Conv2d(1, ...) fed 3 channels should raise ValueError")
_left = [type(layer).__name__ for layer in _m.layers if "forward" in layer.__dict__]
assert not _left, (
    f"after a forward pass that raised, {_left} still had the profiler's wrapper: "
    "restore in a finally block")
# a forward set on the instance before profiling is put back, not deleted
_layer = ReLU()
_own = _layer.forward
_layer.forward = _own
_seq = Sequential(_layer)
profile(_seq, Tensor(np.ones((2, 2))))
assert _layer.__dict__.get("forward") is _own, (
    "a layer whose forward was set on the instance must get that forward back")
# a layer used twice per pass: one row, two calls, its FLOPs and bytes summed
_shared = Linear(4, 4)
_twice = Sequential(_shared, ReLU(), _shared)
_rows = profile(_twice, Tensor(np.zeros((3, 4), dtype=np.float32)), timer=_StepClock())
assert [r.name for r in _rows] == ["0", "1", "total"] and _rows[0].calls == 2, (
    f"a shared Linear is one row with calls=2, got {[(r.name, r.calls) for r in _rows]}")
assert _rows[0].flops == 2 * 2 * 3 * 4 * 4 and _rows[0].seconds == 2.0, (
    f"the shared Linear's FLOPs and time add up over its two calls: expected 192 and "
    f"2 s, got {_rows[0].flops} and {_rows[0].seconds}")
### END HIDDEN TESTS

# %% [markdown]
# ## Use it: the kernels of the earlier modules
#
# Now the harness earns its keep. First, Python loops against BLAS for a matrix product
# (module 15's first step): three loops do the same multiply-adds as `np.matmul`.

# %%
def matmul_loops(a, b):
    """(n, k) @ (k, m) by three Python loops."""
    out = np.zeros((a.shape[0], b.shape[1]), dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            total = 0.0
            for p in range(a.shape[1]):
                total += a[i, p] * b[p, j]
            out[i, j] = total
    return out


_a = _rng.standard_normal((24, 24)).astype(np.float32)
assert np.allclose(matmul_loops(_a, _a), _a @ _a, atol=1e-4)      # same result first
_loops = measure(lambda: matmul_loops(_a, _a), warmup=1, repeats=5)
_blas_mm = measure(lambda: _a @ _a, repeats=30, number=20)
print("loops :", _loops)
print("matmul:", _blas_mm)
print("np.matmul against loops:", compare(_loops, _blas_mm))

# %% [markdown]
# Next, convolution: module 09's loop over the kernel offsets against **im2col**, which
# gathers every K×K patch into one row of a matrix (`sliding_window_view` gives the patches
# as a view) and does the whole convolution as one matrix product. Module 15 builds it in
# full, with its gradients; here a forward pass is enough to measure. Checked first,
# timed second: an optimization that gives a wrong answer is not one.

# %%
def conv2d_im2col(x, w, padding=1):
    """Stride-1 convolution of arrays by im2col: one GEMM of (N·Ho·Wo, C·K·K) patches."""
    n, c, _, _ = x.shape
    c_out, _, k, _ = w.shape
    pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
    xp = np.pad(x.transpose(0, 2, 3, 1), pad)                     # (N, Hp, Wp, C)
    windows = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
    h_out, w_out = windows.shape[1], windows.shape[2]             # (N, Ho, Wo, C, K, K)
    cols = windows.reshape(n * h_out * w_out, c * k * k)          # (N·Ho·Wo, C·K·K)
    out = cols @ w.reshape(c_out, c * k * k).T                    # (N·Ho·Wo, C_out)
    return out.reshape(n, h_out, w_out, c_out).transpose(0, 3, 1, 2)


_x = _rng.standard_normal((8, 16, 14, 14)).astype(np.float32)
_w = _rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
_diff = np.abs(conv2d_im2col(_x, _w) - conv2d_forward(_x, _w, None, 1, 1)).max()
print(f"largest difference, im2col against module 09: {_diff:.1e}")
_offsets = measure(lambda: conv2d_forward(_x, _w, None, 1, 1), repeats=15)
_im2col = measure(lambda: conv2d_im2col(_x, _w), repeats=15)
print("module 09, kernel offsets:", _offsets)
print("im2col                   :", _im2col)
print("im2col against module 09 :", compare(_offsets, _im2col))

# %% [markdown]
# On small images the two are close: which one wins, and whether the verdict says so, may
# change from one machine (and one load) to the next. That is the point of the interval.
# And a function against itself, measured twice, should come out "within noise" (with a
# 95% interval, about one run in twenty will not: that is what 95% means).

# %%
print("the same function twice:", compare(_im2col, measure(lambda: conv2d_im2col(_x, _w),
                                                           repeats=15)))

# %% [markdown]
# ## Use it: where a model spends its time
#
# The `cnn` milestone's network on a batch of 16 digits, then a small GPT of module 14 on
# 4 sequences of 32 tokens.

# %%
manual_seed(0)
_cnn = Sequential(Conv2d(1, 16, 3, padding=1), ReLU(), MaxPool2d(2),
                  Conv2d(16, 32, 3, padding=1), ReLU(), MaxPool2d(2),
                  Flatten(), Linear(32 * 7 * 7, 64), ReLU(), Linear(64, 10))
_digits = Tensor(_rng.standard_normal((16, 1, 28, 28)).astype(np.float32))
print(format_table(profile(_cnn, _digits)))

# %%
manual_seed(0)
_gpt = GPT(GPTConfig(vocab_size=65, block_size=32, n_layer=2, n_head=4, n_embd=64))
_ids = _rng.integers(0, 65, size=(4, 32))
print(format_table(profile(_gpt, _ids, repeats=3)))

# %% [markdown]
# Read the tables: which layer has the most FLOPs, and is it the one that takes the most
# time? A layer with few FLOPs and a large share of the time (a pooling layer, a
# LayerNorm, an embedding lookup) is bound by memory traffic or Python overhead, not by
# arithmetic: more BLAS will not help it, fewer passes over memory will. The `total` row
# against the sum of the layers is the work no layer owns (the residual additions of the
# blocks, for the GPT).
#
# ## What you built, and what comes next
#
# - `measure`: warm-up not recorded, repeats, `number` calls per sample, an injectable
#   clock; `Measurement` with median, mean, stdev and a bootstrap interval.
# - `bootstrap_ci`: resampling with replacement, the percentile interval.
# - `compare`: a speed-up with its interval, and a verdict that says "within noise" when
#   the interval holds 1.
# - `environment()`: the BLAS, the threads, the machine, the load and the date.
# - `profile` and `format_table`: parameters, FLOPs, output bytes and time per layer, the
#   model left exactly as it was.
#
# Run `tito milestone optimize`: it applies modules 15–18 to the models you trained in the
# earlier milestones and measures every before/after with this harness, each optimized
# output checked against its unoptimized twin, and reports no speed-up whose interval holds
# 1. Module 20, the capstone, then integrates everything into one served system.
