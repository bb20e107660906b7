"""Character n-gram baselines: what counting alone reaches on a text, in nats per character.

A language model is only interesting when it beats counting. `ngram_losses(train, val)` fits
character n-gram models of orders 1..4 on `train` and returns the mean negative log-likelihood
(nats per character) of each on `val`: the numbers the gpt milestone prints beside its own
validation loss.

Smoothing (an unseen n-gram must not get probability 0): **interpolated absolute
discounting** with D = 0.75 (Ney, Essen and Kneser 1994), down to an add-one unigram:

    P_n(c | h) = max(count(h c) - D, 0) / count(h)  +  D * types(h) / count(h) * P_{n-1}(c | h')

where h is the n-1 characters before c, h' the last n-2 of them, count(h) how often h was
followed by any character in `train`, and types(h) by how many different ones. A history never
seen in `train` falls back to P_{n-1} entirely. Every order is scored on the same positions of
`val` (from its 4th character on), so the columns compare.

The alphabet is the characters of `train` and `val` together (the unigram's add-one gives a
character seen only in `val` a small probability). NumPy only.
"""

from __future__ import annotations

import numpy as np

DISCOUNT = 0.75
ORDERS = (1, 2, 3, 4)
SMOOTHING = "interpolated absolute discounting (D = 0.75) down to an add-one unigram"


def _keys(ids: np.ndarray, n: int, size: int) -> np.ndarray:
    """One int64 key per window of n ids: key[t] encodes ids[t .. t+n-1] in base `size`."""
    keys = np.zeros(len(ids) - n + 1, dtype=np.int64)
    for offset in range(n):
        keys = keys * size + ids[offset:len(ids) - n + 1 + offset]
    return keys


def _lookup(known: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """counts[i] where known[i] == query (known sorted), else 0, for every query."""
    where = np.minimum(np.searchsorted(known, queries), len(known) - 1)
    return np.where(known[where] == queries, counts[where], 0)


def ngram_losses(train: str, val: str, orders=ORDERS, discount: float = DISCOUNT) -> dict[int, float]:
    """{order: nats per character on `val`} of character n-gram models fitted on `train`."""
    top = max(orders)
    if len(train) < top or len(val) < top:
        raise ValueError(f"ngram_losses needs at least {top} characters of train and of val text, "
                         f"got {len(train)} and {len(val)}")
    alphabet = {c: i for i, c in enumerate(sorted(set(train) | set(val)))}
    size = len(alphabet)
    if size ** top >= 2 ** 62:
        raise ValueError(f"{size} distinct characters are too many for {top}-gram keys in int64")
    a = np.fromiter((alphabet[c] for c in train), dtype=np.int64, count=len(train))
    b = np.fromiter((alphabet[c] for c in val), dtype=np.int64, count=len(val))
    unigram = np.bincount(a, minlength=size) + 1.0
    p = (unigram / unigram.sum())[b[top - 1:]]              # P_1 of every scored character
    losses = {1: float(-np.log(p).mean())}
    for n in range(2, top + 1):
        seen, seen_counts = np.unique(_keys(a, n, size), return_counts=True)
        history, history_counts = np.unique(_keys(a[:-1], n - 1, size), return_counts=True)
        typed, type_counts = np.unique(seen // size, return_counts=True)
        scored = _keys(b, n, size)[top - n:]                 # the same positions for every order
        ch = _lookup(history, history_counts, scored // size).astype(np.float64)
        kept = np.maximum(_lookup(seen, seen_counts, scored) - discount, 0.0)
        types = _lookup(typed, type_counts, scored // size)
        safe = np.maximum(ch, 1.0)
        p = np.where(ch > 0, kept / safe + discount * types / safe * p, p)
        losses[n] = float(-np.log(p).mean())
    return {n: losses[n] for n in orders}
