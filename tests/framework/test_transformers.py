"""Module 14 against PyTorch: LayerNorm values and gradients over shapes hypothesis draws; a
whole GPT's forward and every parameter's gradient against a PyTorch twin given the same
weights (float64 to 1e-9, tied and untied); 20 AdamW steps on the same batches (float32 to
1e-4); generate for a batch, seeded, with top_k and temperature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.gpt_twin import gradients_as_ours, torch_gpt_twin
from tinytorch.core.layers import manual_seed
from tinytorch.core.optimizers import AdamW
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import (
    GPT,
    GPTConfig,
    LayerNorm,
    count_parameters,
    layer_norm,
    next_token_loss,
)

TOL = {np.float64: (1e-9, 1e-9), np.float32: (1e-5, 1e-5)}


def as_dtype(model, dtype):
    for param in model.parameters():
        param.data = param.data.astype(dtype)
    return model


def close(ours, theirs, dtype, what):
    rtol, atol = TOL[dtype]
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    ours = ours.data if isinstance(ours, Tensor) else ours
    scale = max(1.0, float(np.abs(theirs).max()))
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} against torch's {theirs.shape}"
    error = float(np.abs(ours - theirs).max())
    assert np.allclose(ours, theirs, rtol=rtol, atol=atol * scale), f"{what}: max difference {error:.3g}"


# --- LayerNorm -----------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), dim=st.integers(2, 9),
       dtype=st.sampled_from([np.float64, np.float32]), scale=st.sampled_from([1e-2, 1.0, 1e3]),
       seed=st.integers(0, 2**16))
def test_layer_norm_matches_torch_values_and_gradients(shape, dim, dtype, scale, seed):
    rng = np.random.default_rng(seed)
    x = ((rng.standard_normal((*shape, dim)) + rng.standard_normal()) * scale).astype(dtype)
    w, b = rng.standard_normal(dim).astype(dtype), rng.standard_normal(dim).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    norm = LayerNorm(dim)
    norm.weight.data, norm.bias.data = w.copy(), b.copy()
    xt = Tensor(x, dtype=dtype, requires_grad=True)
    out = norm(xt)
    out.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    expected = F.layer_norm(tx, (dim,), tw, tb, eps=1e-5)
    expected.backward(torch.from_numpy(g))
    assert out.dtype == dtype
    close(out, expected, dtype, f"LayerNorm{x.shape} {np.dtype(dtype).name}")
    for ours, theirs, name in ((xt.grad, tx.grad, "x"), (norm.weight.grad, tw.grad, "weight"),
                               (norm.bias.grad, tb.grad, "bias")):
        close(ours, theirs, dtype, f"LayerNorm{x.shape}: d{name}")


def test_layer_norm_rule_is_registered_and_one_node():
    from tinytorch.core.autograd import GRADIENT_SOURCES

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    out = layer_norm(x, Tensor(np.ones(3)), Tensor(np.zeros(3)))
    assert out._op == "layer_norm" and out._parents[0] is x
    assert GRADIENT_SOURCES["layer_norm"] == "tinytorch.models.transformer.layer_norm_grad"


# --- the whole GPT against its twin ------------------------------------------------------------

def gpt_pair(config, dtype, seed=0):
    manual_seed(seed)
    model = as_dtype(GPT(config), dtype)
    rng = np.random.default_rng(seed)
    for param in model.parameters():              # away from the initial ones and zeros of the norms
        param.data += (0.1 * rng.standard_normal(param.shape)).astype(dtype)
    return model, torch_gpt_twin(model, torch.float64 if dtype == np.float64 else torch.float32)


@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("batch,length", [(2, 7), (3, 1), (1, 8)])
def test_gpt_forward_and_every_gradient_match_torch_in_float64(tie, batch, length):
    config = GPTConfig(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=8, tie_weights=tie)
    model, twin = gpt_pair(config, np.float64)
    rng = np.random.default_rng(batch * 10 + length)
    idx, targets = rng.integers(0, 13, (batch, length)), rng.integers(0, 13, (batch, length))
    logits = model(idx)
    expected = twin(torch.from_numpy(idx))
    close(logits, expected, np.float64, "GPT logits")
    loss = next_token_loss(logits, targets)
    theirs = F.cross_entropy(expected.reshape(-1, 13), torch.from_numpy(targets).reshape(-1))
    close(np.array(loss.item()), np.array(theirs.item()), np.float64, "next_token_loss")
    loss.backward()
    theirs.backward()
    grads = gradients_as_ours(model, twin)
    names = [name for name, _ in model.named_parameters()]
    assert sorted(names) == sorted(grads) and len(names) == len(model.parameters())
    assert sum(p.size for p in model.parameters()) == count_parameters(config)
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        close(param.grad, grads[name], np.float64, f"d loss / d {name}")


def test_twenty_adamw_steps_match_torch_in_float32():
    config = GPTConfig(vocab_size=11, block_size=6, n_layer=2, n_head=2, n_embd=8)
    model, twin = gpt_pair(config, np.float32, seed=3)
    ours = AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    theirs = torch.optim.AdamW(twin.parameters(), lr=3e-3, weight_decay=0.1)
    rng = np.random.default_rng(0)
    for step in range(20):
        idx, targets = rng.integers(0, 11, (4, 6)), rng.integers(0, 11, (4, 6))
        loss = next_token_loss(model(idx), targets)
        ours.zero_grad()
        loss.backward()
        ours.step()
        twin_loss = F.cross_entropy(twin(torch.from_numpy(idx)).reshape(-1, 11), torch.from_numpy(targets).reshape(-1))
        theirs.zero_grad()
        twin_loss.backward()
        theirs.step()
        assert abs(loss.item() - twin_loss.item()) < 1e-4, f"step {step}: loss {loss.item()} vs {twin_loss.item()}"
    weights = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        if name.endswith("k_proj.bias"):
            # its gradient is exactly 0 (q . b_k is the same for every key, and softmax does not
            # see a constant): both sides hold round-off there, which Adam scales up to lr-sized
            # steps of either sign, so the two biases drift apart without meaning anything
            assert np.abs(param.grad.data).max() < 1e-5
            continue
        value = weights[name].detach().numpy()
        value = value.T if name.endswith("weight") and value.ndim == 2 and "emb" not in name else value
        assert np.allclose(param.data, value, rtol=1e-4, atol=1e-4), f"{name} after 20 AdamW steps"


# --- generation ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_gpt():
    manual_seed(7)
    return GPT(GPTConfig(vocab_size=9, block_size=4, n_layer=1, n_head=2, n_embd=8))


def test_generate_continues_a_whole_batch_past_block_size(small_gpt):
    prompts = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 0]])
    out = small_gpt.generate(prompts, 10, generator=np.random.default_rng(0))
    assert out.shape == (3, 13) and out.dtype == np.int64 and np.array_equal(out[:, :3], prompts)
    assert out.min() >= 0 and out.max() < 9
    again = small_gpt.generate(prompts, 10, generator=np.random.default_rng(0))
    other = small_gpt.generate(prompts, 10, generator=np.random.default_rng(1))
    assert np.array_equal(out, again) and not np.array_equal(out, other)


def test_greedy_generation_of_a_batch_equals_each_row_alone(small_gpt):
    prompts = np.array([[1, 2], [3, 4], [5, 6]])
    batch = small_gpt.generate(prompts, 6, top_k=1)
    for row in range(3):
        alone = small_gpt.generate(prompts[row:row + 1], 6, top_k=1)
        assert np.array_equal(batch[row], alone[0])
    for t in range(2, 8):                 # each greedy token is the argmax of the model's logits
        context = batch[:, max(0, t - 4):t]
        assert np.array_equal(batch[:, t], small_gpt(context).data[:, -1].argmax(axis=1))


def test_top_k_restricts_the_tokens_and_seeding_repeats_them(small_gpt):
    prompts = np.zeros((300, 1), dtype=np.int64)
    logits = small_gpt(np.zeros((1, 1), dtype=np.int64)).data[0, -1]
    top3 = set(np.argsort(logits)[-3:].tolist())
    drawn = small_gpt.generate(prompts, 1, top_k=3, temperature=3.0, generator=np.random.default_rng(2))[:, 1]
    assert set(drawn.tolist()) == top3
    manual_seed(5)
    first = small_gpt.generate(prompts[:4], 5)
    manual_seed(5)
    assert np.array_equal(first, small_gpt.generate(prompts[:4], 5))


@pytest.mark.parametrize("kwargs,match", [({"temperature": 0.0}, "temperature"), ({"top_k": 0}, "top_k"),
                                          ({"max_new_tokens": -1}, "max_new_tokens")])
def test_generate_rejects_bad_settings_in_one_line(small_gpt, kwargs, match):
    options = {"max_new_tokens": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        small_gpt.generate(np.array([[1]]), **options)


def test_config_and_lengths_are_checked(small_gpt):
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(10, 8, 1, 3, 8)
    with pytest.raises(ValueError, match="block_size 4"):
        small_gpt(np.zeros((1, 5), dtype=np.int64))
