"""The PyTorch twin of module 14's GPT: the same modules under the same parameter names, so
that weights copy by name (tests/framework/test_transformers.py, benchmarks/gpt.py).

    twin = torch_gpt_twin(model)        # a torch GPT holding a copy of model's weights
    copy_gpt_weights(model, twin)       # copy them again (after training the tinytorch one)

The names match module 14's: tok_emb, pos_emb, blocks.N.{ln1, attn.{q,k,v,out}_proj, ln2,
mlp.{fc, proj}}, ln_f, head. tinytorch's Linear keeps its weight as (in, out), torch's as
(out, in): those are transposed on copy; every other parameter is copied as it is. The
attention is torch's scaled_dot_product_attention with is_causal=True, the GELU the tanh
approximation of module 03.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class TwinAttention(nn.Module):
    def __init__(self, dim: int, heads: int, bias: bool = True):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim, bias=bias), nn.Linear(dim, dim, bias=bias)
        self.v_proj, self.out_proj = nn.Linear(dim, dim, bias=bias), nn.Linear(dim, dim, bias=bias)

    def forward(self, x):
        b, t, d = x.shape
        split = lambda y: y.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)),
                                             split(self.v_proj(x)), is_causal=True)  # (B, H, T, hd)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class TwinMLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc, self.gelu, self.proj = nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.proj(self.gelu(self.fc(x)))


class TwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim, eps=eps), TwinAttention(dim, heads)
        self.ln2, self.mlp = nn.LayerNorm(dim, eps=eps), TwinMLP(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TwinPositions(nn.Module):
    """A learned position table under the name module 12's PositionalEmbedding gives it."""

    def __init__(self, name: str, max_len: int, dim: int):
        super().__init__()
        self.table_name = name
        self.register_parameter(name, nn.Parameter(torch.zeros(max_len, dim)))

    def forward(self, x):
        return x + getattr(self, self.table_name)[: x.shape[1]]


class TwinGPT(nn.Module):
    def __init__(self, config, position_name: str, hidden: int, eps: float):
        super().__init__()
        d = config.n_embd
        self.tok_emb = nn.Embedding(config.vocab_size, d)
        self.pos_emb = TwinPositions(position_name, config.block_size, d)
        self.blocks = nn.Sequential(*[TwinBlock(d, config.n_head, hidden, eps) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(d, eps=eps)
        self.head = None if config.tie_weights else nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, idx):
        x = self.ln_f(self.blocks(self.pos_emb(self.tok_emb(idx))))
        return x @ self.tok_emb.weight.T if self.head is None else self.head(x)


def _owners(model) -> dict:
    """{dotted parameter name: the type name of the tinytorch module that owns it}."""
    owners, queue = {}, [("", model)]
    while queue:
        prefix, module = queue.pop()
        for name in module._parameters:
            owners[prefix + name] = type(module).__name__
        queue += [(f"{prefix}{name}.", child) for name, child in module._modules.items()]
    return owners


def copy_gpt_weights(model, twin) -> None:
    """Copy every parameter of the tinytorch GPT `model` into `twin`, by name (Linear weights
    transposed), in the twin's dtype."""
    owners = _owners(model)
    targets = dict(twin.named_parameters())
    ours = dict(model.named_parameters())
    if set(ours) != set(targets):
        raise ValueError(f"copy_gpt_weights: the names differ: only tinytorch has {sorted(set(ours) - set(targets))}, "
                         f"only torch has {sorted(set(targets) - set(ours))}")
    with torch.no_grad():
        for name, param in ours.items():
            value = param.data.T if owners[name] == "Linear" and param.ndim == 2 else param.data
            target = targets[name]
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))


def gradients_as_ours(model, twin) -> dict:
    """{name: the twin's gradient of each parameter, laid out as tinytorch's parameter}."""
    owners = _owners(model)
    found = {}
    for name, param in twin.named_parameters():
        grad = param.grad.detach().cpu().numpy()
        found[name] = grad.T if owners[name] == "Linear" and grad.ndim == 2 else grad
    return found


def torch_gpt_twin(model, dtype=torch.float32):
    """The torch twin of the tinytorch GPT `model`, holding a copy of its weights."""
    (position_name,) = [name for name, _ in model.pos_emb.named_parameters()]
    first = model.blocks[0] if len(model.blocks) else None
    hidden = first.mlp.fc.out_features if first is not None else 4 * model.config.n_embd
    twin = TwinGPT(model.config, position_name, hidden, model.ln_f.eps).to(dtype)
    copy_gpt_weights(model, twin)
    return twin
