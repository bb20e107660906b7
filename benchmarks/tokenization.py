"""Tokenization: module 11's byte-level BPE trained on the shipped Shakespeare corpus.

For each vocabulary size (512 and 1,024 by default), on one process (the trainer is pure
Python, single-threaded):

- the time to train the tokenizer on the whole training text (1.0 M characters), the best of
  `--repeats` runs (other work on the machine only ever slows a run down);
- bytes per token on the held-out validation text, the figure module 11 states (a character
  or byte tokenizer scores 1.00), and the time to encode that text;

then the incremental trainer against the literal algorithm (recount every pair of every chunk
before each merge) on the same slice of text, with the merges checked equal.

    python -m benchmarks tokenization              (with the others: python -m benchmarks)
    python -m benchmarks.tokenization [--sizes 512,1024] [--repeats N] [--out PATH]

Results: benchmarks/results/tokenization.md. Target (issue 17): a 1,024-token vocabulary in
under a minute on one core; about 1.9 and 2.2 bytes per token at 512 and 1,024.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import cpu_name, load_average
from tinytorch.datasets import load_shakespeare
from tinytorch.text.tokenization import SPLIT_PATTERN, BPETokenizer, bytes_per_token, merge

RESULTS = Path(__file__).resolve().parent / "results" / "tokenization.md"
TARGET_SECONDS = 60.0          # training 1,024 tokens on the corpus, one core
LITERAL_CHARS = 100_000        # the slice the literal algorithm is timed on
LITERAL_VOCAB = 300






def literal_train(text: str, vocab_size: int) -> dict:
    """BPE as the textbook states it: recount all pairs before every merge."""
    words = [list(chunk.encode("utf-8")) for chunk in re.findall(SPLIT_PATTERN, text)]
    merges = {}
    for new_id in range(256, vocab_size):
        counts = Counter(pair for ids in words for pair in zip(ids, ids[1:]))
        if not counts:
            break
        top = max(counts.values())
        pair = min(p for p, n in counts.items() if n == top)
        merges[pair] = new_id
        words = [merge(ids, pair, new_id) for ids in words]
    return merges


def _best(fn, repeats: int):
    """(the least time of `repeats` calls, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(train: str, val: str, sizes: list[int], repeats: int,
            literal_chars: int = LITERAL_CHARS, literal_vocab: int = LITERAL_VOCAB) -> dict:
    rows = []
    for size in sizes:
        seconds, tok = _best(lambda size=size: BPETokenizer().train(train, size), repeats)
        encode_seconds, ids = _best(lambda tok=tok: tok.encode(val), repeats)
        assert tok.decode(ids) == val, "the validation text must round-trip"
        rows.append({"vocab": tok.vocab_size, "train_s": seconds, "tokens": len(ids),
                     "bytes_per_token": bytes_per_token(tok, val), "encode_s": encode_seconds})
    piece = train[:literal_chars]
    fast_s, fast = _best(lambda: BPETokenizer().train(piece, literal_vocab), repeats)
    slow_s, slow = _best(lambda: literal_train(piece, literal_vocab), 1)
    assert fast.merges == slow, "the incremental trainer must learn the literal algorithm's merges"
    return {"rows": rows, "literal": {"chars": len(piece), "vocab": literal_vocab,
                                      "incremental_s": fast_s, "literal_s": slow_s}}


def report(result: dict, train: str, val: str, repeats: int, load_before: str) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Tokenization: byte-level BPE on the shipped Shakespeare",
        "",
        f"Measured {now} by `python -m benchmarks tokenization` (benchmarks/tokenization.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}. Load average (1, 5, 15 min) before: {load_before}; "
        f"after: {load_average()} (other work on the machine slows the figures down). The trainer is "
        "pure Python: one core.",
        "",
        f"`tinytorch.text.BPETokenizer` (module 11) trained on the training text "
        f"({len(train):,} characters), measured on the held-out text ({len(val):,} characters, "
        f"{len(val.encode('utf-8')):,} bytes). Times: the best of {repeats} run(s).",
        "",
        "| vocabulary | training (s) | val tokens | bytes per token | encoding val (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['vocab']:,} | {row['train_s']:.2f} | {row['tokens']:,} | "
                     f"{row['bytes_per_token']:.3f} | {row['encode_s']:.2f} |")
    lines.append("")
    largest = max(result["rows"], key=lambda row: row["vocab"])
    verdict = "within" if largest["train_s"] < TARGET_SECONDS else "OUTSIDE"
    lines += [
        f"Target: training a 1,024-token vocabulary in under {TARGET_SECONDS:.0f} s. Measured: "
        f"{largest['train_s']:.1f} s for {largest['vocab']:,} tokens: {verdict} the target. A "
        "character (or byte) tokenizer carries 1.00 byte per token on this ASCII text.",
        "",
        "## Incremental counts against the literal algorithm",
        "",
    ]
    lit = result["literal"]
    lines += [
        f"On the first {lit['chars']:,} characters, a {lit['vocab']}-token vocabulary: the "
        f"literal algorithm (recount every pair of every chunk before each merge) took "
        f"{lit['literal_s']:.2f} s, the incremental trainer {lit['incremental_s']:.2f} s "
        f"({lit['literal_s'] / lit['incremental_s']:.0f}x faster), with the same merges.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tokenization",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024", help="vocabulary sizes (default 512,1024)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure, the best kept")
    parser.add_argument("--chars", type=int, default=None,
                        help="train on this many characters only (a quick check)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks`: defaults
    sizes = [int(size) for size in args.sizes.split(",")]
    train = load_shakespeare("train").text[:args.chars]
    val = load_shakespeare("val").text
    load_before = load_average()
    literal_chars = min(LITERAL_CHARS, len(train))
    result = measure(train, val, sizes, args.repeats, literal_chars)
    text = report(result, train, val, args.repeats, load_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
