# %% [markdown]
# # Module 16: Caching — generation recomputes everything
#
# Module 14's `generate` writes one token per step, and every step calls the whole model
# on the whole context:
#
# ```
# step 1:  model("T")        -> "o"      1 position through every layer
# step 2:  model("To")       -> " "      2 positions: "T" again
# step 3:  model("To ")      -> "b"      3 positions: "T" and "o" again
# ```
#
# Writing T tokens pushes 1 + 2 + ... + T ≈ T²/2 positions through the model, and all but
# T of them were computed before, with the same result. At 64 tokens that is 32× the work
# that is new; at 256 tokens, 128×. The cell below times module 14's `generate` on the
# `gpt` milestone's model size and counts that work.
#
# This module keeps what does not change. In a causal model, position j's **keys and
# values** depend only on tokens 0..j, so once computed they are final. A **KV cache**
# stores them per layer; a new token then needs only its own query, key and value, and
# attends over the stored keys. You will write:
#
# - `KVCache`: preallocated arrays for every layer's keys and values, with `length`,
#   `nbytes` (its exact memory) and `reset()`;
# - `prefill(model, idx, cache)`: the prompt through the model once, every position's keys
#   and values written into the cache;
# - `decode_step(model, token_ids, cache)`: one new token per row, the next logits (B, V);
# - `generate_cached`: module 14's `generate`, token for token the same, without the
#   recomputation.
#
# Correctness comes first: at every position the cached model's logits must equal the
# uncached model's.

# %%
import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import manual_seed
from tinytorch.models.transformer import GPT, GPTConfig, generate
from tinytorch.perf.acceleration import median_ms  # module 15's stopwatch

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook


manual_seed(0)
config = GPTConfig(vocab_size=76, block_size=64, n_layer=2, n_head=4, n_embd=64)
model = GPT(config)                          # the gpt milestone's size, untrained
prompt = np.array([[5]])                              # (B, T) = (1, 1)
for new in (16, 63):
    ms = median_ms(lambda n=new: generate(model, prompt, n, top_k=1), repeats=3)
    seconds = ms / 1e3
    pushed = sum(min(t, config.block_size) for t in range(1, new + 1))
    print(f"{new:3d} new tokens: {new / seconds:6.0f} tokens/s; {pushed:5d} positions "
          f"through the model for {new} new ones ({pushed / new:.1f}x the new work)")

# %% [markdown]
# The work per token grows with the context, so the tokens per second fall as the text
# grows. (Timings on a shared machine vary from run to run: read the trend, not the
# digits.)
#
# ## What a cache holds
#
# Why may position j's key and value be kept? Layer 1 computes them from the embedding of
# token j and its position: nothing later. Its attention output at j reads positions 0..j
# only (the causal mask), so layer 1's output at j, hence layer 2's key and value at j,
# depend on tokens 0..j only too; and so on up the stack. A token appended later changes
# nothing at j.
#
# So for each layer, keep the keys and values of every position seen, split into heads as
# attention uses them, (B, H, positions, head size). After the prompt "To " (3 tokens) and
# one generated token "b":
#
# ```
#                  slot:  0    1    2    3    4 ... max_len-1
# layer 0 keys   (B,H,.,hs) k(T) k(o) k( ) k(b)  .  ...  .        length = 4
# layer 0 values (B,H,.,hs) v(T) v(o) v( ) v(b)  .  ...  .
# layer 1 keys, layer 1 values: the same slots
# ```
#
# The next token, at position 4, computes its own q, k, v in each layer, writes k and v
# into slot 4, and attends with its q over slots 0..4. One position per layer per token,
# however long the text.
#
# **Memory** is the price: two arrays (keys and values) per layer, each
# batch × heads × max_len × head size numbers:
#
# ```
# bytes = 2 × n_layer × batch × n_head × max_len × head_size × itemsize
# the milestone's GPT, batch 1, max_len 64, float32:
#       = 2 × 2 × 1 × 4 × 64 × 16 × 4 = 65,536 bytes = 64 KiB
# GPT-2 small (12 layers, 12 heads of 64), 1,024 positions, float32:
#       = 2 × 12 × 1 × 12 × 1,024 × 64 × 4 = 75,497,472 bytes = 72 MiB per sequence
# ```
#
# **Why preallocate.** Growing the arrays with `np.concatenate` at every token copies the
# whole cache each time: T tokens copy about T²/2 positions, the quadratic cost back in
# another form. Allocate `max_len` slots once, write each new position in place, and keep
# `length`, the number of slots filled. `reset()` sets `length` to 0: the old numbers stay
# in memory but are never read, because attention reads slots 0..length-1 only.
#
# Your package file starts here: the cells marked `#| export` become
# `tinytorch/perf/caching.py`.

# %%
#| export
import math

import numpy as np

from tinytorch.core.layers import default_generator
from tinytorch.models.transformer import GPT, _softmax_rows, _token_ids
from tinytorch.text.attention import masked_softmax


class KVCache:
    """Every layer's keys and values, preallocated: keys and values are arrays of shape
    (n_layer, batch, n_head, max_len, head_size); slots 0..length-1 are filled.

    >>> cache = KVCache(n_layer=2, batch=1, n_head=4, max_len=64, head_size=16)
    >>> cache.nbytes, cache.length
    (65536, 0)
    """

    def __init__(self, n_layer, batch, n_head, max_len, head_size, dtype=np.float32):
        sizes = dict(n_layer=n_layer, batch=batch, n_head=n_head, max_len=max_len,
                     head_size=head_size)
        for name, value in sizes.items():
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"KVCache: {name} must be a positive whole number, "
                                 f"got {value!r}")
        self.n_layer, self.batch, self.n_head = int(n_layer), int(batch), int(n_head)
        self.max_len, self.head_size = int(max_len), int(head_size)
        # TODO: allocate self.keys and self.values, two arrays of zeros of shape
        #       (n_layer, batch, n_head, max_len, head_size) and the given dtype, and set
        #       self.length to 0 (no slot filled yet).
        ### BEGIN SOLUTION
        shape = (self.n_layer, self.batch, self.n_head, self.max_len, self.head_size)
        self.keys = np.zeros(shape, dtype=dtype)
        self.values = np.zeros(shape, dtype=dtype)
        self.length = 0
        ### END SOLUTION

    @classmethod
    def for_model(cls, model, batch=1, max_len=None):
        """A cache shaped for module 14's GPT `model`: its layers and heads, max_len its
        block_size unless given, the dtype of its weights."""
        c = model.config
        return cls(c.n_layer, batch, c.n_head, max_len or c.block_size,
                   c.n_embd // c.n_head, dtype=model.tok_emb.weight.dtype)

    @property
    def nbytes(self):
        """The bytes the cache holds: 2 × layers × batch × heads × max_len × head size ×
        item size."""
        # TODO: return the number of bytes of the two arrays (NumPy counts them for you).
        ### BEGIN SOLUTION
        return self.keys.nbytes + self.values.nbytes
        ### END SOLUTION

    def write(self, layer, k, v):
        """Store k and v (B, n_head, t, head_size) of `layer` in slots length..length+t-1;
        return that layer's keys and values of slots 0..length+t-1, (B, n_head,
        length + t, head_size). `length` itself moves on in advance(t), once every layer
        has written."""
        t = k.shape[-2]
        if self.length + t > self.max_len:
            raise ValueError(f"KVCache: {self.length} of {self.max_len} slots are "
                             f"filled, {t} more do not fit: reset() it, or make a "
                             "cache with a larger max_len")
        # TODO: copy k and v into slots length .. length + t - 1 of keys[layer] and
        #       values[layer] (the 4th axis is the slot), and return views of slots
        #       0 .. length + t - 1 of both.
        ### BEGIN SOLUTION
        end = self.length + t
        self.keys[layer, :, :, self.length:end] = k
        self.values[layer, :, :, self.length:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]
        ### END SOLUTION

    def advance(self, t):
        """Count t more slots as filled (after every layer wrote them)."""
        self.length += int(t)

    def reset(self):
        """Empty the cache for a new sequence: nothing is freed or zeroed, because slots
        at or past `length` are never read."""
        self.length = 0

    def __repr__(self):
        return (f"KVCache(n_layer={self.n_layer}, batch={self.batch}, "
                f"n_head={self.n_head}, max_len={self.max_len}, "
                f"head_size={self.head_size}, dtype={self.keys.dtype}, "
                f"length={self.length}, nbytes={self.nbytes:,})")

# %% [markdown]
# ### Test it: the cache
#
# Writing two positions, then one more, into layer 1 of a small cache; the memory of the
# milestone's cache.

# %%
#| test: kv_cache (3 points)
def test_kv_cache():
    cache = KVCache(n_layer=2, batch=1, n_head=2, max_len=5, head_size=3)
    assert cache.keys.shape == (2, 1, 2, 5, 3) and cache.length == 0, (
        f"keys should have shape (n_layer, batch, n_head, max_len, head_size) = "
        f"(2, 1, 2, 5, 3) and length start at 0; got {cache.keys.shape}, {cache.length}")
    assert cache.keys.dtype == np.float32 and cache.values.shape == cache.keys.shape, (
        "keys and values: the same shape, float32 unless another dtype is given")
    k = np.arange(12, dtype=np.float32).reshape(1, 2, 2, 3)      # (B, H, t=2, hs)
    keys, values = cache.write(1, k, -k)
    assert keys.shape == (1, 2, 2, 3) and np.array_equal(keys, k), (
        f"write(1, k, v) with 2 positions into an empty cache should return layer 1's "
        f"slots 0..1, equal to k; got shape {keys.shape}")
    assert np.array_equal(values, -k) and not cache.keys[0].any(), (
        "write must fill only the given layer's slots (layer 0 stays zero)")
    cache.advance(2)
    keys, _ = cache.write(1, np.full((1, 2, 1, 3), 7, np.float32), np.zeros((1, 2, 1, 3)))
    assert keys.shape == (1, 2, 3, 3) and np.array_equal(keys[:, :, :2], k) and (
        keys[:, :, 2] == 7).all(), (
        "after advance(2), the next write goes to slot 2 and returns slots 0..2, the "
        "earlier ones untouched")
    small = KVCache(n_layer=2, batch=1, n_head=4, max_len=64, head_size=16).nbytes
    double = KVCache(n_layer=2, batch=1, n_head=4, max_len=128, head_size=16).nbytes
    assert small > 0 and double == 2 * small, (
        f"twice the slots must take twice the bytes: {small:,} and {double:,}")

test_kv_cache()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises

for _shape, _dtype in [((2, 1, 4, 64, 16), np.float32), ((3, 2, 1, 5, 7), np.float64),
                       ((1, 3, 2, 9, 4), np.float16)]:
    _c = KVCache(*_shape, dtype=_dtype)
    _want = 2 * int(np.prod(_shape)) * np.dtype(_dtype).itemsize
    assert _c.nbytes == _want == _c.keys.nbytes + _c.values.nbytes, (
        f"KVCache{_shape} {np.dtype(_dtype).name}: nbytes should be 2 x layers x batch x "
        f"heads x max_len x head_size x itemsize = {_want:,}, got {_c.nbytes:,}")
    assert _c.keys.dtype == _dtype and _c.values.dtype == _dtype, "the dtype asked for"
assert KVCache(2, 1, 4, 64, 16).nbytes == 65_536, "the worked example: 64 KiB"
_c = KVCache(1, 1, 1, 3, 1)
_c.write(0, np.ones((1, 1, 3, 1)), np.ones((1, 1, 3, 1)))
_c.advance(3)
assert_raises(ValueError, _c.write, 0, np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)),
              match="reset")
_c.reset()
_k, _v = _c.write(0, np.full((1, 1, 2, 1), 5.0), np.full((1, 1, 2, 1), 6.0))
_ok = _k.shape == (1, 1, 2, 1) and (_k == 5).all() and (_v == 6).all()
assert _c.length == 0 and _ok, (
    "after reset(), writing starts again at slot 0 and returns only the new slots")
assert_raises(ValueError, KVCache, 2, 0, 4, 64, 16)
### END HIDDEN TESTS

# %% [markdown]
# ## The model, one step, without a graph
#
# `prefill` and `decode_step` are one computation: t new tokens enter at position
# `start = cache.length` (t = the prompt's length for prefill, 1 for a decode step). For
# each layer, the t new positions compute q, k, v; k and v go into the cache; the t
# queries attend over all `start + t` cached positions. Two things differ from module 14:
#
# - **positions**: the new tokens sit at `start .. start + t - 1`, so they add rows
#   `start .. start + t - 1` of the position table, not rows `0 .. t - 1`;
# - **the mask**: new query i is at position `start + i` and may read keys
#   `0 .. start + i`. For start = 3 and t = 2 (two new tokens after three cached ones):
#
# ```
# keys:       0 1 2 3 4
# query 3:    T T T T .        allowed[i, j] = j <= start + i
# query 4:    T T T T T        (for one new token, a row of all True)
# ```
#
# **No graph.** Generation never calls backward, so this path works on the NumPy arrays
# of the model's Parameters (`layer.weight.data`) and builds no Tensor at all: nothing is
# recorded, whatever the grad mode. It also skips the Tensor bookkeeping of every
# operation (module 14's forward run under `no_grad()` would take about twice as long per
# token here). The layers below are module 14's arithmetic on arrays, given; you write the
# attention with the cache and the pass through the model.

# %%
#| export
def _linear(x, layer):
    """Module 04's Linear on an array: x @ W (+ b)."""
    out = x @ layer.weight.data
    return out if layer.bias is None else out + layer.bias.data


def _layer_norm(x, norm):
    """Module 14's LayerNorm on an array (over the last axis)."""
    d = x.shape[-1]
    centered = x - x.sum(axis=-1, keepdims=True) / d
    variance = (centered * centered).sum(axis=-1, keepdims=True) / d
    return centered / np.sqrt(variance + norm.eps) * norm.weight.data + norm.bias.data


def _gelu(x):
    """Module 03's GELU (tanh approximation) on an array."""
    c, a = math.sqrt(2 / math.pi), 0.044715
    return 0.5 * x * (1 + np.tanh(c * (x + a * x * x * x)))


def cached_attention(attn, x, cache, layer):
    """Module 13's causal MultiHeadAttention `attn` for t new positions x (B, t, D) that
    follow the cache.length positions already in `cache`: (B, t, D). Writes the new keys
    and values into `layer` of the cache (advancing is the caller's job)."""
    batch, t, dim = x.shape
    heads = attn.num_heads
    head_size = dim // heads
    start = cache.length
    # TODO: project x to q, k, v with _linear and split each into heads (B, H, t, hs);
    #       write k and v into the cache and take back all keys and values; scores =
    #       q @ keys^T / sqrt(hs), masked where key j > start + i, softmaxed with module
    #       13's masked_softmax; weights @ values, heads merged back to (B, t, D), and
    #       attn.out_proj.
    ### BEGIN SOLUTION
    def heads_of(projection):                                 # (B, t, D) -> (B, H, t, hs)
        y = _linear(x, projection).reshape(batch, t, heads, head_size)
        return y.transpose(0, 2, 1, 3)

    q, k, v = heads_of(attn.q_proj), heads_of(attn.k_proj), heads_of(attn.v_proj)
    keys, values = cache.write(layer, k, v)                   # (B, H, start + t, hs)
    scores = q @ keys.swapaxes(-1, -2) / math.sqrt(head_size)     # (B, H, t, start + t)
    allowed = np.arange(start + t)[None, :] <= start + np.arange(t)[:, None]   # (t, s+t)
    weights = masked_softmax(scores, allowed)
    out = (weights @ values).transpose(0, 2, 1, 3)            # (B, t, H, hs)
    return _linear(out.reshape(batch, t, dim), attn.out_proj)     # (B, t, D)
    ### END SOLUTION


def forward_cached(model, idx, cache):
    """Module 14's GPT `model` on t new tokens idx (B, t) that follow the cache.length
    tokens in `cache`: the logits (B, t, V) as a NumPy array. Writes every new position's
    keys and values in every layer, then advances the cache by t."""
    _check(model, idx, cache)
    start, t = cache.length, idx.shape[1]
    # TODO: embed idx (rows of tok_emb.weight.data) plus rows start .. start + t - 1 of
    #       pos_emb.weight.data; through each block, x + cached_attention(ln1(x)) then
    #       x + mlp(ln2(x)) with _layer_norm, _linear and _gelu; the final _layer_norm
    #       and the head (x @ tok_emb.weight.data.T when head is None); then advance the
    #       cache by t.
    ### BEGIN SOLUTION
    x = model.tok_emb.weight.data[idx] + model.pos_emb.weight.data[start:start + t]
    for layer, block in enumerate(model.blocks):              # x: (B, t, D) throughout
        x = x + cached_attention(block.attn, _layer_norm(x, block.ln1), cache, layer)
        hidden = _gelu(_linear(_layer_norm(x, block.ln2), block.mlp.fc))   # (B, t, 4D)
        x = x + _linear(hidden, block.mlp.proj)
    x = _layer_norm(x, model.ln_f)
    if model.head is None:
        logits = x @ model.tok_emb.weight.data.T              # (B, t, V)
    else:
        logits = _linear(x, model.head)                       # (B, t, V)
    cache.advance(t)
    ### END SOLUTION
    return logits


def _check(model, idx, cache):
    """A one-line ValueError when the model, the ids and the cache do not fit together."""
    if not isinstance(model, GPT):
        raise TypeError(f"the KV cache works with module 14's GPT, got "
                        f"{type(model).__name__}")
    c = model.config
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(f"token ids must have shape (B, t) with t >= 1, got {idx.shape}")
    want = (c.n_layer, idx.shape[0], c.n_head, c.n_embd // c.n_head)
    have = (cache.n_layer, cache.batch, cache.n_head, cache.head_size)
    if want != have:
        raise ValueError(f"the cache has (layers, batch, heads, head size) {have} but "
                         f"the model and ids need {want}: make it with "
                         f"KVCache.for_model(model, batch={idx.shape[0]})")
    if cache.length + idx.shape[1] > c.block_size:
        raise ValueError(f"{cache.length} cached + {idx.shape[1]} new tokens exceed the "
                         f"model's block_size {c.block_size}: reset() the cache and "
                         f"prefill the last {c.block_size} tokens")


def prefill(model, idx, cache):
    """The prompt idx (B, T) through the model once: every position's keys and values,
    the first included, written into `cache` after what it already holds (an empty
    cache for a new prompt); returns the logits (B, T, V), a NumPy array."""
    return forward_cached(model, _token_ids(idx), cache)


def decode_step(model, token_ids, cache):
    """One new token per row, token_ids (B,), after the cache's tokens: returns the next
    logits (B, V), a NumPy array, and advances the cache by one."""
    ids = _token_ids(token_ids).reshape(-1, 1)                # (B,) -> (B, 1)
    return forward_cached(model, ids, cache)[:, -1]           # (B, V)

# %% [markdown]
# ### Test it: cached logits against the model
#
# The prompt through `prefill`, then one token at a time through `decode_step`: the logits
# at every position must be the uncached model's, to 1e-5 in float32, including the first
# token after the prompt, for a batch of two and for a prompt of one token.

# %%
#| test: cached_logits (4 points)
def test_cached_logits():
    manual_seed(1)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
    ids = np.random.default_rng(0).integers(0, 11, size=(2, 7))       # (B, T) = (2, 7)
    with no_grad():
        want = gpt(ids).data                                          # (2, 7, 11)
    for prompt_length in (4, 1):
        cache = KVCache.for_model(gpt, batch=2)
        got = [prefill(gpt, ids[:, :prompt_length], cache)]           # (2, P, 11)
        assert got[0].shape == (2, prompt_length, 11), (
            f"prefill of a (2, {prompt_length}) prompt: logits (2, {prompt_length}, 11), "
            f"got {got[0].shape}")
        assert cache.length == prompt_length, (
            f"after prefill of {prompt_length} tokens, cache.length should be "
            f"{prompt_length}, got {cache.length}")
        for t in range(prompt_length, 7):
            step = decode_step(gpt, ids[:, t], cache)                 # (2, 11)
            assert step.shape == (2, 11), f"decode_step: logits (B, V), got {step.shape}"
            got.append(step[:, None])
        got = np.concatenate(got, axis=1)
        worst = np.abs(got - want).max(axis=(0, 2))
        assert worst.max() < 1e-5, (
            f"prompt of {prompt_length}: the cached logits differ from the model's at "
            f"positions {np.flatnonzero(worst >= 1e-5).tolist()} "
            f"(max {worst.max():.2g}). "
            "Did every position, the first too, reach the cache? Do the new tokens add "
            "the position rows start..start+t-1?")
        assert got.dtype == np.float32, f"float32 in, float32 out; got {got.dtype}"

test_cached_logits()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises

# a prompt written in two pieces (chunked prefill) equals one prefill of the whole prompt
manual_seed(4)
_g = GPT(GPTConfig(vocab_size=9, block_size=10, n_layer=3, n_head=2, n_embd=6))
_ids = np.random.default_rng(5).integers(0, 9, size=(3, 9))
with no_grad():
    _want = _g(_ids).data
_c = KVCache.for_model(_g, batch=3)
_got = np.concatenate([prefill(_g, _ids[:, :3], _c), prefill(_g, _ids[:, 3:7], _c),
                       decode_step(_g, _ids[:, 7], _c)[:, None],
                       prefill(_g, _ids[:, 8:], _c)], axis=1)
assert_close(_got, _want, rtol=1e-5, atol=1e-5,
             what="prefill in pieces (3, then 4 tokens after 3 cached), a decode step, "
                  "and a last prefill: new query i sits at position start + i and may "
                  "read keys 0..start+i")
# float64 weights: 1e-9; a tied head; no graph; the weights untouched
_t = GPT(GPTConfig(vocab_size=7, block_size=6, n_layer=2, n_head=3, n_embd=6,
                   tie_weights=True))
for _p in _t.parameters():
    _p.data = _p.data.astype(np.float64)
_ids = np.random.default_rng(6).integers(0, 7, size=(2, 6))
with no_grad():
    _want = _t(_ids).data
_before = [p.data.copy() for p in _t.parameters()]
_c = KVCache.for_model(_t, batch=2)
assert _c.keys.dtype == np.float64, "KVCache.for_model takes the weights' dtype"
_got = [prefill(_t, _ids[:, :2], _c)]
_got += [decode_step(_t, _ids[:, j], _c)[:, None] for j in range(2, 6)]
_got = np.concatenate(_got, axis=1)
assert_close(_got, _want, rtol=1e-9, atol=1e-9,
             what="a tied float64 GPT, cached against uncached")
assert all(np.array_equal(p.data, b) for p, b in zip(_t.parameters(), _before)), (
    "the cached path must not change the weights")
assert all(p.grad is None for p in _t.parameters()) and isinstance(_got, np.ndarray), (
    "the cached path builds no graph: NumPy arrays from the Parameters, no Tensor")
_c.reset()
_again = prefill(_t, _ids, _c)
assert_close(_again, _want, rtol=1e-9, atol=1e-9, what="a cache reused after reset()")
assert_raises(ValueError, decode_step, _t, _ids[:, 0], _c, match="block_size")
assert_raises(ValueError, prefill, _t, _ids[:1], KVCache.for_model(_t, batch=2),
              match="for_model")
### END HIDDEN TESTS

# %% [markdown]
# ## Generation with the cache
#
# `generate_cached` is module 14's loop with the model call replaced: prefill the prompt
# once, then one `decode_step` per token. The sampling is module 14's, draw for draw (the
# helper `_draw` below), so the same generator gives the same tokens.
#
# **At block_size.** Module 14 crops the context to its last `block_size` tokens. The
# cache cannot slide along with it: the positions are learned and absolute, so once the
# window moves every token sits at a new position, and every key and value of every layer
# changes. To produce module 14's tokens exactly, a full cache is reset and the cropped
# window prefilled again, one full forward per token from then on: past `block_size` the
# cache buys nothing. (Models with relative positions, such as rotary embeddings, can keep
# their keys when the window moves; that is one reason large models use them.)
#
# ```
# cache <- KVCache.for_model(model, batch=B)
# repeat max_new_tokens times:
#     if cache.length == 0:  logits <- prefill(model, idx[:, -block_size:], cache)[:, -1]
#     else:                  logits <- decode_step(model, idx[:, -1], cache)
#     idx <- idx with _draw(logits, ...) appended                   (B, T + 1)
#     if the cache is full:  cache.reset()                          the window moves on
# ```

# %%
#| export
def _draw(logits, temperature, top_k, generator):
    """Module 14's sampling of one token per row from logits (B, V): temperature, top-k,
    one uniform number per row. Returns (B,) ids."""
    logits = logits / temperature
    if top_k is not None:
        k = min(int(top_k), logits.shape[-1])
        kth = np.sort(logits, axis=-1)[:, -k][:, None]                # (B, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    probs = _softmax_rows(logits)                                     # (B, V)
    u = generator.random((len(probs), 1))                             # (B, 1)
    chosen = (np.cumsum(probs, axis=-1) < u).sum(axis=-1)             # (B,)
    return np.minimum(chosen, probs.shape[-1] - 1)


def generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None,
                    generator=None):
    """Module 14's generate with a KV cache: the same tokens for the same generator,
    (B, T + max_new_tokens) int64 ids, with one position per layer computed per token
    while the text fits in block_size."""
    idx = _token_ids(idx)
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(f"generate_cached expects prompts of shape (B, T) with T >= 1, "
                         f"got {idx.shape}: pass [ids] for a single prompt")
    if int(max_new_tokens) < 0:
        raise ValueError(f"generate_cached: max_new_tokens must be 0 or more, got "
                         f"{max_new_tokens}")
    if not temperature > 0:
        raise ValueError(f"generate_cached: temperature must be > 0, got {temperature} "
                         "(use top_k=1 for greedy decoding)")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"generate_cached: top_k must be 1 or more (or None), got "
                         f"{top_k}")
    generator = default_generator() if generator is None else generator
    block_size = model.config.block_size
    cache = KVCache.for_model(model, batch=len(idx))
    for _ in range(int(max_new_tokens)):
        # TODO: follow the pseudo-code above: prefill the last block_size tokens when the
        #       cache is empty, else decode the last token; append one _draw per row to
        #       idx; reset the cache once it is full.
        ### BEGIN SOLUTION
        if cache.length == 0:
            logits = prefill(model, idx[:, -block_size:], cache)[:, -1]   # (B, V)
        else:
            logits = decode_step(model, idx[:, -1], cache)                 # (B, V)
        chosen = _draw(logits, temperature, top_k, generator)             # (B,)
        idx = np.concatenate([idx, chosen[:, None]], axis=1)               # (B, T + 1)
        if cache.length == block_size:
            cache.reset()
        ### END SOLUTION
    return idx

# %% [markdown]
# ### Test it: the same tokens as module 14
#
# Greedy (top_k = 1) and sampled generations, the cached against module 14's, for a batch
# of two prompts, within the model's block_size.

# %%
#| test: generate_cached (3 points)
def test_generate_cached():
    manual_seed(2)
    gpt = GPT(GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=8))
    prompts = np.array([[1, 2, 3], [4, 5, 6]])                        # (B, T) = (2, 3)
    want = generate(gpt, prompts, 9, top_k=1)
    got = generate_cached(gpt, prompts, 9, top_k=1)
    assert got.shape == (2, 12) and np.array_equal(got[:, :3], prompts), (
        f"generate_cached((2, 3) prompts, 9 new): (2, 12) ids starting with the prompts, "
        f"got {got.shape}")
    assert np.array_equal(got, want), (
        f"greedy tokens differ from module 14's generate:\n{got}\nagainst\n{want}")
    want = generate(gpt, prompts, 9, generator=np.random.default_rng(3))
    got = generate_cached(gpt, prompts, 9, generator=np.random.default_rng(3))
    assert np.array_equal(got, want), (
        "sampled with the same generator seed, the cached tokens must be module 14's: "
        "draw with _draw, one call per step, the first right after the prefill")

test_generate_cached()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_mode_restored, assert_raises, assert_untouched

# past block_size: the window moves, the cache is refilled, the tokens stay module 14's
manual_seed(6)
_g = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=2, n_head=2, n_embd=8))
for _p in _g.parameters():
    _p.data = _p.data * 3                      # sharper logits: the context matters
for _prompt in (np.array([[1]]), np.array([[0, 1, 2, 3], [3, 2, 1, 0]]),
                np.array([[4, 4, 3, 1, 2, 0]])):
    _want = generate(_g, _prompt, 11, top_k=1)
    _got = generate_cached(_g, _prompt, 11, top_k=1)
    assert np.array_equal(_got, _want), (
        f"greedy past block_size 4 from a prompt of {_prompt.shape[1]}: the cached "
        f"tokens\n{_got}\ndiffer from module 14's\n{_want}\n(when the cache is full, "
        "reset it and prefill the last block_size tokens)")
    for _temperature, _k in ((0.7, None), (1.5, 3)):
        _want = generate(_g, _prompt, 11, _temperature, _k, np.random.default_rng(9))
        _got = generate_cached(_g, _prompt, 11, _temperature, _k,
                               np.random.default_rng(9))
        assert np.array_equal(_got, _want), (
            f"sampled at temperature {_temperature}, top_k {_k}: the cached tokens "
            "differ from module 14's")
assert generate_cached(_g, [[1, 2]], 0).tolist() == [[1, 2]], "0 new tokens: the prompt"
manual_seed(11)
_a = generate_cached(_g, [[1, 2]], 5)
manual_seed(11)
assert np.array_equal(_a, generate(_g, [[1, 2]], 5)), (
    "without a generator, generate_cached draws from default_generator(), as module 14")
assert_mode_restored(_g, generate_cached, _g, np.array([[1]]), 2)
assert_raises(ValueError, generate_cached, _g, [[1]], 2, temperature=0.0)
assert_raises(ValueError, generate_cached, _g, [[1]], 2, top_k=0)
assert_raises(ValueError, generate_cached, _g, [[]], 2)
# generating reads the model and the prompt, and writes neither (a returned view of the
# prompt would change when the caller edits it)
assert_untouched(generate_cached, _g, np.array([[4, 4, 3, 1, 2, 0]]), 6, no_view=True,
                 watch=[_p.data for _p in _g.parameters()])
### END HIDDEN TESTS

# %% [markdown]
# ## Measure it
#
# Module 14's `generate` against `generate_cached` on the milestone's model size, writing
# a whole context of 16 and of 64 tokens from a one-token prompt, the same greedy tokens
# checked. Each figure is module 15's `median_ms` of three runs after a warm-up: a
# stopwatch that module 19 turns into a harness with confidence intervals.
# `benchmarks/caching.py` measures the curve up to a context of 256.

# %%
for length in (16, 64):
    new = length - 1
    same = np.array_equal(generate(model, prompt, new, top_k=1),
                          generate_cached(model, prompt, new, top_k=1))
    plain = median_ms(lambda n=new: generate(model, prompt, n, top_k=1), repeats=3) / 1e3
    cached = median_ms(lambda n=new: generate_cached(model, prompt, n, top_k=1),
                       repeats=3) / 1e3
    print(f"context {length:3d}: {new / plain:6.0f} tokens/s recomputing, "
          f"{new / cached:6.0f} tokens/s cached: {plain / cached:4.1f}x "
          f"(same tokens: {same})")
print(KVCache.for_model(model))

# %% [markdown]
# The speed-up grows with the context: without the cache a token costs a pass over the
# whole context, with it one position per layer plus a look at the stored keys. Two
# limits remain. Past `block_size` every token is a full pass again (above). And at this
# size much of a cached step is the fixed cost of a few dozen small NumPy calls, not
# arithmetic: a larger model gains more.
#
# ## What you built
#
# - `KVCache`: preallocated keys and values for every layer, `length`, exact `nbytes`,
#   `reset()`, `KVCache.for_model(model, batch)`.
# - `cached_attention` and `forward_cached`: t new tokens after the cached ones, on the
#   Parameters' arrays with no graph; `prefill` and `decode_step` on top.
# - `generate_cached`: module 14's tokens, greedy and sampled, without the recomputation.
#
# Next, module 17 (precision): the model's weights take four bytes each; use fewer bits.
