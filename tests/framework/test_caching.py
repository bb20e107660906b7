"""Module 16 against the uncached model and PyTorch: the cached logits at every position of
prompt + generated tokens equal module 14's GPT (float32 to 1e-5, float64 to 1e-9) and the
PyTorch twin's, for configurations hypothesis draws; greedy and sampled generations are
module 14's tokens, within and past block_size; the cache's memory is the formula and the
arrays' real size; generation records no graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.gpt_twin import torch_gpt_twin
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import manual_seed
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig, generate
from tinytorch.perf.caching import KVCache, decode_step, generate_cached, prefill

TOL = {np.float32: 1e-5, np.float64: 1e-9}


def make_gpt(config, dtype=np.float32, seed=0, scale=1.0):
    """A GPT with weights moved off their initial values (the norms' ones and zeros), so
    every part of the model shapes the logits."""
    manual_seed(seed)
    model = GPT(config)
    rng = np.random.default_rng(seed)
    for param in model.parameters():
        param.data = ((param.data + 0.1 * rng.standard_normal(param.shape)) * scale).astype(dtype)
    return model


def cached_logits(model, idx, prompt_length):
    """Prefill the first prompt_length tokens, decode the rest one by one: (B, T, V)."""
    cache = KVCache.for_model(model, batch=len(idx))
    pieces = [prefill(model, idx[:, :prompt_length], cache)]
    pieces += [decode_step(model, idx[:, t], cache)[:, None] for t in range(prompt_length, idx.shape[1])]
    assert cache.length == idx.shape[1]
    return np.concatenate(pieces, axis=1)


def assert_logits_equal(got, want, dtype, what):
    tol = TOL[dtype]
    assert got.shape == want.shape and got.dtype == dtype, f"{what}: {got.shape} {got.dtype}"
    worst = np.abs(got - want).max(axis=(0, 2))                  # per position
    bad = np.flatnonzero(worst > tol * max(1.0, float(np.abs(want).max())))
    assert bad.size == 0, f"{what}: positions {bad.tolist()} differ by up to {worst.max():.3g}"


configs = st.builds(
    lambda n_layer, n_head, head_size, vocab, block, tie: GPTConfig(vocab, block, n_layer, n_head,
                                                                    n_head * head_size, tie),
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 5), st.integers(2, 17), st.integers(1, 9),
    st.booleans())


@settings(max_examples=30, deadline=None)
@given(config=configs, batch=st.integers(1, 3), dtype=st.sampled_from([np.float32, np.float64]),
       data=st.data())
def test_cached_logits_equal_the_model_at_every_position(config, batch, dtype, data):
    length = data.draw(st.integers(1, config.block_size), label="length")
    prompt_length = data.draw(st.integers(1, length), label="prompt_length")
    model = make_gpt(config, dtype, seed=length)
    idx = np.random.default_rng(batch).integers(0, config.vocab_size, (batch, length))
    with no_grad():
        want = model(idx).data
    assert_logits_equal(cached_logits(model, idx, prompt_length), want, dtype,
                        f"{config}, batch {batch}, prompt {prompt_length} of {length}")


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
def test_cached_logits_equal_the_torch_twin_in_float64(tie):
    config = GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=8, tie_weights=tie)
    model = make_gpt(config, np.float64, seed=1)
    twin = torch_gpt_twin(model, torch.float64)
    idx = np.random.default_rng(2).integers(0, 13, (2, 10))
    with torch.no_grad():
        want = twin(torch.from_numpy(idx)).numpy()
    assert_logits_equal(cached_logits(model, idx, 3), want, np.float64, "against the torch twin")


def test_the_first_token_after_prefill_and_a_prompt_of_one():
    """The public derivative's bug: a prefill that never wrote position 0's keys and values
    gave right prompt logits and wrong ones from the first decoded token on."""
    model = make_gpt(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8), seed=3)
    idx = np.random.default_rng(4).integers(0, 11, (2, 8))
    with no_grad():
        want = model(idx).data
    for prompt_length in (1, 5):
        cache = KVCache.for_model(model, batch=2)
        prefill(model, idx[:, :prompt_length], cache)
        first = decode_step(model, idx[:, prompt_length], cache)
        np.testing.assert_allclose(first, want[:, prompt_length], atol=1e-5, rtol=1e-5)
        keys = cache.keys[:, :, :, :prompt_length + 1]
        assert np.abs(keys).min(axis=(0, 1, 2, 4)).all(), "every filled slot holds keys"


@pytest.mark.parametrize("prompt_length,new", [(1, 7), (3, 12), (8, 9), (11, 4)])
@pytest.mark.parametrize("batch", [1, 3])
def test_greedy_and_sampled_generations_are_module_14s_tokens(prompt_length, new, batch):
    """block_size 8: from (1, 7) the text fills it exactly, the others run past it (and a
    prompt of 11 is cropped before the first step)."""
    model = make_gpt(GPTConfig(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=8), seed=5, scale=3.0)
    prompt = np.random.default_rng(prompt_length).integers(0, 7, (batch, prompt_length))
    greedy = generate(model, prompt, new, top_k=1)
    assert np.array_equal(generate_cached(model, prompt, new, top_k=1), greedy)
    for temperature, top_k in ((1.0, None), (0.6, 3), (2.0, None)):
        want = generate(model, prompt, new, temperature, top_k, np.random.default_rng(7))
        got = generate_cached(model, prompt, new, temperature, top_k, np.random.default_rng(7))
        assert np.array_equal(got, want), f"temperature {temperature}, top_k {top_k}"
    manual_seed(9)
    first = generate_cached(model, prompt, new)
    manual_seed(9)
    assert np.array_equal(first, generate(model, prompt, new)), "the default generator, as module 14"


def test_nbytes_is_the_formula_and_the_arrays_real_size():
    for shape, dtype in [((2, 1, 4, 64, 16), np.float32), ((4, 8, 4, 256, 32), np.float32),
                         ((3, 2, 5, 7, 3), np.float64), ((1, 1, 1, 1, 1), np.float16)]:
        cache = KVCache(*shape, dtype=dtype)
        layers, batch, heads, max_len, head_size = shape
        formula = 2 * layers * batch * heads * max_len * head_size * np.dtype(dtype).itemsize
        assert cache.nbytes == formula == cache.keys.nbytes + cache.values.nbytes
        assert cache.keys.shape == cache.values.shape == shape and cache.keys.dtype == dtype
    assert KVCache(2, 1, 4, 64, 16).nbytes == 65_536


def test_a_cache_reused_after_reset_gives_the_new_sequences_logits():
    model = make_gpt(GPTConfig(vocab_size=9, block_size=6, n_layer=2, n_head=3, n_embd=6), seed=6)
    rng = np.random.default_rng(6)
    first, second = rng.integers(0, 9, (2, 6)), rng.integers(0, 9, (2, 4))
    cache = KVCache.for_model(model, batch=2)
    prefill(model, first, cache)
    cache.reset()
    assert cache.length == 0
    got = np.concatenate([prefill(model, second[:, :2], cache)] +
                         [decode_step(model, second[:, t], cache)[:, None] for t in (2, 3)], axis=1)
    with no_grad():
        assert_logits_equal(got, model(second).data, np.float32, "after reset()")


def test_generation_builds_no_tensor_and_leaves_the_weights_alone(monkeypatch):
    model = make_gpt(GPTConfig(vocab_size=7, block_size=6, n_layer=2, n_head=2, n_embd=8), seed=8)
    before = {name: p.data.copy() for name, p in model.named_parameters()}

    def no_tensor_op(*args, **kwargs):
        raise AssertionError("the cached path called a Tensor operation")

    monkeypatch.setattr(Tensor, "_result", no_tensor_op)
    monkeypatch.setattr(Tensor, "__init__", no_tensor_op)
    out = generate_cached(model, [[1, 2, 3]], 10, top_k=1)
    monkeypatch.undo()
    assert out.dtype == np.int64 and out.shape == (1, 13)
    assert all(np.array_equal(p.data, before[name]) and p.grad is None for name, p in model.named_parameters())
    cache = KVCache.for_model(model)
    logits = prefill(model, [[1, 2]], cache)
    assert logits.dtype == np.float32 and decode_step(model, [3], cache).dtype == np.float32


def test_bad_input_is_a_one_line_error_that_says_what_to_do():
    model = make_gpt(GPTConfig(vocab_size=7, block_size=4, n_layer=1, n_head=2, n_embd=4))
    cache = KVCache.for_model(model, batch=1)
    with pytest.raises(ValueError, match=r"KVCache.for_model\(model, batch=2\)"):
        prefill(model, [[1, 2], [3, 4]], cache)
    prefill(model, [[1, 2, 3, 4]], cache)
    with pytest.raises(ValueError, match="reset"):
        decode_step(model, [1], cache)
    with pytest.raises(ValueError, match="positive whole number"):
        KVCache(2, 1, 0, 4, 2)
    with pytest.raises(ValueError, match="temperature"):
        generate_cached(model, [[1]], 2, temperature=0)
    with pytest.raises(TypeError, match="GPT"):
        prefill(object(), [[1]], cache)
