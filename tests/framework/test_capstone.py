"""Module 20 against the models it serves: safetensors files round trip every dtype and
shape and every damaged file is a one-line SafetensorsError; export/load rebuilds a GPT
and a CNN with BatchNorm that compute what the originals compute; the LanguageEngine
writes module 14's greedy tokens for prompts of different lengths batched together, its
logits at every step equal module 14's forward (1e-5; int8: module 17's quantized model's,
and within module 17's tolerance of the float model), slots opened and closed mid-way
change nothing, and past block_size it crops as module 16 does; the VisionEngine's
probabilities equal the eval-mode model's."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.capstone import (
    DTYPES,
    EngineFull,
    LanguageEngine,
    SafetensorsError,
    VisionEngine,
    export,
    fold_batchnorm,
    load,
    load_safetensors,
    save_safetensors,
    tokenizer_from_json,
    tokenizer_to_json,
)
from tinytorch.core.activations import GELU, ReLU, Sigmoid, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential, manual_seed
from tinytorch.core.spatial import AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig, LayerNorm, generate
from tinytorch.perf import acceleration
from tinytorch.perf.precision import quantize_model
from tinytorch.text.tokenization import BPETokenizer, CharTokenizer


def make_gpt(config, seed=0, scale=1.5):
    """A GPT with weights moved off their initial values (norms' ones and zeros) and
    sharpened, so every part of the model shapes the logits and greedy choices are clear."""
    manual_seed(seed)
    model = GPT(config)
    rng = np.random.default_rng(seed)
    for param in model.parameters():
        param.data = ((param.data + 0.1 * rng.standard_normal(param.shape)) * scale).astype(np.float32)
    return model


def make_cnn(seed=0, batchnorm=True):
    """The cnn milestone's layout, small: conv, BatchNorm, ReLU, pool, twice; a Linear head.
    Trained-like running statistics: a few training-mode batches of shifted inputs."""
    manual_seed(seed)
    norm = [BatchNorm2d] if batchnorm else []
    layers = [Conv2d(1, 4, 3, padding=1), *[n(4) for n in norm], ReLU(), MaxPool2d(2),
              Conv2d(4, 6, 3, padding=1, bias=False), *[n(6) for n in norm], ReLU(), MaxPool2d(2),
              Flatten(), Dropout(0.2), Linear(6 * 3 * 3, 5)]
    model = Sequential(*layers)
    rng = np.random.default_rng(seed)
    for _ in range(3):
        model(rng.standard_normal((8, 1, 12, 12)) * 2 + 0.5)
    for layer in model:
        if isinstance(layer, BatchNorm2d):
            layer.weight.data = rng.uniform(0.5, 2, layer.weight.shape).astype(np.float32)
            layer.bias.data = rng.standard_normal(layer.bias.shape).astype(np.float32)
    return model.eval()


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---- safetensors ---------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda s: s != "__metadata__"),
                       st.tuples(st.sampled_from(sorted(DTYPES)),
                                 st.lists(st.integers(0, 4), max_size=3)),
                       max_size=5),
       st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
       st.integers(0, 2 ** 32 - 1))
def test_safetensors_round_trips_every_dtype_and_shape(tmp_path_factory, specs, metadata, seed):
    rng = np.random.default_rng(seed)
    tensors = {name: (rng.standard_normal(shape) * 100).astype(DTYPES[kind])
               for name, (kind, shape) in specs.items()}
    path = tmp_path_factory.mktemp("st") / "t.safetensors"
    save_safetensors(tensors, path, metadata)
    back, meta = load_safetensors(path)
    assert meta == metadata and set(back) == set(tensors)
    for name, array in tensors.items():
        assert back[name].dtype == array.dtype and back[name].shape == array.shape
        assert np.array_equal(back[name], array)
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0 and data[8 + n - 1:8 + n] in (b" ", b"}")


def _file(header: dict, buffer: bytes, pad=True) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8) if pad else b""
    return len(text).to_bytes(8, "little") + text + buffer


F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
DAMAGED = {
    "truncated": b"\x10\x00\x00",
    "empty": b"",
    "past the end": (1 << 40).to_bytes(8, "little") + b"{}",
    "not UTF-8 JSON": b"\x08" + bytes(7) + b"\xff\xfe\xfd{}  " + bytes(8),
    "not JSON": _file({}, b"")[:8] + b"{nope}  ",
    "not an object": _file([1, 2], b""),  # type: ignore[arg-type]
    "unknown dtype": _file({"x": {**F32, "dtype": "BF16"}}, bytes(8)),
    "needs": _file({"x": {**F32, "shape": [3]}}, bytes(12)),
    "outside": _file({"x": {**F32, "data_offsets": [4, 12]}}, bytes(8)),
    "overlap": _file({"x": F32, "y": {**F32, "data_offsets": [4, 12]}}, bytes(12)),
    "backwards": _file({"x": {**F32, "data_offsets": [8, 0]}}, bytes(8)),
    "str": _file({"x": F32, "__metadata__": {"epochs": 3}}, bytes(8)),
    "shape": _file({"x": {**F32, "shape": [-2]}}, bytes(8)),
    "data_offsets": _file({"x": {**F32, "data_offsets": [0]}}, bytes(8)),
}


@pytest.mark.parametrize("problem", sorted(DAMAGED))
def test_every_damaged_file_is_a_one_line_error(tmp_path, problem):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(DAMAGED[problem])
    with pytest.raises(SafetensorsError) as error:
        load_safetensors(path)
    message = str(error.value)
    assert isinstance(error.value, ValueError) and "\n" not in message and str(path) in message
    word = {"empty": "truncated", "backwards": "outside", "not JSON": "JSON"}.get(problem, problem)
    assert word in message, message


def test_offsets_count_from_the_buffer_and_arrays_are_views_of_one_buffer(tmp_path):
    path = tmp_path / "t.safetensors"
    header = {"a": {"dtype": "I16", "shape": [2], "data_offsets": [4, 8]},
              "b": {"dtype": "U8", "shape": [2, 2], "data_offsets": [0, 4]},
              "__metadata__": {"x" * 13: "y"}}
    path.write_bytes(_file(header, bytes([1, 2, 3, 4]) + np.array([-3, 300], "<i2").tobytes()))
    back, meta = load_safetensors(path)
    assert back["a"].tolist() == [-3, 300] and back["b"].tolist() == [[1, 2], [3, 4]]
    assert meta == {"x" * 13: "y"}
    assert back["a"].base is not None and back["a"].flags.writeable
    # a header without padding is still read (the padding is the writer's courtesy)
    path.write_bytes(_file({"b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\x07", pad=False))
    assert load_safetensors(path)[0]["b"].tolist() == [7]


def test_save_refuses_what_the_format_cannot_hold(tmp_path):
    path = tmp_path / "t.safetensors"
    with pytest.raises(SafetensorsError, match="dtype"):
        save_safetensors({"x": np.array([1 + 2j])}, path)
    with pytest.raises(SafetensorsError, match="str"):
        save_safetensors({"x": np.zeros(2)}, path, {"epochs": 3})
    with pytest.raises(SafetensorsError, match="__metadata__"):
        save_safetensors({"__metadata__": np.zeros(2)}, path)
    save_safetensors({"big": np.array([1.0, 2.0], ">f4")}, path)
    assert path.read_bytes()[-8:] == np.array([1.0, 2.0], "<f4").tobytes()


# ---- export and load -----------------------------------------------------------------------

@pytest.mark.parametrize("tie", [False, True])
def test_a_gpt_through_a_file_computes_what_it_did(tmp_path, tie):
    model = make_gpt(GPTConfig(vocab_size=9, block_size=7, n_layer=2, n_head=2, n_embd=6, tie_weights=tie))
    tok = CharTokenizer.from_text("abcdefgh ")
    path = tmp_path / "gpt.safetensors"
    export(model, path, extra={"task": "language", "tokenizer": tokenizer_to_json(tok)})
    loaded, meta = load(path)
    assert isinstance(loaded, GPT) and loaded.config == model.config and not loaded.training
    assert meta["task"] == "language" and json.loads(meta["tinytorch.architecture"])["kind"] == "gpt"
    assert tokenizer_from_json(meta["tokenizer"]).chars == tok.chars
    ids = np.random.default_rng(0).integers(0, 9, (3, 7))
    with no_grad():
        assert np.array_equal(loaded(ids).data, model(ids).data)
    tensors, _ = load_safetensors(path)
    assert set(tensors) == set(model.state_dict())


def test_a_cnn_with_batchnorm_through_a_file_keeps_its_running_statistics(tmp_path):
    model = make_cnn()
    path = tmp_path / "cnn.safetensors"
    export(model, path, extra={"classes": json.dumps(list("abcde"))})
    tensors, _ = load_safetensors(path)
    assert "1.running_mean" in tensors and not np.allclose(tensors["1.running_var"], 1)
    loaded, meta = load(path)
    assert [type(layer) for layer in loaded] == [type(layer) for layer in model]
    assert loaded[4].bias is None and loaded[9].p == 0.2 and not loaded.training
    x = np.random.default_rng(1).standard_normal((4, 1, 12, 12))
    with no_grad():
        assert np.array_equal(loaded(x).data, model(x).data)


def test_every_layer_kind_exports_and_anything_else_is_named(tmp_path):
    manual_seed(0)
    model = Sequential(Linear(4, 6), Sigmoid(), Sequential(Linear(6, 6, bias=False), Tanh()), GELU(),
                       Linear(6, 3))
    path = tmp_path / "mlp.safetensors"
    export(model, path)
    loaded, _ = load(path)
    x = np.random.default_rng(2).standard_normal((3, 4))
    with no_grad():
        assert np.array_equal(loaded(x).data, model(x).data)
    with pytest.raises(TypeError, match="LayerNorm"):
        export(Sequential(Linear(2, 2), LayerNorm(2)), path)
    with pytest.raises(TypeError, match="Linear"):
        export(Linear(2, 2), path)
    with pytest.raises(TypeError, match="QuantizedLinear.*int8=True"):
        export(quantize_model(model), path)
    with pytest.raises(ValueError, match="tinytorch.architecture"):
        export(model, path, extra={"tinytorch.architecture": "{}"})


def test_load_is_strict_and_says_what_does_not_fit(tmp_path):
    model = make_cnn(batchnorm=False)
    path = tmp_path / "cnn.safetensors"
    export(model, path)
    tensors, meta = load_safetensors(path)
    save_safetensors({k: v for k, v in tensors.items() if k != "0.bias"}, path, meta)
    with pytest.raises(ValueError, match=r"missing \['0.bias'\]"):
        load(path)
    save_safetensors({**tensors, "extra": np.zeros(1)}, path, meta)
    with pytest.raises(ValueError, match=r"unexpected \['extra'\]"):
        load(path)
    save_safetensors({**tensors, "0.bias": np.zeros(5, np.float32)}, path, meta)
    with pytest.raises(ValueError, match="'0.bias' has shape"):
        load(path)
    save_safetensors(tensors, path)
    with pytest.raises(ValueError, match="export"):
        load(path)
    save_safetensors(tensors, path, {"tinytorch.architecture": '{"kind": "gpt", "config": {"vocab": 3}}'})
    with pytest.raises(ValueError, match="cannot be built"):
        load(path)


def test_tokenizers_travel_as_json():
    bpe = BPETokenizer().train("the cat sat on the mat, the cat ate " * 4, 270)
    back = tokenizer_from_json(tokenizer_to_json(bpe))
    text = "the mat sat"
    assert back.merges == bpe.merges and back.encode(text) == bpe.encode(text)
    with pytest.raises(ValueError, match="merge"):
        tokenizer_from_json(tokenizer_to_json(bpe).replace('"merges": [[', '"merges": [[999, 1], ['))
    with pytest.raises(ValueError, match="format"):
        tokenizer_from_json('{"format": "other"}')
    with pytest.raises(TypeError):
        tokenizer_to_json(object())


# ---- the language engine -------------------------------------------------------------------

CONFIG = GPTConfig(vocab_size=17, block_size=12, n_layer=2, n_head=2, n_embd=8)


def model_logits(model, ids):
    """Module 14's last-position logits after each prefix of ids (crop to block_size)."""
    bs = model.config.block_size
    with no_grad():
        return np.array([model(np.array([ids[max(0, t - bs):t]])).data[0, -1] for t in range(1, len(ids) + 1)])


@pytest.mark.parametrize("tie", [False, True])
def test_batched_greedy_tokens_and_logits_are_module_14s(tie):
    model = make_gpt(GPTConfig(17, 12, 2, 2, 8, tie), seed=1)
    prompts = [[1, 2, 3, 4, 5, 6, 7], [8], [9, 10, 11], [12, 13, 14, 15, 16, 0, 1, 2, 3]]
    engine = LanguageEngine(model, max_batch=4)
    slots = [engine.open(p) for p in prompts]
    seen = [[engine.logits(s).copy()] for s in slots]
    tokens = [[] for _ in prompts]
    for _ in range(5):
        for slot, token in engine.step().items():
            tokens[slots.index(slot)].append(token)
            seen[slots.index(slot)].append(engine.logits(slot).copy())
    for prompt, got, logits in zip(prompts, tokens, seen):
        want = generate(model, np.array([prompt]), 5, top_k=1)[0, len(prompt):].tolist()
        assert got == want, f"prompt {prompt}: {got} != {want}"
        full = prompt + got
        expected = model_logits(model, full)[len(prompt) - 1:]
        assert np.abs(np.array(logits) - expected).max() < 1e-5 * max(1, np.abs(expected).max())
        assert np.array(logits).dtype == np.float32


configs = st.builds(
    lambda n_layer, n_head, head_size, vocab, block, tie: GPTConfig(vocab, block, n_layer, n_head,
                                                                    n_head * head_size, tie),
    st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.integers(2, 13), st.integers(1, 8),
    st.booleans())


@settings(max_examples=15, deadline=None)
@given(configs, st.integers(1, 3), st.data())
def test_any_model_any_batch_of_prompts_gives_each_prompts_own_tokens(config, max_batch, data):
    model = make_gpt(config, seed=data.draw(st.integers(0, 99)), scale=2.0)
    ids = st.lists(st.integers(0, config.vocab_size - 1), min_size=1, max_size=config.block_size + 2)
    prompts = data.draw(st.lists(ids, min_size=1, max_size=4))
    new = data.draw(st.integers(1, config.block_size + 3))
    got = LanguageEngine(model, max_batch=max_batch).generate(prompts, new)
    for prompt, tokens in zip(prompts, got):
        assert tokens == generate(model, np.array([prompt]), new, top_k=1)[0, len(prompt):].tolist()


def test_generate_more_prompts_than_slots_in_turns_equals_each_alone():
    model = make_gpt(CONFIG, seed=2)
    prompts = [[i % 17, (3 * i) % 17, 5][: 1 + i % 3] for i in range(7)]
    engine = LanguageEngine(model, max_batch=3)
    got = engine.generate(prompts, 4)
    for prompt, tokens in zip(prompts, got):
        assert tokens == generate(model, np.array([prompt]), 4, top_k=1)[0, len(prompt):].tolist()
    assert engine.free_slots == 3 and engine.generate(prompts, 0) == [[]] * 7


def test_slots_opened_and_closed_mid_generation_give_the_tokens_of_each_alone():
    model = make_gpt(CONFIG, seed=3)
    engine = LanguageEngine(model, max_batch=2)
    alone = {tuple(p): generate(model, np.array([p]), 8, top_k=1)[0, len(p):].tolist()
             for p in ([1, 2, 3, 4, 5, 6], [7], [8, 9])}
    a = engine.open([1, 2, 3, 4, 5, 6])
    b = engine.open([7])
    assert engine.free_slots == 0
    with pytest.raises(EngineFull):
        engine.open([1])
    out = {a: [], b: []}
    for _ in range(3):
        for slot, token in engine.step().items():
            out[slot].append(token)
    engine.close(a)                  # a long request leaves, a short one takes its stale slot
    c = engine.open([8, 9])
    assert c == a
    out[c] = []
    for _ in range(8):
        for slot, token in engine.step().items():
            out[slot].append(token)
    assert out[b][:8] == alone[(7,)] and out[c] == alone[(8, 9)]
    with pytest.raises(KeyError):
        engine.close(5)


@pytest.mark.parametrize("prompt_length", [1, 5, 12, 15])
def test_past_block_size_it_crops_as_module_16(prompt_length):
    model = make_gpt(GPTConfig(11, 6, 2, 2, 8), seed=4)
    prompt = [(7 * i) % 11 for i in range(prompt_length)]
    engine = LanguageEngine(model, max_batch=2)
    got = engine.generate([prompt, [3, 1]], 13)
    assert got[0] == generate(model, np.array([prompt]), 13, top_k=1)[0, prompt_length:].tolist()
    assert got[1] == generate(model, np.array([[3, 1]]), 13, top_k=1)[0, 2:].tolist()


def test_sampling_with_a_seed_is_module_14s_with_that_generator():
    model = make_gpt(CONFIG, seed=5, scale=0.7)
    engine = LanguageEngine(model, max_batch=4)
    prompts = [[1, 2, 3], [4], [5, 6]]
    got = engine.generate(prompts, 9, temperature=0.8, top_k=5, seed=11)
    for prompt, tokens in zip(prompts, got):
        want = generate(model, np.array([prompt]), 9, 0.8, 5, np.random.default_rng(11))
        assert tokens == want[0, len(prompt):].tolist()
    again = engine.generate(prompts, 9, temperature=0.8, top_k=5, seed=11)
    assert again == got


def test_int8_logits_are_module_17s_quantized_model_and_close_to_the_float_model():
    model = make_gpt(GPTConfig(17, 12, 2, 2, 32), seed=6)
    quantized = quantize_model(model)
    engine = LanguageEngine(model, int8=True, max_batch=2)
    float_engine = LanguageEngine(model, max_batch=2)
    assert engine.nbytes < 0.35 * float_engine.nbytes
    slots = [engine.open([1, 2, 3, 4]), engine.open([5])]
    ids = [[1, 2, 3, 4], [5]]
    for _ in range(4):
        for slot, token in engine.step().items():
            ids[slots.index(slot)].append(token)
    for slot, full in zip(slots, ids):
        got = engine.logits(slot)
        want = model_logits(quantized, full)[-1]
        reference = model_logits(model, full)[-1]
        assert np.abs(got - want).max() < 1e-4 * max(1, np.abs(want).max())
        assert np.abs(got - reference).max() < 0.05 * np.abs(reference).max()   # module 17's bound


def test_the_engine_builds_no_tensor_and_leaves_the_model_alone(monkeypatch):
    model = make_gpt(CONFIG, seed=7)
    before = {name: p.data.copy() for name, p in model.named_parameters()}

    def no_tensor_op(*args, **kwargs):
        raise AssertionError("the engine called a Tensor operation")

    engine = LanguageEngine(model, int8=False)
    vision = VisionEngine(make_cnn())
    monkeypatch.setattr(Tensor, "_result", no_tensor_op)
    monkeypatch.setattr(Tensor, "__init__", no_tensor_op)
    engine.generate([[1, 2], [3]], 5)
    vision.predict_proba(np.zeros((1, 1, 12, 12)))
    monkeypatch.undo()
    assert all(np.array_equal(p.data, before[n]) and p.grad is None for n, p in model.named_parameters())


def test_bad_requests_are_one_line_errors():
    engine = LanguageEngine(make_gpt(CONFIG), max_batch=1)
    for prompt, match in (([], "non-empty"), ([17], "0 .. 16"), ([-1], "0 .. 16")):
        with pytest.raises(ValueError, match=match):
            engine.open(prompt)
    with pytest.raises(ValueError, match="temperature"):
        engine.open([1], temperature=-1)
    with pytest.raises(TypeError, match="GPT"):
        LanguageEngine(make_cnn())
    with pytest.raises(ValueError, match="max_batch"):
        LanguageEngine(make_gpt(CONFIG), max_batch=0)
    assert (engine.block_size, engine.vocab_size, engine.max_batch) == (12, 17, 1)


# ---- the vision engine ---------------------------------------------------------------------

def eval_probabilities(model, x):
    with no_grad():
        return softmax(model.eval()(x).data)


@pytest.mark.parametrize("batchnorm", [True, False])
def test_vision_probabilities_equal_the_eval_models(batchnorm):
    model = make_cnn(seed=8, batchnorm=batchnorm)
    x = np.random.default_rng(3).standard_normal((6, 1, 12, 12)).astype(np.float32)
    engine = VisionEngine(model)
    got = engine.predict_proba(x)
    assert engine.input_shape == (1, 12, 12) and got.dtype == np.float32 and got.shape == (6, 5)
    assert np.abs(got - eval_probabilities(model, x)).max() < 1e-5
    int8 = VisionEngine(model, int8=True).predict_proba(x)
    assert np.abs(int8 - got).max() < 0.05


@pytest.mark.parametrize("batchnorm", [True, False])
def test_the_vision_engine_convolves_by_winograd_where_module_15_does(batchnorm, monkeypatch):
    """With Winograd's threshold lowered to every 3x3 layer of the small CNN: even sizes go
    through module 15's winograd_conv_last (BatchNorm folded, or no bias at all), an odd one
    through im2col, and the probabilities are the model's either way; int8 never uses it."""
    monkeypatch.setattr(acceleration, "WINOGRAD_MIN_CHANNELS", 1)
    calls, real = [], acceleration.winograd_conv_last
    monkeypatch.setattr(acceleration, "winograd_conv_last", lambda x, u: calls.append(x.shape) or real(x, u))
    model = make_cnn(seed=8, batchnorm=batchnorm)
    engine = VisionEngine(model)
    for size, expected in ((12, [(6, 12, 12, 1), (6, 6, 6, 4)]), (13, [(6, 6, 6, 4)])):
        calls.clear()
        x = np.random.default_rng(size).standard_normal((6, 1, size, size)).astype(np.float32)
        got = engine.predict_proba(x)
        assert calls == expected and got.dtype == np.float32
        assert np.abs(got - eval_probabilities(model, x)).max() < 1e-5
    calls.clear()
    VisionEngine(model, int8=True).predict_proba(x)
    assert calls == []


def test_fold_batchnorm_is_the_pair_and_keeps_eps():
    rng = np.random.default_rng(4)
    bn = BatchNorm2d(3, eps=0.5)
    bn.running_mean = rng.standard_normal(3).astype(np.float32)
    bn.running_var = rng.uniform(0.01, 2, 3).astype(np.float32)
    bn.weight.data = rng.standard_normal(3).astype(np.float32)
    bn.bias.data = rng.standard_normal(3).astype(np.float32)
    conv = Conv2d(2, 3, 3, stride=2, padding=1)
    x = Tensor(rng.standard_normal((2, 2, 7, 7)).astype(np.float32))
    bn.eval()
    with no_grad():
        want = bn(conv(x)).data
        w, b = fold_batchnorm(conv.weight.data, conv.bias.data, bn)
        folded = Conv2d(2, 3, 3, stride=2, padding=1)
        folded.weight.data, folded.bias.data = w, b
        assert np.abs(folded(x).data - want).max() < 1e-5


def test_mlps_pools_activations_and_a_lone_batchnorm():
    manual_seed(9)
    mlp = Sequential(Flatten(), Linear(16, 8), GELU(), Dropout(0.5), Linear(8, 8), Sigmoid(),
                     Linear(8, 4), Tanh(), Linear(4, 3))
    x = np.random.default_rng(5).standard_normal((3, 1, 4, 4)).astype(np.float32)
    engine = VisionEngine(mlp)
    assert engine.input_shape == (16,)
    assert np.abs(engine.predict_proba(x) - eval_probabilities(mlp, x)).max() < 1e-5
    manual_seed(10)
    cnn = Sequential(BatchNorm2d(2), Conv2d(2, 3, 3, stride=2), ReLU(), AvgPool2d(2, stride=1),
                     MaxPool2d(2), Flatten(), Linear(3 * 2 * 2, 2))
    cnn(np.random.default_rng(6).standard_normal((5, 2, 11, 11)))
    x = np.random.default_rng(7).standard_normal((4, 2, 11, 11)).astype(np.float32)
    engine = VisionEngine(cnn)
    assert engine.input_shape == (2, 11, 11)
    assert np.abs(engine.predict_proba(x) - eval_probabilities(cnn, x)).max() < 1e-5
    with pytest.raises(ValueError, match="images of shape"):
        engine.predict_proba(np.zeros((4, 3, 11, 11)))
