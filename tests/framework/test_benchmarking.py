"""Module 19's harness on synthetic timings with known answers (a fake clock: no test depends
on how fast this machine is): warm-up not recorded, per-call samples, the bootstrap interval's
coverage in a seeded simulation, the verdicts; the profiler's parameter and FLOP counts against
hand counts and against PyTorch's FLOP counter, its wrappers removed (also after an
exception); environment()'s record."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from tinytorch.core.activations import ReLU
from tinytorch.core.layers import Linear, Sequential, manual_seed
from tinytorch.core.spatial import Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor, is_grad_enabled
from tinytorch.models.transformer import GPT, GPTConfig, count_parameters
from tinytorch.perf.benchmarking import (
    THREAD_VARIABLES,
    Comparison,
    Measurement,
    bootstrap_ci,
    compare,
    environment,
    format_table,
    layer_flops,
    measure,
    profile,
)
from tinytorch.text.attention import MultiHeadAttention


class FakeClock:
    """A timer whose reading moves only when the work it hands out runs."""

    def __init__(self):
        self.now = 0.0
        self.calls = 0

    def __call__(self):
        return self.now

    def work(self, durations):
        remaining = iter(durations)

        def fn():
            self.calls += 1
            self.now += next(remaining)
        return fn


class TickClock(FakeClock):
    """Every reading advances the time by one second."""

    def __call__(self):
        self.now += 1.0
        return self.now


# ---- measure ----------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(warmup=st.integers(0, 4), repeats=st.integers(1, 12), number=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_measure_records_per_call_means_of_the_calls_after_the_warm_up(warmup, repeats, number,
                                                                         seed):
    durations = np.random.default_rng(seed).uniform(0.5, 5.0, warmup + repeats * number)
    clock = FakeClock()
    m = measure(clock.work(durations), warmup=warmup, repeats=repeats, number=number,
                timer=clock)
    expected = durations[warmup:].reshape(repeats, number).mean(axis=1)
    assert clock.calls == warmup + repeats * number
    np.testing.assert_allclose(m.samples, expected, rtol=1e-12)
    assert m.median == pytest.approx(np.median(expected))
    assert m.mean == pytest.approx(np.mean(expected))
    assert m.stdev == pytest.approx(np.std(expected, ddof=1) if repeats > 1 else 0.0)
    assert m.number == number


def test_warm_up_calls_are_not_recorded_even_when_they_dominate():
    clock = FakeClock()
    m = measure(clock.work([1000.0, 500.0, 1.0, 1.0, 1.0]), warmup=2, repeats=3, timer=clock)
    assert m.samples.tolist() == [1.0, 1.0, 1.0]
    assert m.ci == (1.0, 1.0)


def test_measurement_summary_names_median_interval_and_runs():
    m = Measurement(np.array([0.010, 0.011, 0.012, 0.010, 0.050]), number=4)
    text = str(m)
    assert "median" in text and "CI" in text and "5 runs of 4" in text and "ms" in text
    low, high = m.ci
    assert low <= m.median <= high


@pytest.mark.parametrize("kwargs, word", [({"repeats": 0}, "repeats"),
                                          ({"number": 0}, "number"),
                                          ({"warmup": -1}, "warmup"),
                                          ({"repeats": 2.5}, "repeats")])
def test_measure_refuses_bad_counts_with_a_message_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        measure(lambda: None, **kwargs)


def test_measure_refuses_what_it_cannot_call():
    with pytest.raises(TypeError, match="lambda"):
        measure(3.0)


# ---- bootstrap_ci -----------------------------------------------------------------------------

def test_bootstrap_ci_is_the_percentile_interval_of_resamples_with_replacement():
    samples = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0])
    got = bootstrap_ci(samples, stat=np.mean, confidence=0.9, resamples=500, seed=4)
    picks = np.random.default_rng(4).integers(0, samples.size, (500, samples.size))
    want = np.quantile(samples[picks].mean(axis=1), [0.05, 0.95])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert bootstrap_ci([10.1, 10.3, 10.2, 10.2, 31.0]) == (10.1, 31.0)


@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_bootstrap_interval_covers_the_true_median_at_about_the_stated_rate(confidence):
    """300 seeded sets of 25 skewed timings (lognormal: the median is exp(mu)); the percentile
    bootstrap of a median is known to be a little liberal or conservative for small n, so the
    band is a few points wide either side."""
    rng = np.random.default_rng(2024)
    true_median = np.exp(-4.0)
    held = sum(
        lo <= true_median <= hi
        for lo, hi in (bootstrap_ci(rng.lognormal(-4.0, 0.7, 25), confidence=confidence,
                                    resamples=500, seed=trial) for trial in range(300)))
    assert abs(held / 300 - confidence) < 0.06, (held, confidence)


def test_bootstrap_rejects_empty_non_finite_and_bad_confidence():
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 2.0], confidence=95)


# ---- compare ----------------------------------------------------------------------------------

def _noisy(rng, median, n=20, spread=0.05):
    return median * (1 + spread * rng.random(n))


def test_compare_says_faster_slower_and_within_noise():
    rng = np.random.default_rng(0)
    slow, fast = _noisy(rng, 0.010), _noisy(rng, 0.004)
    faster = compare(slow, fast)
    assert isinstance(faster, Comparison) and faster.verdict == "faster"
    assert faster.speedup == pytest.approx(np.median(slow) / np.median(fast))
    assert 1 < faster.ci[0] <= faster.speedup <= faster.ci[1]
    slower = compare(Measurement(fast), Measurement(slow))
    assert slower.verdict == "slower" and slower.ci[1] < 1
    assert "slower" in str(slower) and "CI" in str(slower)


def test_a_point_speed_up_inside_the_noise_is_within_noise():
    base = np.array([1.04, 0.80, 1.30, 1.10, 0.75, 1.35, 1.04, 0.90, 1.20, 1.00, 1.10])
    cand = np.array([1.00, 0.78, 1.28, 1.05, 0.74, 1.33, 0.95, 1.00, 1.25, 0.85, 1.06])
    c = compare(base, cand)
    assert c.speedup == pytest.approx(1.04) and c.verdict == "within noise"
    assert c.ci[0] < 1 < c.ci[1]


def test_overlapping_measurement_intervals_can_still_be_a_real_speed_up():
    z = np.random.default_rng(11).standard_normal(400)
    base = Measurement(1.000 + 0.10 * z)
    cand = Measurement(0.977 + 0.10 * np.random.default_rng(12).permutation(z))
    assert cand.ci[1] > base.ci[0]                 # the two intervals overlap ...
    assert compare(base, cand).verdict == "faster"  # ... the speed-up's interval does not hold 1


def test_the_same_distribution_is_called_within_noise_about_as_often_as_promised():
    rng = np.random.default_rng(5)
    verdicts = [compare(rng.lognormal(0, 0.3, 20), rng.lognormal(0, 0.3, 20), resamples=400,
                        seed=i).verdict for i in range(200)]
    assert verdicts.count("within noise") >= 180, {v: verdicts.count(v) for v in set(verdicts)}


def test_compare_refuses_a_zero_median_with_what_to_do():
    with pytest.raises(ValueError, match="number="):
        compare([0.0, 0.0, 1.0], [1.0])


# ---- profile ----------------------------------------------------------------------------------

def _no_wrappers(layers):
    return [type(layer).__name__ for layer in layers if "forward" in vars(layer)]


def test_profile_of_an_mlp_equals_hand_counts_and_leaves_no_wrapper():
    manual_seed(0)
    mlp = Sequential(Linear(784, 128), ReLU(), Linear(128, 10))
    x = Tensor(np.zeros((64, 784), dtype=np.float32))
    before = mlp(x).data
    rows = profile(mlp, x, warmup=0, repeats=2, timer=TickClock())
    assert [(r.name, r.kind) for r in rows] == [("0", "Linear"), ("1", "ReLU"),
                                                ("2", "Linear"), ("total", "Sequential")]
    assert [r.parameters for r in rows] == [100_480, 0, 1_290, 101_770]
    assert [r.flops for r in rows] == [2 * 64 * 784 * 128, None, 2 * 64 * 128 * 10,
                                       12_845_056 + 163_840]
    assert [r.output_bytes for r in rows] == [64 * 128 * 4, 64 * 128 * 4, 64 * 10 * 4,
                                              64 * 10 * 4]
    assert [r.seconds for r in rows] == [1.0, 1.0, 1.0, 7.0]
    assert _no_wrappers(mlp.layers) == []
    np.testing.assert_array_equal(mlp(x).data, before)
    assert is_grad_enabled(), "profile runs without a graph and must turn recording back on"
    table = format_table(rows).splitlines()
    assert len(table) == 5 and table[1].startswith("0") and "100,480" in table[1]


def test_profile_of_a_small_cnn_equals_hand_counts():
    manual_seed(0)
    cnn = Sequential(Conv2d(1, 8, 3, padding=1), ReLU(), MaxPool2d(2),
                     Conv2d(8, 16, 3, stride=2), Flatten(), Linear(16 * 3 * 3, 10))
    x = Tensor(np.zeros((4, 1, 14, 14), dtype=np.float32))
    rows = profile(cnn, x, warmup=1, repeats=1)
    # (4, 1, 14, 14) -> conv (4, 8, 14, 14) -> pool (4, 8, 7, 7) -> conv s2 (4, 16, 3, 3)
    assert [r.parameters for r in rows] == [80, 0, 0, 1_168, 0, 1_450, 2_698]
    conv1, conv2, fc = 2 * 4 * 14 * 14 * 8 * 1 * 9, 2 * 4 * 3 * 3 * 16 * 8 * 9, 2 * 4 * 144 * 10
    assert [r.flops for r in rows] == [conv1, None, None, conv2, None, fc, conv1 + conv2 + fc]
    assert [r.output_bytes for r in rows[:4]] == [4 * 8 * 196 * 4, 4 * 8 * 196 * 4,
                                                  4 * 8 * 49 * 4, 4 * 16 * 9 * 4]
    assert all(r.seconds >= 0 for r in rows)
    assert _no_wrappers(cnn.layers) == []


def test_profile_of_a_gpt_counts_every_parameter_and_the_attention_formula():
    manual_seed(0)
    config = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8)
    gpt = GPT(config)
    rows = profile(gpt, np.zeros((3, 6), dtype=np.int64), warmup=0, repeats=1)
    by_name = {r.name: r for r in rows}
    assert rows[-1].parameters == count_parameters(config)
    assert sum(r.parameters for r in rows[:-1]) == count_parameters(config)
    b, t, d = 3, 6, 8
    assert by_name["blocks.0.attn"].flops == 8 * b * t * d * d + 4 * b * t * t * d
    assert "blocks.0.attn.q_proj" not in by_name, "attention is one unit, not descended into"
    assert by_name["blocks.1.mlp.gelu"].kind == "GELU"      # activations are not Modules
    assert by_name["head"].flops == 2 * b * t * d * 13


def test_wrappers_are_removed_after_an_exception_and_an_own_forward_is_put_back():
    first, second = ReLU(), ReLU()
    own = second.forward
    second.forward = own
    model = Sequential(first, second, Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match="expects inputs"):
        profile(model, Tensor(np.zeros((1, 3, 5, 5))))
    assert "forward" not in vars(first) and vars(second)["forward"] is own
    assert "forward" not in vars(model.layers[2])
    assert is_grad_enabled()


def test_a_shared_layer_is_one_row_with_its_calls_summed():
    shared = Linear(4, 4)
    rows = profile(Sequential(shared, ReLU(), shared), Tensor(np.zeros((3, 4))), warmup=0,
                   repeats=1, timer=TickClock())
    assert [(r.name, r.calls) for r in rows] == [("0", 2), ("1", 1), ("total", 1)]
    assert rows[0].flops == 2 * (2 * 3 * 4 * 4) and rows[0].seconds == 2.0


@settings(max_examples=10, deadline=None)
@given(n=st.integers(1, 3), c_in=st.integers(1, 3), c_out=st.integers(1, 4),
       k=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1),
       h=st.integers(3, 7), w=st.integers(3, 7), rows=st.integers(1, 5),
       features=st.integers(1, 6))
def test_flop_formulas_agree_with_pytorchs_flop_counter(n, c_in, c_out, k, stride, padding, h,
                                                        w, rows, features):
    conv = Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False)
    x = torch.zeros(n, c_in, h, w)
    with FlopCounterMode(display=False) as counter:
        out = F.conv2d(x, torch.zeros(c_out, c_in, k, k), stride=stride, padding=padding)
    assert layer_flops(conv, tuple(x.shape), tuple(out.shape)) == counter.get_total_flops()
    linear = Linear(features, c_out, bias=False)
    with FlopCounterMode(display=False) as counter:
        torch.zeros(n, rows, features) @ torch.zeros(features, c_out)
    assert layer_flops(linear, (n, rows, features), (n, rows, c_out)) == \
        counter.get_total_flops()


def test_attention_flops_agree_with_pytorchs_flop_counter():
    b, t, d, heads = 2, 5, 12, 3
    x, weight = torch.zeros(b, t, d), torch.zeros(d, d)
    with FlopCounterMode(display=False) as counter:
        q, k, v = x @ weight, x @ weight, x @ weight
        split = [m.reshape(b, t, heads, d // heads).transpose(1, 2) for m in (q, k, v)]
        scores = split[0] @ split[1].transpose(-2, -1)                 # (B, H, T, T)
        out = (scores.softmax(-1) @ split[2]).transpose(1, 2).reshape(b, t, d)
        out @ weight
    got = layer_flops(MultiHeadAttention(d, heads), (b, t, d), (b, t, d))
    assert got == counter.get_total_flops()


# ---- environment ------------------------------------------------------------------------------

def test_environment_records_versions_blas_threads_machine_load_and_date(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    env = environment()
    for key in ("python", "numpy", "blas", "blas_config", "threads", "cpu_count",
                "usable_cpus", "machine", "system", "load", "date"):
        assert key in env, key
    assert env["numpy"] == np.__version__ and env["blas"]
    assert set(env["threads"]) == set(THREAD_VARIABLES)
    assert env["threads"]["OMP_NUM_THREADS"] == "1" and env["threads"]["MKL_NUM_THREADS"] is None
    assert env["cpu_count"] >= env["usable_cpus"] >= 1
    assert len(env["load"]) == 3 and env["date"][:2] == "20"
