# %% [markdown]
# # Module 20: Capstone — integrate everything into one system
#
# You have trained a GPT and a CNN with your own framework. Where do they live? In one
# Python process, as Parameters wrapped in Tensors, next to optimizer state and, after a
# forward pass, a whole autograd graph. Close the notebook and they are gone; `pickle`
# them and the file holds your classes' import paths (and unpickling runs code from the
# file). Nobody else can load them, and answering one request drags the training
# machinery along.
#
# To ship a model and answer requests fast you need two things this module builds:
#
# - **a file** in the ecosystem's format, `safetensors`: a JSON header, then the raw bytes
#   of every tensor. PyTorch, the `safetensors` library and your framework all read it;
#   reading it runs no code. The model's architecture travels in the header's metadata,
#   so `load(path)` rebuilds the model with nothing else.
# - **lean inference engines**: the weights copied out once as NumPy arrays, no Tensor,
#   no graph, dropout gone, BatchNorm folded into the convolution before it. The language
#   engine keeps one KV cache of several **slots** and decodes every open request in one
#   batched step (continuous batching), optionally from int8 weights.
#
# You will write `save_safetensors` and `load_safetensors` (with the checks a file from
# outside needs), the engine's batched forward with one position and one length per slot,
# and `fold_batchnorm`. The glue (the architecture as JSON, the tokenizer in metadata, the
# slots' bookkeeping) is given. Every engine is checked against the model it came from:
# the same greedy tokens, logits within 1e-5.

# %%
import json
import tempfile
from pathlib import Path

import numpy as np

from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential, manual_seed
from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.models.transformer import GPT, GPTConfig
from tinytorch.perf.benchmarking import measure
from tinytorch.text.tokenization import CharTokenizer

np.set_printoptions(precision=4, suppress=True)      # compact arrays in this notebook


def new_folder():
    """A new temporary folder for the files a cell writes."""
    return Path(tempfile.mkdtemp(prefix="capstone-"))

# %% [markdown]
# ## A safetensors file, byte by byte
#
# The whole format fits in three lines:
#
# ```
# bytes 0..7      N, the header's length: an unsigned 64-bit integer, little-endian
# bytes 8..8+N-1  the header: UTF-8 JSON, padded with spaces to a multiple of 8
# the rest        the data buffer: every tensor's raw little-endian bytes
# ```
#
# The header maps each tensor's name to its dtype, shape and where its bytes sit in the
# buffer, `data_offsets = [begin, end]`, counted from the first byte **after** the header
# (not from the start of the file). One optional entry, `"__metadata__"`, holds free
# strings. A 2-element float32 tensor `b = [1.0, -2.0]`:
#
# ```
# header  {"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}   54 bytes, padded to 56
# file    38 00 00 00 00 00 00 00        N = 0x38 = 56, least significant byte first
#         7b 22 62 22 3a 7b ...          {"b":{ ... the JSON, then two spaces (20 20)
#         00 00 80 3f  00 00 00 c0       1.0 and -2.0 as float32, little-endian
# ```
#
# Why this shape? The JSON header is small and read first: a reader learns every name,
# dtype and shape without touching the data, and can **map** the file into memory and
# point an array at each tensor's bytes without copying them (zero-copy). The 8-byte
# padding keeps the buffer aligned for that. And there is nothing to execute: a pickled
# model file names classes that unpickling imports and calls, so loading a stranger's
# file can run their code. Here the worst a bad file can do is fail the checks below.
#
# The dtype names are the format's own:

# %%
#| export
import json
import math
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tinytorch.core.activations import GELU, ReLU, Sigmoid, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential, default_generator
from tinytorch.core.spatial import AvgPool2d, BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, GPTConfig
from tinytorch.perf import acceleration
from tinytorch.perf.caching import KVCache, _draw
from tinytorch.perf.precision import quantize
from tinytorch.text.attention import masked_softmax
from tinytorch.text.tokenization import FORMAT as BPE_FORMAT
from tinytorch.text.tokenization import BPETokenizer, CharTokenizer

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
          "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
          "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
          "BOOL": np.bool_}
# a little-endian dtype's code -> its name: "<f4" (float32) -> "F32"
NAMES = {np.dtype(kind).newbyteorder("<").str: name for name, kind in DTYPES.items()}


class SafetensorsError(ValueError):
    """A file that is not a readable safetensors file, or tensors it cannot hold."""


def _header_bytes(header):
    """The header as UTF-8 JSON, padded with spaces to a multiple of 8 bytes."""
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return text + b" " * (-len(text) % 8)


def save_safetensors(tensors, path, metadata=None):
    """Write {name: array} to `path` in the safetensors format, with `metadata` ({str:
    str}, or None) under "__metadata__". Arrays are written little-endian, in name order.

    >>> save_safetensors({"b": np.array([1.0, -2.0], np.float32)}, "b.safetensors")
    """
    metadata = {} if metadata is None else metadata
    _check_metadata(metadata, "save_safetensors")
    arrays = {}
    for name, value in tensors.items():
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise SafetensorsError(f"save_safetensors: tensor names are non-empty "
                                   f"strings other than '__metadata__', got {name!r}")
        array = np.asarray(value)
        if array.dtype.newbyteorder("<").str not in NAMES:
            kinds = ", ".join(str(np.dtype(kind)) for kind in DTYPES.values())
            raise SafetensorsError(f"save_safetensors: {name!r} has dtype {array.dtype}, "
                                   f"which safetensors cannot hold; convert it to one of "
                                   f"{kinds}")
        arrays[name] = array
    # TODO: build the header: for every name in sorted order, {"dtype": NAMES[dtype],
    #       "shape": [...], "data_offsets": [begin, end]} with offsets counted from the
    #       start of the data buffer, one tensor after the other; add "__metadata__" when
    #       there is metadata. Then write 8 bytes of len(_header_bytes(header)) as an
    #       unsigned little-endian integer, the header bytes, and each array's bytes in
    #       the same order, little-endian (dtype.newbyteorder("<")).
    ### BEGIN SOLUTION
    header, chunks, offset = {}, [], 0
    for name in sorted(arrays):
        little = arrays[name].dtype.newbyteorder("<")
        data = np.ascontiguousarray(arrays[name], dtype=little).tobytes()
        header[name] = {"dtype": NAMES[little.str], "shape": list(arrays[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = _header_bytes(header)
    with open(path, "wb") as file:
        file.write(len(text).to_bytes(8, "little"))
        file.write(text)
        for data in chunks:
            file.write(data)
    ### END SOLUTION


def _check_metadata(metadata, who):
    """A one-line SafetensorsError unless metadata is a dict of str to str."""
    if not isinstance(metadata, dict):
        raise SafetensorsError(f"{who}: the metadata must be a dict of str to str, got "
                               f"{type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SafetensorsError(f"{who}: metadata {key!r}: {value!r} is not str: str; "
                                   "store other values as JSON text (json.dumps)")

# %% [markdown]
# ### Test it: the worked example
#
# The file of `b = [1.0, -2.0]`, byte for byte, as a hexdump prints it.

# %%
def hexdump(data, width=16):
    """Bytes as rows of hex and their printable characters."""
    for row in range(0, len(data), width):
        chunk = data[row:row + width]
        text = "".join(chr(c) if 32 <= c < 127 else "." for c in chunk)
        print(f"{row:04x}  {chunk.hex(' '):<{3 * width}}  {text}")

# %%
#| test: save_safetensors (3 points)
def test_save_safetensors():
    path = new_folder() / "b.safetensors"
    save_safetensors({"b": np.array([1.0, -2.0], np.float32)}, path)
    data = path.read_bytes()
    hexdump(data)
    n = int.from_bytes(data[:8], "little")
    assert 8 + n <= len(data), (
        f"the first 8 bytes, read as a little-endian number, say the header is {n:,} "
        f"bytes long, but the file has {len(data)}: write len(header) with "
        "to_bytes(8, 'little')")
    header = json.loads(data[8:8 + n])
    assert header == {"b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, (
        f"header: expected b's dtype F32, shape [2], offsets [0, 8], got {header}")
    assert data[8 + n:] == bytes.fromhex("0000803f000000c0"), (
        f"after the header: 1.0 and -2.0 as little-endian float32 (00 00 80 3f 00 00 00 "
        f"c0), got {data[8 + n:].hex(' ')}")

test_save_safetensors()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises, assert_untouched

_p = new_folder() / "b.safetensors"
save_safetensors({"b": np.array([1.0, -2.0], np.float32)}, _p)
_d = _p.read_bytes()
assert _d[:8] == bytes([56]) + bytes(7) and len(_d) == 72 and _d[62:64] == b"  ", (
    "the worked example: 54 bytes of JSON padded with spaces to 56, so N = 56 and the "
    "data buffer starts at byte 64, aligned to 8 bytes")
_p = new_folder() / "two.safetensors"
_a = np.arange(6, dtype=np.int64).reshape(2, 3)
_z = np.array([True, False, True])
save_safetensors({"z": _z, "a": _a, "h": np.ones(3, np.float16)}, _p, {"task": "t"})
_d = _p.read_bytes()
_n = int.from_bytes(_d[:8], "little")
_h = json.loads(_d[8:8 + _n])
assert _n % 8 == 0, f"the header length must be a multiple of 8, got {_n}"
assert _h["__metadata__"] == {"task": "t"}, "the metadata goes under __metadata__"
_spans = sorted(tuple(v["data_offsets"]) for k, v in _h.items() if k != "__metadata__")
assert _spans == [(0, 48), (48, 54), (54, 57)], (
    f"offsets are relative to the data buffer, one tensor after the other: {_spans}")
assert [_h[k]["dtype"] for k in "ahz"] == ["I64", "F16", "BOOL"], "the dtypes' names"
_begin, _end = _h["a"]["data_offsets"]
assert _d[8 + _n + _begin:8 + _n + _end] == _a.astype("<i8").tobytes(), (
    "each tensor's bytes at its offsets, little-endian")
_big = np.array([1.5, 2.5], dtype=">f8")
save_safetensors({"x": _big}, _p)
assert _p.read_bytes()[-16:] == np.array([1.5, 2.5], "<f8").tobytes(), (
    "a big-endian array is written little-endian")
assert_untouched(save_safetensors, {"x": _big}, _p)      # no byteswap in place
assert _big.dtype == np.dtype(">f8") and _big.tolist() == [1.5, 2.5], (
    "save_safetensors must leave the caller's arrays as they were")
_t = np.arange(6, dtype=np.float32).reshape(2, 3).T         # (3, 2), not C-contiguous
save_safetensors({"t": _t}, _p)
assert _p.read_bytes()[-24:] == np.ascontiguousarray(_t).tobytes(), (
    "a transposed (non-contiguous) array is written in row-major order, as its shape "
    "reads: the bytes of np.ascontiguousarray(t), not of its memory")
assert_raises(SafetensorsError, save_safetensors, {"x": np.array(["a"])}, _p,
              match="dtype")
assert_raises(SafetensorsError, save_safetensors, {"x": _a}, _p, {"n": 1}, match="str")
### END HIDDEN TESTS

# %% [markdown]
# ## Reading a file you did not write
#
# A loader meets files from elsewhere: cut short by a failed download, written by a
# buggy tool, or made to break readers. Each check below turns one such file into a
# one-line `SafetensorsError` instead of a crash deep in NumPy, or worse, an array that
# silently reads another tensor's bytes:
#
# | the file | the check |
# |---|---|
# | fewer than 8 bytes | truncated: no header length |
# | N beyond the file | the header cannot be read |
# | header not JSON, or not an object | not a safetensors header |
# | a dtype not in the table | unknown dtype (the message names it) |
# | end − begin ≠ (product of shape) × item size | shape and offsets disagree |
# | an end past the buffer, begin > end | the tensor overruns the buffer |
# | two tensors' spans overlap | one byte cannot belong to two tensors |
# | metadata values that are not strings | the format allows strings only |
#
# When every check passes, each array is `np.frombuffer` of its span: a view of the one
# buffer read from disk, not a copy.

# %%
#| export
def _fail(path, problem):
    return SafetensorsError(f"{path}: {problem}")


def load_safetensors(path):
    """Read a safetensors file: ({name: array}, {metadata str: str}). The arrays are
    views of one buffer read from the file; a damaged file raises SafetensorsError."""
    data = Path(path).read_bytes()
    if len(data) < 8:
        raise _fail(path, f"truncated: {len(data)} bytes, not even the 8-byte header "
                          "length; download or export the file again")
    # TODO: read N (8 bytes, unsigned little-endian); fail when 8 + N passes the end of
    #       the file, or when the N header bytes are not UTF-8 JSON of an object. Take
    #       "__metadata__" out (default {}) and check it with _check_metadata. The buffer
    #       is everything after the header: bytearray(data[8 + N:]) (writable).
    ### BEGIN SOLUTION
    n = int.from_bytes(data[:8], "little")
    if 8 + n > len(data):
        raise _fail(path, f"the header length {n} reaches past the end of the file "
                          f"({len(data)} bytes): truncated, or not safetensors")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _fail(path, f"the header is not UTF-8 JSON ({error}); is this a "
                          "safetensors file?") from None
    if not isinstance(header, dict):
        raise _fail(path, f"the header is JSON but not an object: "
                          f"{type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    try:
        _check_metadata(metadata, "__metadata__")
    except SafetensorsError as error:
        raise _fail(path, str(error)) from None
    buffer = bytearray(data[8 + n:])
    ### END SOLUTION
    tensors, spans = {}, []
    for name, entry in header.items():
        dtype, shape, begin, end = _entry(path, name, entry)
        # TODO: fail unless 0 <= begin <= end <= len(buffer), and unless end - begin is
        #       the shape's element count times the dtype's item size; then the array is
        #       np.frombuffer(buffer, little-endian dtype, count, offset=begin),
        #       reshaped.
        #       Remember (begin, end, name) in spans.
        ### BEGIN SOLUTION
        if not 0 <= begin <= end <= len(buffer):
            raise _fail(path, f"tensor {name!r}: data_offsets [{begin}, {end}] lie "
                              f"outside the {len(buffer)}-byte data buffer")
        count = math.prod(shape)
        if end - begin != count * dtype.itemsize:
            raise _fail(path, f"tensor {name!r}: shape {shape} of {dtype} needs "
                              f"{count * dtype.itemsize} bytes, data_offsets give "
                              f"{end - begin}")
        little = dtype.newbyteorder("<")
        tensors[name] = np.frombuffer(buffer, little, count, begin).reshape(shape)
        spans.append((begin, end, name))
        ### END SOLUTION
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise _fail(path, f"tensors {first!r} and {second!r} overlap in the data "
                              "buffer")
    return tensors, metadata


def _entry(path, name, entry):
    """(dtype, shape, begin, end) of one header entry, or a one-line SafetensorsError."""
    if not isinstance(entry, dict):
        raise _fail(path, f"tensor {name!r}: its header entry is not an object")
    kind = entry.get("dtype")
    if kind not in DTYPES:
        raise _fail(path, f"tensor {name!r}: unknown dtype {kind!r} (this reader knows "
                          f"{', '.join(DTYPES)})")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
        raise _fail(path, f"tensor {name!r}: shape {shape!r} is not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(o) is int for o in offsets)):
        raise _fail(path, f"tensor {name!r}: data_offsets {offsets!r} is not "
                          "[begin, end]")
    return np.dtype(DTYPES[kind]), tuple(shape), offsets[0], offsets[1]

# %% [markdown]
# ### Test it: a round trip and bad files
#
# Every dtype of the table through a file and back, then the worked example damaged in
# each of the ways above.

# %%
#| test: load_safetensors (4 points)
def test_load_safetensors():
    rng = np.random.default_rng(0)
    tensors = {name: (rng.standard_normal((2, 3)) * 50).astype(kind)
               for name, kind in DTYPES.items()}
    tensors["scalar"] = np.array(3.5, np.float32)
    tensors["empty"] = np.zeros((0, 4), np.float32)
    path = new_folder() / "all.safetensors"
    save_safetensors(tensors, path, {"note": "every dtype"})
    back, metadata = load_safetensors(path)
    assert metadata == {"note": "every dtype"}, f"metadata came back as {metadata}"
    assert set(back) == set(tensors), f"names: {sorted(back)}"
    for name, array in tensors.items():
        got = back[name]
        assert got.dtype == array.dtype and got.shape == array.shape, (
            f"{name}: expected {array.dtype} {array.shape}, got {got.dtype} {got.shape}")
        assert np.array_equal(got, array), f"{name}: the values changed"
    save_safetensors({"b": np.array([1.0, -2.0], np.float32)}, path)
    good = path.read_bytes()                            # the worked example, 72 bytes
    bad = {
        "truncated": good[:5],
        "past the end": good[:40],
        "not UTF-8 JSON": good[:8] + b"{" * 56 + good[64:],
        "unknown dtype": good.replace(b'"F32"', b'"X32"'),
        "needs": good.replace(b"[2]", b"[3]"),
    }
    for problem, data in bad.items():
        path.write_bytes(data)
        try:
            load_safetensors(path)
        except SafetensorsError as error:
            message = str(error)
            assert "\n" not in message and str(path) in message, (
                f"{problem}: the error should be one line naming the file: {message!r}")
        else:
            raise AssertionError(f"a file with {problem} loaded without an error")

test_load_safetensors()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

_p = new_folder() / "bad.safetensors"


def _file(head, buffer):
    padded = _header_bytes(head)
    return len(padded).to_bytes(8, "little") + padded + buffer


_f32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
_cases = {
    "truncated": b"\x01\x02",
    "past the end": (10 ** 9).to_bytes(8, "little") + b"{}",
    "not UTF-8": b"\x08" + bytes(7) + b"\xff\xfe{}    ",
    "not an object": b"\x08" + bytes(7) + b"[1,2]   ",
    "unknown dtype": _file({"b": {**_f32, "dtype": "BF8"}}, bytes(8)),
    "needs": _file({"b": {**_f32, "shape": [1]}}, bytes(8)),
    "outside": _file({"b": {**_f32, "data_offsets": [4, 12]}}, bytes(8)),
    "str": _file({"b": _f32, "__metadata__": {"epochs": 3}}, bytes(8)),
}
for _problem, _data in _cases.items():
    _p.write_bytes(_data)
    assert_raises(SafetensorsError, load_safetensors, _p, match=_problem)
_p.write_bytes(_file({"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 12]}},
                     bytes(12)))
assert_raises(SafetensorsError, load_safetensors, _p,
              match="needs 4 bytes, data_offsets give 8")
# N is all 8 bytes: a high byte set makes it far too long; one byte short is short
_example = _file({"b": _f32}, np.array([1.0, -2.0], "<f4").tobytes())
for _data in (_example[:7] + b"\x01" + _example[8:], _example[:8 + 55]):
    _p.write_bytes(_data)
    assert_raises(SafetensorsError, load_safetensors, _p, match="past the end")
# two tensors whose spans overlap: one byte cannot belong to both
_p.write_bytes(_file({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                      "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}},
                     bytes(6)))
assert_raises(SafetensorsError, load_safetensors, _p, match="overlap")
# offsets relative to the buffer: a header of another length moves nothing
_p.write_bytes(_file({"a": {"dtype": "I16", "shape": [2], "data_offsets": [0, 4]},
                      "__metadata__": {"long": "x" * 37}},
                     np.array([7, -7], "<i2").tobytes()))
_back, _meta = load_safetensors(_p)
assert _back["a"].tolist() == [7, -7] and _meta == {"long": "x" * 37}, (
    "data_offsets count from the first byte after the header")
_back["a"][0] = 1                      # a writable view, not a read-only bytes view
# shapes beyond matrices: a scalar (shape []), an empty tensor, a 4-d non-square one
_odd = {"s": np.array(2.5, np.float32), "e": np.zeros((0, 3), np.int32),
        "w": np.arange(2 * 3 * 1 * 5, dtype=np.float64).reshape(2, 3, 1, 5)}
save_safetensors(_odd, _p)
_back, _ = load_safetensors(_p)
for _k, _v in _odd.items():
    assert _back[_k].shape == _v.shape and _back[_k].dtype == _v.dtype and (
        np.array_equal(_back[_k], _v)), (
        f"{_k}: {_v.dtype} of shape {_v.shape} came back as {_back[_k].dtype} of shape "
        f"{_back[_k].shape}: the shape [] is one element, a 0 in the shape no bytes")
assert isinstance(SafetensorsError("x"), ValueError)
### END HIDDEN TESTS

# %% [markdown]
# ## A model in a file: the architecture in the metadata
#
# Weights alone do not make a model: `0.weight` of shape (16, 1, 3, 3) could be many
# networks. So `export` writes the **architecture** too, as JSON in the metadata key
# `"tinytorch.architecture"`: a GPT's `GPTConfig`, or a `Sequential`'s layers with their
# constructor arguments:
#
# ```
# {"kind": "sequential", "layers": [
#    {"type": "Conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3, ...},
#    {"type": "BatchNorm2d", "num_features": 8, "eps": 1e-05, "momentum": 0.1},
#    {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2, "stride": 2}, ...]}
# ```
#
# `load(path)` builds that model, fills it strictly from the file (a missing, unexpected
# or wrong-shaped name is an error: a half-loaded model computes plausible nonsense), and
# returns it in eval mode. The state includes **buffers** such as BatchNorm's running
# mean and variance: without them the loaded model would normalize with the wrong
# statistics. A tokenizer travels the same way, as JSON in the metadata. This code is
# given: it teaches little beyond "write down every constructor argument".

# %%
#| export
ARCHITECTURE = "tinytorch.architecture"              # the metadata key export writes

# layer type -> the constructor arguments, read back from the layer's attributes
LAYERS = {Linear: ("in_features", "out_features", "bias"),
          Conv2d: ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                   "bias"),
          BatchNorm2d: ("num_features", "eps", "momentum"),
          MaxPool2d: ("kernel_size", "stride"), AvgPool2d: ("kernel_size", "stride"),
          Dropout: ("p",), Flatten: (), ReLU: (), Sigmoid: (), Tanh: (), GELU: ()}
BY_NAME = {kind.__name__: kind for kind in LAYERS}


def _layer_spec(layer):
    if type(layer) is Sequential:
        return {"type": "Sequential", "layers": [_layer_spec(item) for item in layer]}
    if type(layer) not in LAYERS:
        known = ", ".join(sorted(BY_NAME))
        name = type(layer).__name__
        advice = ("; export the float model, the engines quantize it (int8=True)"
                  if name.startswith("Quantized") else "")
        raise TypeError(f"export: {name} is not a layer export knows (a GPT, or a "
                        f"Sequential of {known}){advice}")
    spec = {"type": type(layer).__name__}
    for name in LAYERS[type(layer)]:
        value = getattr(layer, name)
        spec[name] = value is not None if name == "bias" else value
    return spec


def architecture(model):
    """The JSON-able description export writes: a GPT's config, or a Sequential's layers
    with their constructor arguments; a TypeError naming any other layer."""
    if isinstance(model, GPT):
        return {"kind": "gpt", "config": asdict(model.config)}
    if type(model) is not Sequential:
        raise TypeError(f"export: a GPT or a Sequential, got {type(model).__name__}; "
                        "wrap the layers in a Sequential")
    return {"kind": "sequential", "layers": [_layer_spec(layer) for layer in model]}


def _build_layer(spec):
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind == "Sequential":
        return Sequential(*[_build_layer(item) for item in spec["layers"]])
    if kind not in BY_NAME:
        raise ValueError(f"load: the architecture names a layer {kind!r} this tinytorch "
                         "does not have")
    return BY_NAME[kind](**spec)


def build(arch):
    """The model `architecture` describes, freshly initialized."""
    if arch.get("kind") == "gpt":
        return GPT(GPTConfig(**arch["config"]))
    if arch.get("kind") == "sequential":
        return Sequential(*[_build_layer(spec) for spec in arch["layers"]])
    raise ValueError(f"load: unknown architecture kind {arch.get('kind')!r}")


def export(model, path, *, extra=None):
    """Write model's state_dict() (parameters and buffers) and its architecture to `path`
    as safetensors; `extra` ({str: str}) goes into the metadata unchanged."""
    extra = {} if extra is None else dict(extra)
    if ARCHITECTURE in extra:
        raise ValueError(f"export: {ARCHITECTURE!r} is written by export itself; leave "
                         "it out of extra")
    metadata = {ARCHITECTURE: json.dumps(architecture(model)), **extra}
    save_safetensors(model.state_dict(), path, metadata)


def load(path):
    """(model, metadata) from a file `export` wrote: the model built from its
    architecture, every weight and buffer loaded strictly, in eval mode."""
    tensors, metadata = load_safetensors(path)
    if ARCHITECTURE not in metadata:
        raise ValueError(f"{path}: no {ARCHITECTURE!r} in the metadata; load_safetensors "
                         "reads its tensors, export(model, path) writes a loadable model")
    try:
        model = build(json.loads(metadata[ARCHITECTURE]))
    except (TypeError, KeyError, ValueError, AttributeError) as error:
        raise ValueError(f"{path}: the architecture in the metadata cannot be built "
                         f"({error}); export the model again") from None
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path}: the weights do not fit the architecture: missing "
                         f"{missing}, unexpected {unexpected}")
    for name, array in own.items():
        if tensors[name].shape != array.shape:
            raise ValueError(f"{path}: {name!r} has shape {tensors[name].shape} in the "
                             f"file but {array.shape} in the model")
    model.load_state_dict(tensors)
    return model.eval(), metadata


def tokenizer_to_json(tokenizer):
    """Module 11's tokenizer as JSON text for the metadata: a BPETokenizer as its save()
    writes it, a CharTokenizer as its vocabulary."""
    if isinstance(tokenizer, CharTokenizer):
        return json.dumps({"format": "tinytorch.text.CharTokenizer",
                           "chars": tokenizer.chars})
    if isinstance(tokenizer, BPETokenizer):
        return json.dumps({"format": BPE_FORMAT, "version": 1,
                           "pattern": tokenizer.pattern,
                           "merges": [list(pair) for pair in tokenizer.merges]})
    raise TypeError(f"tokenizer_to_json: a CharTokenizer or BPETokenizer, got "
                    f"{type(tokenizer).__name__}")


def tokenizer_from_json(text):
    """The tokenizer tokenizer_to_json wrote (a BPE one checked by BPETokenizer.load)."""
    try:
        content = json.loads(text)
    except (TypeError, json.JSONDecodeError) as error:
        raise ValueError(f"tokenizer_from_json: not JSON ({error})") from None
    kind = content.get("format") if isinstance(content, dict) else None
    if kind == "tinytorch.text.CharTokenizer":
        return CharTokenizer(content.get("chars") or [])
    if kind == BPE_FORMAT:                               # load() reads and checks a file
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "tokenizer.json"
            path.write_text(text, encoding="utf-8")
            try:
                return BPETokenizer.load(path)
            except ValueError as error:
                raise ValueError(str(error).replace(str(path), "the tokenizer JSON")
                                 ) from None
    raise ValueError(f"tokenizer_from_json: format {kind!r} is neither a CharTokenizer "
                     "nor a BPETokenizer; write it with tokenizer_to_json")

# %% [markdown]
# ### Test it: a GPT and a CNN through a file

# %%
#| test: export_load (3 points)
def test_export_load():
    manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8))
    cnn = Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                     Flatten(), Dropout(0.1), Linear(4 * 4 * 4, 3))
    cnn(np.random.default_rng(0).standard_normal((8, 1, 8, 8)))   # running statistics
    tok = CharTokenizer.from_text("hello world")
    for model, x in ((gpt, np.array([[1, 2, 3]])),
                     (cnn, np.random.default_rng(1).standard_normal((2, 1, 8, 8)))):
        path = new_folder() / "model.safetensors"
        export(model, path, extra={"tokenizer": tokenizer_to_json(tok)})
        loaded, metadata = load(path)
        assert type(loaded) is type(model) and not loaded.training, (
            "load returns the model's class, in eval mode")
        model.eval()
        with no_grad():
            want, got = model(x).data, loaded(x).data
        assert np.array_equal(got, want), (
            f"{type(model).__name__}: the loaded model computes something else; are the "
            "buffers (BatchNorm's running statistics) in the file?")
        back = tokenizer_from_json(metadata["tokenizer"])
        assert back.decode(back.encode("hello")) == "hello", "the tokenizer round trip"

test_export_load()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_raises

manual_seed(5)
_m = Sequential(Conv2d(2, 3, 3, stride=2, bias=False), BatchNorm2d(3, eps=0.01), ReLU(),
                MaxPool2d(2, stride=1), Flatten(), Linear(3 * 2 * 2, 2))
_m(np.random.default_rng(3).standard_normal((4, 2, 7, 7)) * 3)
_path = new_folder() / "m.safetensors"
export(_m, _path, extra={"task": "vision"})
_tensors, _meta = load_safetensors(_path)
assert set(_tensors) == set(_m.state_dict()) and "1.running_var" in _tensors, (
    "export writes the state_dict: parameters and buffers")
assert _meta["task"] == "vision", "extra goes into the metadata unchanged"
assert json.loads(_meta[ARCHITECTURE])["kind"] == "sequential"
_l, _ = load(_path)
assert _l[0].bias is None and _l[0].stride == 2 and _l[1].eps == 0.01, (
    "every constructor argument comes back")
_x = np.random.default_rng(4).standard_normal((3, 2, 7, 7))
with no_grad():
    assert np.array_equal(_l(_x).data, _m.eval()(_x).data), "the loaded CNN's outputs"
save_safetensors({k: v for k, v in _tensors.items() if k != "0.weight"}, _path, _meta)
assert_raises(ValueError, load, _path, match="missing")
save_safetensors({**_tensors, "5.bias": np.zeros(3, np.float32)}, _path, _meta)
assert_raises(ValueError, load, _path, match="shape")
assert_raises(TypeError, export, Sequential(Linear(2, 2), GPT(GPTConfig(3, 2, 1, 1, 2))),
              _path, match="GPT")
### END HIDDEN TESTS

# %% [markdown]
# ## What inference does not need
#
# Module 16's `prefill` and `decode_step` already run a GPT on the Parameters' arrays
# without building a graph. An engine goes one step further and keeps **only** arrays:
# the weights copied out once (optionally as int8), the KV cache, and the state of each
# request. Training code carries four things inference does without:
#
# - the **graph** and the Tensor wrappers: every op records its parents for backward;
# - **dropout**: in eval mode the identity, so it disappears;
# - **BatchNorm's batch statistics**: in eval mode a fixed per-channel scale and shift,
#   which folds into the convolution before it (below);
# - the optimizer's state, the gradients, the training loop.
#
# ## Many requests at once: slots
#
# A server gets requests at any time, with prompts of any length. Generating one request
# at a time leaves most of each matrix product idle: one row of activations against a
# whole weight matrix. Decoding B requests together costs little more than one, because
# the weights are read once for all B rows.
#
# The engine's KV cache (module 16's layout) has `max_batch` **slots**, one per request.
# `open(prompt)` prefills the prompt alone into a free slot. Then every `step()` decodes
# one token for **every** open slot in one batched forward. A request that finishes is
# `close`d and its slot taken by the next: requests join and leave between steps
# (continuous batching), instead of a batch waiting for its slowest member.
#
# The catch: the slots sit at **different positions**. After prompts of 5 and 2 tokens,
# slot 0's next token is at position 5, slot 1's at position 2:
#
# ```
# slot 0  k k k k k  .  .  .        positions 0..4 cached, the new token at 5
# slot 1  k k  .  .  .  .  .  .     positions 0..1 cached, the new token at 2
#         the new tokens: position rows [5, 2] of the table, keys they may read:
#         slot 0: 0..5     slot 1: 0..2 (not 3..5: stale keys of a closed request,
#                                         or zeros, are not this request's)
# ```
#
# So one step takes a position **per slot** (its row of the position table and where its
# key is written) and a mask **per slot**: `allowed[b, j] = j <= position[b]`.
#
# **int8 weights.** With `int8=True` every matrix is stored as module 17's per-channel
# int8 codes and float scales, 4× fewer bytes. When to turn them back into floats?
# Once, when the engine starts, is simplest, but then the engine holds float32 weights
# again and int8 saved nothing in memory. So this engine keeps the codes and dequantizes
# **per use**, cheaply: with one scale per output column, `x @ (q · s) = (x @ q) · s`, so
# the product runs on the codes (cast for the call) and the scales multiply the outputs
# (B × out numbers), not the weights (in × out). The embedding tables dequantize only the
# rows a step reads. The price is the cast at every product: the end of the module
# measures it.

# %%
#| export
class _Dense:
    """A weight matrix (in, out) and a bias for x @ w + b, kept float32, or as int8
    codes with one scale per output column: x @ (q * s) = (x @ q) * s, so the product
    runs on the codes (cast for the call) and the scales multiply the outputs only."""

    def __init__(self, weight, bias=None, int8=False):
        weight = np.asarray(weight, np.float32)
        self.bias = None if bias is None else _stored(bias, int8)
        if int8:
            qt = quantize(weight, per_channel=True, axis=1)      # module 17, per column
            self.q, self.scale = qt.q, qt.scale.astype(np.float32)
            self.weight = None
        else:
            self.q, self.scale, self.weight = None, None, weight

    def __call__(self, x):
        if self.weight is not None:
            out = x @ self.weight
        else:
            out = (x @ self.q.astype(np.float32)) * self.scale
        return out if self.bias is None else out + self.bias

    @property
    def nbytes(self):
        arrays = (self.weight, self.q, self.scale, self.bias)
        return sum(a.nbytes for a in arrays if a is not None)


class _Table:
    """An embedding table (rows, D), float32 or int8 with one scale per row: a lookup
    dequantizes only the rows it reads."""

    def __init__(self, weight, int8=False):
        weight = np.asarray(weight, np.float32)
        if int8:
            qt = quantize(weight, per_channel=True, axis=0)
            self.q, self.scale, self.weight = qt.q, qt.scale.astype(np.float32), None
        else:
            self.q, self.scale, self.weight = None, None, weight

    def __getitem__(self, rows):
        if self.weight is not None:
            return self.weight[rows]
        return self.q[rows].astype(np.float32) * self.scale[rows][..., None]

    def as_head(self):
        """The tied head x @ table.T, sharing the table's arrays."""
        head = _Dense.__new__(_Dense)
        head.bias = None
        if self.weight is not None:
            head.q, head.scale, head.weight = None, None, self.weight.T
        else:
            head.q, head.scale, head.weight = self.q.T, self.scale, None
        return head

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self.weight, self.q, self.scale) if a is not None)


def _stored(param, int8):
    """A bias or norm parameter as float32; with int8 through float16, as module 17's
    quantize_model stores what it does not quantize."""
    array = param.data if isinstance(param, Tensor) else np.asarray(param)
    return (array.astype(np.float16) if int8 else array).astype(np.float32)


def _norm(x, weight, bias, eps):
    """LayerNorm over the last axis, on arrays (module 14's arithmetic)."""
    centered = x - x.mean(axis=-1, keepdims=True)
    variance = (centered * centered).mean(axis=-1, keepdims=True)
    return centered / np.sqrt(variance + eps) * weight + bias


def _gelu(x):
    c, a = math.sqrt(2 / math.pi), 0.044715
    return 0.5 * x * (1 + np.tanh(c * (x + a * x * x * x)))


class EngineFull(RuntimeError):
    """Every slot of the engine is taken: step() until a request finishes, or wait."""


class _Slot:
    """One request: its tokens so far, its cached length, the logits of its next token
    and how it samples."""

    def __init__(self, ids, temperature, top_k, seed):
        self.ids = list(ids)
        self.length = 0
        self.logits = None
        self.temperature, self.top_k = float(temperature), top_k
        self.generator = default_generator() if seed is None else (
            np.random.default_rng(seed))


class LanguageEngine:
    """A lean inference engine for module 14's GPT: the weights as arrays (int8 per
    channel with int8=True, module 17), one KV cache of `max_batch` slots (module 16's
    layout), no Tensor and no graph. `generate` for whole prompts; `open`, `step` and
    `close` for a server that batches requests as they come."""

    def __init__(self, model, *, int8=False, max_batch=8):
        if not isinstance(model, GPT):
            raise TypeError(f"LanguageEngine runs module 14's GPT, got "
                            f"{type(model).__name__}")
        if int(max_batch) < 1:
            raise ValueError(f"LanguageEngine: max_batch must be 1 or more, got "
                             f"{max_batch}")
        c = model.config
        self.config, self.int8, self.max_batch = c, bool(int8), int(max_batch)
        self.block_size, self.vocab_size = c.block_size, c.vocab_size
        self.n_head, self.head_size = c.n_head, c.n_embd // c.n_head
        self.tok = _Table(model.tok_emb.weight.data, int8)
        self.pos = _Table(model.pos_emb.weight.data, int8)
        self.blocks = [self._block(block, int8) for block in model.blocks]
        f = model.ln_f
        self.ln_f = (_stored(f.weight, int8), _stored(f.bias, int8), f.eps)
        self.tied = model.head is None
        self.head = (self.tok.as_head() if self.tied
                     else _Dense(model.head.weight.data, None, int8))
        self.cache = KVCache(c.n_layer, self.max_batch, c.n_head, c.block_size,
                             self.head_size)
        self.slots = {}                                  # slot id -> _Slot

    @staticmethod
    def _block(block, int8):
        a, m = block.attn, block.mlp

        def dense(layer):
            return _Dense(layer.weight.data, layer.bias, int8)

        def norm(ln):
            return _stored(ln.weight, int8), _stored(ln.bias, int8), ln.eps

        qkv = np.concatenate([a.q_proj.weight.data, a.k_proj.weight.data,
                              a.v_proj.weight.data], axis=1)       # (D, 3D): one product
        biases = [p.bias for p in (a.q_proj, a.k_proj, a.v_proj)]
        qkv_bias = None if biases[0] is None else np.concatenate(
            [b.data for b in biases])
        return {"ln1": norm(block.ln1), "qkv": _Dense(qkv, qkv_bias, int8),
                "out": dense(a.out_proj), "ln2": norm(block.ln2),
                "fc": dense(m.fc), "proj": dense(m.proj)}

    @property
    def free_slots(self):
        return self.max_batch - len(self.slots)

    @property
    def nbytes(self):
        """The bytes of the weights the engine keeps (not the cache)."""
        total = self.tok.nbytes + self.pos.nbytes + sum(a.nbytes for a in self.ln_f[:2])
        total += 0 if self.tied else self.head.nbytes
        for b in self.blocks:
            total += sum(b[k].nbytes for k in ("qkv", "out", "fc", "proj"))
            total += sum(a.nbytes for k in ("ln1", "ln2") for a in b[k][:2])
        return int(total)

    def forward(self, ids, starts, slots):
        """ids (B, t) of the given cache `slots` (B,), whose first new token sits at
        position starts[b]: writes their keys and values into those slots at positions
        starts[b] .. starts[b] + t - 1 and returns the last position's logits (B, V)."""
        ids, starts, slots = np.asarray(ids), np.asarray(starts), np.asarray(slots)
        batch, t = ids.shape
        heads, hs = self.n_head, self.head_size
        # TODO: positions (B, t) = starts[:, None] + arange(t); x = the token rows plus
        #       each row's own position rows. For every layer: q, k, v from ln1(x) and
        #       the "qkv" _Dense, split into heads (B, H, t, hs); write k and v into
        #       cache.keys/values[layer, slots[:, None], :, positions]; attend over the
        #       first `end` = max(starts) + t cached positions of those slots with
        #       allowed[b, i, j] = j <= positions[b, i]; "out", the residual, the MLP.
        ### BEGIN SOLUTION
        positions = starts[:, None] + np.arange(t)                    # (B, t)
        end = int(positions.max()) + 1
        allowed = np.arange(end) <= positions[:, None, :, None]       # (B, 1, t, end)
        x = self.tok[ids] + self.pos[positions]                       # (B, t, D)
        for layer, b in enumerate(self.blocks):
            qkv = b["qkv"](_norm(x, *b["ln1"]))                       # (B, t, 3D)
            q, k, v = qkv.reshape(batch, t, 3, heads, hs).transpose(2, 0, 3, 1, 4)
            where = (layer, slots[:, None], slice(None), positions)   # (B, t, H, hs)
            self.cache.keys[where] = k.transpose(0, 2, 1, 3)
            self.cache.values[where] = v.transpose(0, 2, 1, 3)
            keys = self.cache.keys[layer, slots, :, :end]             # (B, H, end, hs)
            values = self.cache.values[layer, slots, :, :end]
            scores = q @ keys.swapaxes(-1, -2) / math.sqrt(hs)        # (B, H, t, end)
            weights = masked_softmax(scores, allowed)
            out = (weights @ values).transpose(0, 2, 1, 3)            # (B, t, H, hs)
            x = x + b["out"](out.reshape(batch, t, heads * hs))
            x = x + b["proj"](_gelu(b["fc"](_norm(x, *b["ln2"]))))
        ### END SOLUTION
        last = _norm(x[:, -1], *self.ln_f)                            # (B, D)
        return self.head(last)                                        # (B, V)

    # ---- the slots: bookkeeping, given ----------------------------------------------
    def open(self, prompt, *, temperature=0.0, top_k=None, seed=None):
        """Prefill `prompt` (a list of ids) alone into a free slot; returns the slot id.
        EngineFull when every slot is taken."""
        ids = [int(i) for i in prompt]
        if not ids or not all(0 <= i < self.vocab_size for i in ids):
            raise ValueError(f"LanguageEngine.open: a prompt is a non-empty list of ids "
                             f"in 0 .. {self.vocab_size - 1}, got {prompt!r:.80}")
        if not temperature >= 0 or (top_k is not None and int(top_k) < 1):
            raise ValueError(f"LanguageEngine.open: temperature >= 0 (0 is greedy) and "
                             f"top_k >= 1 or None, got {temperature}, {top_k}")
        if not self.free_slots:
            raise EngineFull(f"all {self.max_batch} slots are taken: step() until a "
                             "request finishes, then close() it")
        slot = min(set(range(self.max_batch)) - set(self.slots))
        self.slots[slot] = _Slot(ids, temperature, top_k, seed)
        self._prefill(slot)
        return slot

    def _prefill(self, slot):
        """The slot's last block_size tokens through the model from position 0."""
        s = self.slots[slot]
        window = s.ids[-self.block_size:]
        s.logits = self.forward(np.array([window]), np.array([0]), np.array([slot]))[0]
        s.length = len(window)

    def step(self):
        """One token for every open slot: drawn from its logits, then all the new tokens
        through the model in one batched forward. Returns {slot: token id}."""
        chosen = {}
        for slot, s in self.slots.items():
            if s.temperature == 0:
                chosen[slot] = int(np.argmax(s.logits))
            else:
                draw = _draw(s.logits[None], s.temperature, s.top_k, s.generator)
                chosen[slot] = int(draw[0])
            s.ids.append(chosen[slot])
        # a full slot starts again from the last block_size tokens (module 16's crop)
        full = [slot for slot, s in self.slots.items() if s.length == self.block_size]
        for slot in full:
            self._prefill(slot)
        going = sorted(slot for slot in self.slots if slot not in full)
        if going:
            ids = np.array([[chosen[slot]] for slot in going])              # (B, 1)
            starts = np.array([self.slots[slot].length for slot in going])  # (B,)
            logits = self.forward(ids, starts, np.array(going))             # (B, V)
            for row, slot in enumerate(going):
                self.slots[slot].logits = logits[row]
                self.slots[slot].length += 1
        return chosen

    def logits(self, slot):
        """The logits (V,) the slot's next token will be drawn from."""
        return self.slots[slot].logits

    def close(self, slot):
        """Free the slot: its cached keys stay in memory, masked out for the next
        request by its own length."""
        if slot not in self.slots:
            raise KeyError(f"LanguageEngine.close: slot {slot!r} is not open")
        del self.slots[slot]

    def generate(self, prompts, max_new_tokens, *, temperature=0.0, top_k=None,
                 seed=None):
        """The max_new_tokens new tokens of every prompt (a list of id lists), up to
        max_batch at a time, the next prompt joining as one finishes. With a seed, each
        prompt samples as it would alone with that seed."""
        if int(max_new_tokens) < 0:
            raise ValueError(f"generate: max_new_tokens must be 0 or more, got "
                             f"{max_new_tokens}")
        if self.slots:
            raise RuntimeError("generate needs every slot free; close the open ones")
        out = [[] for _ in prompts]
        if int(max_new_tokens) == 0:
            return out
        waiting, owner = list(range(len(prompts))), {}
        try:
            while waiting or owner:
                while waiting and self.free_slots:
                    index = waiting.pop(0)
                    slot = self.open(prompts[index], temperature=temperature,
                                     top_k=top_k, seed=seed)
                    owner[slot] = index
                for slot, token in self.step().items():
                    out[owner[slot]].append(token)
                    if len(out[owner[slot]]) == int(max_new_tokens):
                        self.close(slot)
                        del owner[slot]
        finally:
            for slot in list(owner):
                self.close(slot)
        return out

# %% [markdown]
# ### Test it: the engine against module 14

# %%
#| test: language_engine (4 points)
def test_language_engine():
    manual_seed(3)
    gpt = GPT(GPTConfig(vocab_size=13, block_size=12, n_layer=2, n_head=2, n_embd=8))
    for p in gpt.parameters():
        p.data = p.data * 2                             # sharper logits
    engine = LanguageEngine(gpt, max_batch=3)
    slot = engine.open([1, 2, 3, 4])                    # one request alone
    with no_grad():
        want = gpt(np.array([[1, 2, 3, 4]])).data[0, -1]
    assert np.abs(engine.logits(slot) - want).max() < 1e-5, (
        "after open(prompt), the slot's logits should be the model's at the prompt's "
        "last position")
    engine.close(slot)
    prompts = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]         # three at once, the same length
    got = engine.generate(prompts, 6)
    for prompt, tokens in zip(prompts, got):
        want = gpt.generate(np.array([prompt]), 6, top_k=1)[0, len(prompt):].tolist()
        assert tokens == want, (
            f"prompt {prompt}: the engine wrote {tokens}, module 14 writes {want}. Are "
            "the keys written into each request's own slot, at its positions?")

test_language_engine()
### BEGIN HIDDEN TESTS
from tinytorch.testing import assert_close, assert_raises

manual_seed(7)
_g = GPT(GPTConfig(vocab_size=13, block_size=9, n_layer=2, n_head=2, n_embd=8))
for _p in _g.parameters():
    _p.data = _p.data * 2.5


def _alone(prompt, n):
    return _g.generate(np.array([prompt]), n, top_k=1)[0, len(prompt):].tolist()


# prompts of different lengths batched: every slot at its own position, its own length
_prompts = [[1, 2, 3, 4, 5, 6], [7], [8, 9, 10]]
_e = LanguageEngine(_g, max_batch=3)
for _prompt, _tokens in zip(_prompts, _e.generate(_prompts, 5)):
    assert _tokens == _alone(_prompt, 5), (
        f"prompt {_prompt} batched with prompts of other lengths: the engine wrote "
        f"{_tokens}, module 14 alone {_alone(_prompt, 5)}. Each slot needs its own "
        "positions (starts[b] + i) and its own mask (j <= positions[b, i])")
# the logits at every step, for both slots of a batch, against module 14's forward
_e = LanguageEngine(_g, max_batch=2)
_ids = {_e.open([3, 1, 4, 1, 5]): [3, 1, 4, 1, 5], _e.open([9, 2]): [9, 2]}
for _ in range(3):
    for _slot, _token in _e.step().items():
        _ids[_slot].append(_token)
        with no_grad():
            _want = _g(np.array([_ids[_slot]])).data[0, -1]
        assert_close(_e.logits(_slot), _want, rtol=1e-5, atol=1e-5,
                     what=f"slot {_slot}'s logits after {len(_ids[_slot])} tokens")
# a long request leaves; a short one takes its slot, whose cache still holds old keys
_e = LanguageEngine(_g, max_batch=2)
_a, _b = _e.open([1, 2, 3, 4, 5, 6, 7]), _e.open([8])
_out = {_a: [], _b: []}
for _ in range(2):
    for _slot, _token in _e.step().items():
        _out[_slot].append(_token)
_e.close(_a)
_c = _e.open([11, 12])
_out[_c] = []
for _ in range(4):
    for _slot, _token in _e.step().items():
        _out[_slot].append(_token)
assert _c == _a and _out[_c] == _alone([11, 12], 4), (
    f"a request in a reused slot wrote {_out[_c]}, alone it writes "
    f"{_alone([11, 12], 4)}: the slot's old keys past its own length must be masked")
assert _out[_b] == _alone([8], 6), "the other request goes on unchanged"
# past block_size, as module 16: the slot starts again from its last block_size tokens
_e = LanguageEngine(_g, max_batch=2)
assert _e.generate([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [4]], 12) == [
    _alone([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 12), _alone([4], 12)], (
    "past block_size the engine must crop as module 16 (and module 14) do")
_full = LanguageEngine(_g, max_batch=1)
_full.open([1])
assert_raises(EngineFull, _full.open, [2])
### END HIDDEN TESTS

# %% [markdown]
# ## BatchNorm folded into the convolution
#
# In eval mode BatchNorm2d is per channel c: `y = γ·(x − μ)/√(σ² + ε) + β`, a scale
# `s = γ/√(σ² + ε)` and a shift. When x is a convolution's output, `x = W∗a + b`:
#
# ```
# y = s·(W∗a + b − μ) + β = (s·W)∗a + (s·(b − μ) + β)
# ```
#
# So the pair becomes one convolution with `W' = s·W` (each output channel's kernel
# scaled) and `b' = s·(b − μ) + β`: one layer fewer, the same output. The ε matters: it is
# what the model was trained with.

# %%
#| export
def fold_batchnorm(weight, bias, bn):
    """The (weight, bias) of one convolution equal to Conv2d(weight, bias) followed by
    the eval-mode BatchNorm2d `bn`; bias None counts as 0."""
    weight = np.asarray(weight, np.float32)
    bias = np.zeros(weight.shape[0], np.float32) if bias is None else np.asarray(bias)
    # TODO: s = gamma / sqrt(running_var + eps) per output channel; the new weight is
    #       weight * s on the output-channel axis, the new bias s * (bias - running_mean)
    #       + beta.
    ### BEGIN SOLUTION
    scale = bn.weight.data / np.sqrt(bn.running_var + bn.eps)               # (C,)
    folded = weight * scale.reshape(-1, *[1] * (weight.ndim - 1))
    shifted = scale * (bias - bn.running_mean) + bn.bias.data
    ### END SOLUTION
    return folded.astype(np.float32), shifted.astype(np.float32)


def _windows(x, k, stride):
    """K x K windows of channels-last x (N, H, W, C): (N, Ho, Wo, C, K, K)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    return windows[:, ::stride, ::stride]


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {ReLU: lambda x: np.maximum(x, 0), Tanh: np.tanh, GELU: _gelu,
               Sigmoid: lambda x: 0.5 * (1 + np.tanh(0.5 * x))}


def _flat(layers):
    for layer in layers:
        if type(layer) is Sequential:
            yield from _flat(layer)
        else:
            yield layer


class VisionEngine:
    """A lean classifier engine for a Sequential CNN or MLP (modules 04 and 09 layers):
    weights as arrays, BatchNorm folded into the convolution before it, convolutions by
    module 15's kernels on channels-last images (Winograd where accelerate uses it, else
    im2col; int8 weights always by im2col), no graph."""

    def __init__(self, model, *, int8=False):
        architecture(model)                  # a TypeError naming an unknown layer
        self.int8 = bool(int8)
        layers = [layer for layer in _flat(model) if type(layer) is not Dropout]
        self.ops, self.input_shape = [], _input_shape(layers)
        i = 0
        while i < len(layers):
            layer = layers[i]
            after = layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(layer, Conv2d):
                w, b = layer.weight.data, None if layer.bias is None else layer.bias.data
                if isinstance(after, BatchNorm2d):           # folded: one layer fewer
                    w, b = fold_batchnorm(w, b, after)
                    i += 1
                self.ops.append(self._conv(layer, w, b))
            elif isinstance(layer, BatchNorm2d):             # no convolution before it
                w, b = fold_batchnorm(np.ones((layer.num_features, 1)), None, layer)
                self.ops.append(lambda x, s=w[:, 0], t=b: x * s + t)
            elif isinstance(layer, Linear):
                bias = None if layer.bias is None else layer.bias.data
                self.ops.append(_Dense(layer.weight.data, bias, self.int8))
            elif isinstance(layer, (MaxPool2d, AvgPool2d)):
                reduce = np.max if type(layer) is MaxPool2d else np.mean
                self.ops.append(lambda x, k=layer.kernel_size, s=layer.stride, r=reduce:
                                r(_windows(x, k, s), axis=(-2, -1)))
            elif isinstance(layer, Flatten):                 # back to (C, H, W) order
                self.ops.append(lambda x: x.transpose(0, 3, 1, 2).reshape(len(x), -1)
                                if x.ndim == 4 else x.reshape(len(x), -1))
            else:
                self.ops.append(ACTIVATIONS[type(layer)])
            i += 1

    def _conv(self, layer, weight, bias):
        weight, (c_out, _, k, _) = np.asarray(weight, np.float32), weight.shape
        kernels = _Dense(weight.transpose(2, 3, 1, 0).reshape(-1, c_out), bias, self.int8)
        # float32 weights: Winograd's kernels too, for the sizes where module 15 uses them
        winograd = None if self.int8 else acceleration.winograd_kernels(weight)

        def conv(x):                                         # (N, H, W, C) channels-last
            if winograd is not None and acceleration.winograd_pays(layer, *x.shape[1:3]):
                out = acceleration.winograd_conv_last(x, winograd)[0]   # (N, H, W, C_out)
                if bias is not None:
                    out += kernels.bias
                return out
            patches = acceleration.im2col(x, k, layer.stride, layer.padding)
            return kernels(patches)                  # (N, Ho, Wo, K*K*C) -> (.., C_out)
        return conv

    def logits(self, images):
        """The model's outputs (N, classes) for images (N, *input_shape), float32."""
        x = np.asarray(images, np.float32)
        want = self.input_shape
        if x.ndim < 2 or (len(want) == 3 and (x.ndim != 4 or x.shape[1] != want[0])):
            raise ValueError(f"VisionEngine: images of shape (N, *{want}) expected, got "
                             f"{x.shape}")
        if x.ndim == 4:
            x = x.transpose(0, 2, 3, 1)                      # (N, H, W, C) channels-last
        for op in self.ops:
            x = op(x)
        return x.astype(np.float32)

    def predict_proba(self, images):
        """Softmax probabilities (N, classes), float32."""
        return _softmax(self.logits(images)).astype(np.float32)


def _input_shape(layers):
    """(C, H, W) for a CNN: the smallest square image whose features reach the first
    Linear after Flatten; (features,) for an MLP."""
    first = layers[0]
    if isinstance(first, Linear):
        return (first.in_features,)
    conv = next((layer for layer in layers if isinstance(layer, Conv2d)), None)
    linear = next((layer for layer in layers if isinstance(layer, Linear)), None)
    if conv is None:
        return (linear.in_features,) if linear is not None else ()
    for size in range(1, 1025):
        channels, side = conv.in_channels, size
        for layer in layers:
            if isinstance(layer, Linear):
                if channels * side * side == layer.in_features:
                    return (conv.in_channels, size, size)
                break
            if isinstance(layer, Conv2d):
                side = (side + 2 * layer.padding - layer.kernel_size) // layer.stride + 1
                channels = layer.out_channels
            elif isinstance(layer, (MaxPool2d, AvgPool2d)):
                side = (side - layer.kernel_size) // layer.stride + 1
        else:
            return (conv.in_channels, None, None)
    return (conv.in_channels, None, None)

# %% [markdown]
# ### Test it: the folded CNN

# %%
#| test: vision_engine (3 points)
def test_vision_engine():
    manual_seed(4)
    cnn = Sequential(Conv2d(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(4 * 4 * 4, 3))
    rng = np.random.default_rng(2)
    cnn(rng.standard_normal((16, 1, 8, 8)))             # running statistics move
    cnn.eval()
    images = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    with no_grad():
        logits = cnn(images).data
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    engine = VisionEngine(cnn)
    got = engine.predict_proba(images)
    assert engine.input_shape == (1, 8, 8), f"input_shape {engine.input_shape}"
    assert got.shape == (5, 3) and np.abs(got - want).max() < 1e-5, (
        f"the engine's probabilities differ from the model's by "
        f"{np.abs(got - want).max():.2g}: check fold_batchnorm's algebra")

test_vision_engine()
### BEGIN HIDDEN TESTS
from tinytorch.core.tensor import Tensor
from tinytorch.testing import assert_close, assert_untouched

# a BatchNorm trained with a large eps, small variances, a convolution without bias
manual_seed(6)
_conv, _bn = Conv2d(2, 3, 3, stride=2, padding=1, bias=False), BatchNorm2d(3, eps=0.1)
_r = np.random.default_rng(8)
_bn.running_mean = _r.standard_normal(3).astype(np.float32)
_bn.running_var = _r.uniform(0.01, 0.2, 3).astype(np.float32)
_bn.weight.data = _r.uniform(0.5, 2, 3).astype(np.float32)
_bn.bias.data = _r.standard_normal(3).astype(np.float32)
_x = Tensor(_r.standard_normal((2, 2, 6, 6)).astype(np.float32))
with no_grad():
    _want = _bn.eval()(_conv(_x)).data
_w, _b = fold_batchnorm(_conv.weight.data, None, _bn)
_folded = Conv2d(2, 3, 3, stride=2, padding=1)
_folded.weight.data, _folded.bias.data = _w, _b
with no_grad():
    assert_close(_folded(_x), _want, rtol=1e-4, atol=1e-5,
                 what="the folded convolution (eps 0.1, no bias) against conv and "
                      "BatchNorm")
_biased = Conv2d(2, 3, 3, stride=2, padding=1)
_biased.bias.data = _r.standard_normal(3).astype(np.float32)
with no_grad():
    _want = _bn(_biased(_x)).data
_w, _b = assert_untouched(fold_batchnorm, _biased.weight.data, _biased.bias.data, _bn,
                          no_view=True)
assert _w.dtype == _b.dtype == np.float32, f"float32 out, got {_w.dtype} and {_b.dtype}"
_folded.weight.data, _folded.bias.data = _w, _b
with no_grad():
    assert_close(_folded(_x), _want, rtol=1e-4, atol=1e-5,
                 what="the folded convolution with a bias: s * (bias - mean) + beta")
_cnn = Sequential(_conv, _bn, ReLU(), Flatten(), Linear(3 * 3 * 3, 4))
with no_grad():
    _logits = _cnn.eval()(_x).data
_p = np.exp(_logits - _logits.max(1, keepdims=True))
_probs = VisionEngine(_cnn).predict_proba(_x.data)
assert _probs.dtype == np.float32, f"probabilities in float32, got {_probs.dtype}"
assert_close(_probs, _p / _p.sum(1, keepdims=True),
             rtol=1e-4, atol=1e-5, what="the engine's probabilities (BatchNorm eps 0.1)")
### END HIDDEN TESTS

# %% [markdown]
# ## Everything together: train, ship, serve
#
# The whole path once, on module 14's one-line model: train it for a second, export it
# with its tokenizer, then, as another process would, `load` the file alone and answer
# three requests of different lengths in one batch.

# %%
from tinytorch.core.optimizers import AdamW
from tinytorch.models.transformer import next_token_loss, random_windows

line = "to be, or not to be, that is the question. "
tokenizer = CharTokenizer.from_text(line)
data = np.array(tokenizer.encode(line * 20))
manual_seed(0)
config = GPTConfig(tokenizer.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=32)
model = GPT(config)
optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
rng = np.random.default_rng(0)
for _ in range(60):
    x, y = random_windows(data, 16, 16, rng)                      # (16, 16) windows
    loss = next_token_loss(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"trained: loss {loss.item():.3f}")

path = new_folder() / "language.safetensors"
export(model, path, extra={"task": "language", "tokenizer": tokenizer_to_json(tokenizer)})
print(f"{path.name}: {path.stat().st_size:,} bytes")
print(load_safetensors(path)[1][ARCHITECTURE])

served, metadata = load(path)                          # what a server starts from
tok = tokenizer_from_json(metadata["tokenizer"])
engine = LanguageEngine(served, max_batch=4)
requests = ["to be", "th", "not to "]
for prompt, ids in zip(requests, engine.generate([tok.encode(r) for r in requests], 30)):
    print(f"{prompt!r:10} -> {tok.decode(ids)!r}")

# %% [markdown]
# ### Measure it: batching, and int8's memory against its time
#
# On the `gpt` milestone's model size (untrained: speed does not depend on the weights):
# module 14's `generate` for one stream, then the engine for 1, 4 and 8 streams at once,
# float32 and int8. Each figure is module 19's `measure`: the median of three runs after
# a warm-up (so few runs that its interval would be wide). The machine is shared: read
# the ratios, not the digits.

# %%
def median_seconds(fn, repeats=3):
    """Module 19's median time of fn(), after one warm-up call."""
    return measure(fn, warmup=1, repeats=repeats).median


manual_seed(1)
gpt = GPT(GPTConfig(vocab_size=76, block_size=64, n_layer=2, n_head=4, n_embd=64))
new = 32
plain = median_seconds(lambda: gpt.generate(np.array([[5]]), new, top_k=1), repeats=1)
print(f"module 14 generate, 1 stream: {new / plain:6.0f} tokens/s")
for int8 in (False, True):
    lean = LanguageEngine(gpt, int8=int8, max_batch=8)
    for streams in (1, 4, 8):
        seconds = median_seconds(lambda e=lean, n=streams: e.generate([[5]] * n, new))
        print(f"engine {'int8' if int8 else 'float32'}, {streams} stream(s): "
              f"{streams * new / seconds:6.0f} tokens/s")
    print(f"  weights held: {lean.nbytes:,} bytes; KV cache: {lean.cache.nbytes:,} bytes")

# %% [markdown]
# Three effects, in order of size. The engine beats module 14's `generate` many times
# over: the cache (module 16) and no Tensor bookkeeping. Batching multiplies the tokens
# per second: eight streams share each read of the weights, so a step costs little more
# than one stream's. And int8 holds the weights in about a quarter of the bytes but is
# not faster here: NumPy has no int8 matrix product, so each product first casts the
# codes to float32. Its win is memory (more models, or larger ones, per machine); a
# kernel that multiplies int8 directly would win time too.
#
# ## What you built
#
# - `save_safetensors` and `load_safetensors`: the ecosystem's format in NumPy, with a
#   one-line error for every kind of damaged file.
# - `export` and `load`: a model and its architecture (and tokenizer) in one file that
#   rebuilds it strictly.
# - `LanguageEngine`: module 14's GPT as arrays, module 16's cache in slots, one batched
#   step with a position and a mask per slot, optional int8 weights (module 17).
# - `fold_batchnorm` and `VisionEngine`: a CNN without its training machinery, on module
#   15's kernels (Winograd where `accelerate` uses it, im2col elsewhere).
#
# The other pieces of the capstone stand on these: `tito capstone serve` answers HTTP
# requests with your engines (the page streams a GPT's text and classifies a drawn
# digit), and `tito milestone capstone` measures a track end to end.
