"""Module 20's files in the ecosystem: the `safetensors` library (its NumPy and torch
readers) reads what save_safetensors and export write (names, dtypes, shapes, values and
metadata), load_safetensors reads what the library writes, and PyTorch twins of the gpt
milestone's GPT and of the cnn and cifar10 milestones' CNNs, loaded from the exported file
with safetensors.torch.load_file and load_state_dict, give the logits of the tinytorch
model and of module 20's engines (1e-5)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors
import torch
from safetensors.numpy import load_file as np_load_file
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import load_file as torch_load_file

from benchmarks.gpt_twin import torch_gpt_twin
from benchmarks.models import cifar10_model, digits_cnn_model, torch_twin
from tinytorch.capstone import (
    DTYPES,
    LanguageEngine,
    VisionEngine,
    export,
    load,
    load_safetensors,
    save_safetensors,
)
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, manual_seed
from tinytorch.core.spatial import BatchNorm2d
from tinytorch.models.transformer import GPT, GPTConfig

GPT_MILESTONE = GPTConfig(vocab_size=76, block_size=64, n_layer=2, n_head=4, n_embd=64)


def linear_weight_names(model) -> set[str]:
    """The state names of the tinytorch Linear weights: (in, out) here, (out, in) in torch."""
    names, queue = set(), [("", model)]
    while queue:
        prefix, module = queue.pop()
        if isinstance(module, Linear):
            names.add(prefix + "weight")
        queue += [(f"{prefix}{name}.", child) for name, child in module._modules.items()]
    return names


def load_into_twin(twin, path, model):
    """The file's tensors through safetensors.torch into the twin (Linear weights
    transposed), strictly but for the counter torch's BatchNorm keeps and tinytorch does not."""
    state = torch_load_file(str(path))
    for name in linear_weight_names(model):
        state[name] = state[name].T.contiguous()
    with torch.no_grad():
        for param in twin.parameters():
            param.zero_()                                     # only the file can set them
    missing, unexpected = twin.load_state_dict(state, strict=False)
    assert not unexpected and all(name.endswith("num_batches_tracked") for name in missing), (missing, unexpected)
    return twin.eval()


def test_the_library_reads_the_students_file(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"t.{name}": (rng.standard_normal((3, 2, 2)) * 40).astype(kind) for name, kind in DTYPES.items()}
    tensors["scalar"] = np.array(2.5, np.float64)
    tensors["empty"] = np.zeros((0, 3), np.float16)
    metadata = {"task": "language", "json": json.dumps({"a": [1, 2]})}
    path = tmp_path / "ours.safetensors"
    save_safetensors(tensors, path, metadata)
    theirs = np_load_file(str(path))
    assert set(theirs) == set(tensors)
    for name, array in tensors.items():
        assert theirs[name].dtype == array.dtype and theirs[name].shape == array.shape, name
        assert np.array_equal(theirs[name], array), name
    with safetensors.safe_open(str(path), "np") as file:
        assert file.metadata() == metadata
    as_torch = torch_load_file(str(path))
    assert torch.equal(as_torch["t.F32"], torch.from_numpy(tensors["t.F32"]))


def test_a_file_the_library_writes_loads(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {name.lower(): (rng.standard_normal((4, 3)) * 40).astype(kind) for name, kind in DTYPES.items()}
    tensors["big"] = rng.standard_normal((64, 33)).astype(np.float32)
    path = tmp_path / "theirs.safetensors"
    np_save_file(tensors, str(path), metadata={"source": "safetensors"})
    ours, metadata = load_safetensors(path)
    assert metadata == {"source": "safetensors"} and set(ours) == set(tensors)
    for name, array in tensors.items():
        assert ours[name].dtype == array.dtype and np.array_equal(ours[name], array), name


def test_the_torch_twin_of_the_gpt_milestones_model_loads_the_exported_file(tmp_path):
    manual_seed(0)
    model = GPT(GPT_MILESTONE)
    rng = np.random.default_rng(2)
    for param in model.parameters():                     # off the initial ones and zeros
        param.data = (param.data + 0.05 * rng.standard_normal(param.shape)).astype(np.float32)
    path = tmp_path / "gpt.safetensors"
    export(model, path)
    manual_seed(1)
    twin = load_into_twin(torch_gpt_twin(GPT(GPT_MILESTONE)), path, model)
    ids = rng.integers(0, 76, (2, 20))
    with torch.no_grad():
        theirs = twin(torch.from_numpy(ids)).numpy()
    loaded, _ = load(path)
    with no_grad():
        ours = loaded(ids).data
    assert np.abs(ours - theirs).max() < 1e-5 * max(1, np.abs(theirs).max())
    engine = LanguageEngine(loaded, max_batch=2)
    slots = [engine.open(row.tolist()) for row in ids]
    for slot, row in zip(slots, theirs):
        assert np.abs(engine.logits(slot) - row[-1]).max() < 1e-5 * max(1, np.abs(row).max())


@pytest.mark.parametrize("build, shape", [(digits_cnn_model, (1, 28, 28)), (cifar10_model, (3, 32, 32))],
                         ids=["cnn", "cifar10"])
def test_the_torch_twin_of_a_milestone_cnn_loads_the_exported_file(tmp_path, build, shape):
    manual_seed(3)
    model = build()
    rng = np.random.default_rng(4)
    for _ in range(2):                                   # running statistics of real batches
        model(rng.random((4, *shape)).astype(np.float32) * 2 - 0.5)
    for layer in model:
        if isinstance(layer, BatchNorm2d):
            layer.weight.data = rng.uniform(0.5, 1.5, layer.weight.shape).astype(np.float32)
            layer.bias.data = (0.1 * rng.standard_normal(layer.bias.shape)).astype(np.float32)
    model.eval()
    path = tmp_path / "cnn.safetensors"
    export(model, path)
    twin = load_into_twin(torch_twin(model), path, model)
    images = rng.random((3, *shape)).astype(np.float32)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(images)).numpy()
    with no_grad():
        ours = model(images).data
    scale = max(1, np.abs(theirs).max())
    assert np.abs(ours - theirs).max() < 1e-5 * scale
    probabilities = torch.softmax(torch.from_numpy(theirs), dim=1).numpy()
    engine = VisionEngine(load(path)[0])
    assert engine.input_shape == shape
    assert np.abs(engine.predict_proba(images) - probabilities).max() < 1e-5
