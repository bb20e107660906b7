"""Module 16's KV cache: generation with and without it, over the context length.

For each thread count, a fresh worker process pins its threads before NumPy loads (as
benchmarks/training.py does) and measures two GPTs of module 14 (untrained weights: the speed
does not depend on them): the gpt milestone's model (2 layers, width 64, 4 heads, context 64:
0.11 M parameters) and a 0.8 M one (4 layers, width 128, 4 heads, context 256), both over the
shipped corpus's characters. At each context length L up to the model's block_size:

- **per token at context L**: the model work for the next token when L tokens are in context;
  without the cache, module 14's step (the GPT's forward on the L tokens under `no_grad`, the
  last position's logits); with it, one `decode_step` after the first L - 1 tokens were
  prefilled (untimed). Also the same NumPy code as the cache's with nothing reused (a fresh
  `prefill` of all L tokens), which separates what the cache buys from what leaving the Tensor
  out buys. The two sides alternate call by call, so both see the same load;
- **end to end**: a text of L tokens from a one-token prompt, greedy, by module 14's
  `generate` and by `generate_cached` (prefill included, the context growing from 1 to L);
  tokens per second, and the two token sequences checked identical in the same run.

The speed-up targets of issue 18 (at least 5x at context 64 and 20x at 256) are read on the
per-token figures; the end-to-end ones are averaged over a growing context and are lower.

    python -m benchmarks caching              (with the others: python -m benchmarks)
    python -m benchmarks.caching [--repeats N] [--warmup N] [--threads 1] [--contexts 16,64]
                                 [--quick] [--plot PATH | --no-plot]

Results: benchmarks/results/caching.md and caching.png.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import (
    THREAD_VARIABLES,
    blas_pools,
    blas_text,
    check_run_options,
    cpu_name,
    emit,
    interleaved,
    load_average,
    run_worker,
    ticker,
    worker_text,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "caching.md"
PLOT = RESULTS.with_suffix(".png")
CONTEXTS = (16, 32, 64, 128, 256)
QUICK_CONTEXTS = (16, 32)
TARGETS = {64: 5.0, 256: 20.0}          # per-token speed-up at that context (issue 18)
MODELS = {                              # name: (n_layer, n_head, n_embd, block_size)
    "milestone": (2, 4, 64, 64),
    "0.8M": (4, 4, 128, 256),
}


def setup(name: str, seed: int = 0):
    """(GPT, token ids of the training text) for one of MODELS."""
    import numpy as np

    from milestones import gpt as milestone
    from tinytorch.core.layers import manual_seed
    from tinytorch.models.transformer import GPT, GPTConfig

    corpus = milestone.load_corpus(None)
    tokenizer = milestone.make_tokenizer("char", corpus, 0)
    n_layer, n_head, n_embd, block_size = MODELS[name]
    manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=block_size, n_layer=n_layer,
                          n_head=n_head, n_embd=n_embd))
    return model, np.array(tokenizer.encode(corpus.train[:2000]), dtype=np.int64)


def per_token(model, ids, length: int, repeats: int, warmup: int, tick) -> dict:
    """Seconds for the next token's logits at context `length`: module 14's forward, a fresh
    prefill of the whole context, and one decode step after L - 1 prefilled tokens (the prefill
    untimed); the three checked to agree, and timed in turn in every round."""
    import numpy as np

    from tinytorch.core.autograd import no_grad
    from tinytorch.perf.caching import KVCache, decode_step, prefill

    context = ids[None, :length]                                   # (1, L)
    cache = KVCache.for_model(model)

    def uncached():
        with no_grad():
            return model(context).data[:, -1]

    def recomputed():
        return prefill(model, context, KVCache.for_model(model))[:, -1]

    def cached():
        cache.reset()
        prefill(model, context[:, :-1], cache)                     # the L - 1 tokens before
        start = time.perf_counter()
        logits = decode_step(model, context[:, -1], cache)
        return logits, time.perf_counter() - start

    want = uncached()
    for name, got in (("a fresh prefill", recomputed()), ("a decode step", cached()[0])):
        error = float(np.abs(got - want).max())
        if error > 1e-4:
            raise AssertionError(f"context {length}: {name} differs from the model by {error:.3g}")
    times = {"uncached_s": [], "recomputed_s": [], "cached_s": []}
    for round_ in range(warmup + repeats):
        start = time.perf_counter()
        uncached()
        middle = time.perf_counter()
        recomputed()
        end = time.perf_counter()
        _, decode = cached()
        if round_ >= warmup:
            times["uncached_s"].append(middle - start)
            times["recomputed_s"].append(end - middle)
            times["cached_s"].append(decode)
            tick()
    return {key: statistics.median(values) for key, values in times.items()}


def end_to_end(model, ids, length: int, repeats: int, warmup: int, tick) -> dict:
    """Tokens per second writing a text of `length` tokens from a one-token prompt, greedy,
    module 14's generate against generate_cached; the tokens compared."""
    import numpy as np

    from tinytorch.models.transformer import generate
    from tinytorch.perf.caching import generate_cached

    prompt, new = ids[None, :1], length - 1
    same = bool(np.array_equal(generate(model, prompt, new, top_k=1), generate_cached(model, prompt, new, top_k=1)))
    plain, cached = interleaved(lambda: generate(model, prompt, new, top_k=1),
                                 lambda: generate_cached(model, prompt, new, top_k=1), repeats, warmup, tick)
    return {"uncached_tokens_per_s": new / statistics.median(plain),
            "cached_tokens_per_s": new / statistics.median(cached), "same_tokens": same}


def measure(name: str, contexts: list[int], repeats: int, warmup: int) -> dict:
    from tinytorch.models.transformer import count_parameters
    from tinytorch.perf.caching import KVCache

    model, ids = setup(name)
    lengths = [c for c in contexts if c <= model.config.block_size]
    rows = []
    for length in lengths:
        tick = ticker(f"{name} context {length}", repeats + max(1, repeats // 5))
        row = {"context": length, **per_token(model, ids, length, repeats, warmup, tick)}
        row.update(end_to_end(model, ids, length, max(1, repeats // 5), min(warmup, 1), tick))
        rows.append(row)
    c = model.config
    return {"model": name, "parameters": count_parameters(c), "n_layer": c.n_layer, "n_head": c.n_head,
            "n_embd": c.n_embd, "block_size": c.block_size, "cache_nbytes": KVCache.for_model(model).nbytes,
            "rows": rows}


def worker(threads: int, repeats: int, warmup: int, contexts: list[int]) -> None:
    import numpy

    models = [measure(name, contexts, repeats, warmup) for name in MODELS]
    emit(result={"threads": threads, "models": models, "blas": blas_pools(), "numpy": numpy.__version__,
                  "pinned": {name: os.environ.get(name) for name in THREAD_VARIABLES}})


def speedups(row: dict) -> tuple[float, float, float]:
    """(per token over module 14, per token over the NumPy path without reuse, end to end)."""
    return (row["uncached_s"] / row["cached_s"], row["recomputed_s"] / row["cached_s"],
            row["cached_tokens_per_s"] / row["uncached_tokens_per_s"])


def verdicts(results: list[dict]) -> list[str]:
    """One sentence per target and thread count: measured, met or not."""
    lines = []
    for result in results:
        for model in result["models"]:
            for row in model["rows"]:
                target = TARGETS.get(row["context"])
                if target is None:
                    continue
                token, _, whole = speedups(row)
                met = "met" if token >= target else "NOT met"
                lines.append(f"- {model['model']}, context {row['context']}, {result['threads']} thread(s): "
                             f"{token:.1f}× per token (target ≥ {target:g}×: {met}); {whole:.1f}× end to end")
    return lines


def markdown(results: list[dict], started: str, loads: tuple[str, str], repeats: int, warmup: int) -> str:

    first = results[0]
    lines = [
        "# Module 16's KV cache: generation with and without it",
        "",
        f"Measured {started} by `python -m benchmarks caching` (benchmarks/caching.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, NumPy {first['numpy']}. Load average (1, 5, 15 min) before: {loads[0]}; "
        f"after: {loads[1]} (other work on the machine slows every figure; the sides alternate call by call so "
        "that the ratios compare like with like).",
        "",
        worker_text() + " Thread pools seen by threadpoolctl:",
        "",
    ]
    lines += [f"- {r['threads']} thread(s): {blas_text(r['blas'])}" for r in results]
    lines += [
        "",
        "Models: module 14's GPT with untrained weights over the shipped corpus's characters, float32, batch 1. "
        "The cache of each holds block_size positions (`KVCache.nbytes`: 2 × layers × batch × heads × "
        "block_size × head size × 4 bytes).",
        "",
    ]
    for model in first["models"]:
        lines.append(f"- {model['model']}: {model['n_layer']} layers, width {model['n_embd']}, {model['n_head']} "
                     f"heads, context {model['block_size']}: {model['parameters']:,} parameters; cache "
                     f"{model['cache_nbytes']:,} bytes")
    lines += [
        "",
        "## Per token at context L",
        "",
        "The model work for the next token with L tokens in context, median of "
        f"{repeats} calls after {warmup} warm-up calls: module 14's forward on all L tokens (what its "
        "`generate` does per token), the cache's NumPy code on all L tokens with nothing reused (a fresh "
        "prefill), and one `decode_step` after L - 1 cached tokens. Speed-up = module 14's time / the decode "
        "step's; \"no reuse\" = the fresh prefill's time / the decode step's (what the cache alone buys).",
        "",
        "| threads | model | context | module 14 ms | no reuse ms | cached ms | tokens/s without | tokens/s with "
        "| speed-up | over no reuse |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for model in result["models"]:
            for row in model["rows"]:
                token, reuse, _ = speedups(row)
                lines.append(f"| {result['threads']} | {model['model']} | {row['context']} | "
                             f"{1e3 * row['uncached_s']:.2f} | {1e3 * row['recomputed_s']:.2f} | "
                             f"{1e3 * row['cached_s']:.3f} | {1 / row['uncached_s']:,.0f} | "
                             f"{1 / row['cached_s']:,.0f} | {token:.1f}× | {reuse:.1f}× |")
    lines += [
        "",
        "## End to end",
        "",
        "A text of L tokens from a one-token prompt, greedy (top_k = 1): module 14's `generate` against "
        f"`generate_cached` (its prefill included), median of {max(1, repeats // 5)} runs; tokens per second of "
        "the L - 1 new tokens. The context grows from 1 to L, so these speed-ups average over it.",
        "",
        "| threads | model | context | tokens/s, module 14 | tokens/s, cached | speed-up | same tokens |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for model in result["models"]:
            for row in model["rows"]:
                lines.append(f"| {result['threads']} | {model['model']} | {row['context']} | "
                             f"{row['uncached_tokens_per_s']:,.0f} | {row['cached_tokens_per_s']:,.0f} | "
                             f"{speedups(row)[2]:.1f}× | {'yes' if row['same_tokens'] else 'NO'} |")
    found = verdicts(results)
    lines += ["", "## Targets", "", "Issue 18: at least 5× at context 64 and 20× at 256, per token."
              + ("" if found else " No measured context has a target in this run."), ""] + found
    return "\n".join(lines) + "\n"


def save_plot(results: list[dict], path: Path) -> Path | None:
    """Speed-up against the context length, per model and thread count, per token and end
    to end; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(7, 4))
    for result in results:
        for model in result["models"]:
            contexts = [row["context"] for row in model["rows"]]
            label = f"{model['model']} ({model['parameters'] / 1e6:.2f} M), {result['threads']} thread(s)"
            line, = axes.plot(contexts, [speedups(row)[0] for row in model["rows"]], marker="o",
                              label=f"{label}: per token")
            axes.plot(contexts, [speedups(row)[2] for row in model["rows"]], marker="s", linestyle="--",
                      color=line.get_color(), label=f"{label}: end to end")
    for context, target in TARGETS.items():
        axes.plot([context], [target], marker="_", markersize=20, markeredgewidth=2, color="red")
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    contexts = sorted({row["context"] for r in results for m in r["models"] for row in m["rows"]})
    axes.set_xticks(contexts, [str(c) for c in contexts])
    axes.set_xlabel("context length (tokens)")
    axes.set_ylabel("speed-up of the KV cache (×)")
    axes.set_title("Generation: module 14's recomputation / the KV cache (red: targets)")
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(threads: list[int], repeats: int, warmup: int, contexts: list[int], out: Path, plot: Path | None,
        console) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.files import atomic_write

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    results = []
    extra = ["--contexts", ",".join(map(str, contexts))]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        for count in threads:
            results.append(run_worker(count, repeats, warmup, None, progress, module="benchmarks.caching",
                                      extra=tuple(extra)))
    for line in verdicts(results):
        console.print(line)
    atomic_write(out, markdown(results, started, (load_before, load_average()), repeats, warmup))
    console.print(f"results: {out}")
    if plot is not None and save_plot(results, plot):
        console.print(f"plot: {plot}")
    return results


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.caching", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1", help="comma-separated thread counts, each in its own process "
                        "(default 1: generation at batch 1 is matrix-vector work a second thread does not speed up)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per token figure; the end-to-end "
                        "runs take a fifth of it (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--contexts", default=",".join(map(str, CONTEXTS)),
                        help=f"comma-separated context lengths (default {','.join(map(str, CONTEXTS))})")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up, contexts "
                        f"{','.join(map(str, QUICK_CONTEXTS))}: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the markdown results (default "
                        f"{RESULTS.relative_to(ROOT)})")
    parser.add_argument("--plot", type=Path, default=PLOT, help="the speed-up curve (default "
                        f"{PLOT.relative_to(ROOT)}, when matplotlib is installed)")
    parser.add_argument("--no-plot", action="store_true", help="write no plot")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_options(parser, args)
    if args.quick:
        args.contexts = ",".join(map(str, QUICK_CONTEXTS))
    try:
        args.contexts = [int(c) for c in args.contexts.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--contexts takes comma-separated whole numbers such as 16,64, got {args.contexts!r}")
    if not args.contexts or min(args.contexts) < 2:
        parser.error("--contexts needs at least one context length of 2 or more")
    if args.no_plot:
        args.plot = None
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks` calls main() with no arguments: the defaults."""
    args = parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.threads[0], args.repeats, args.warmup, args.contexts)
        return 0
    from rich.console import Console

    run(args.threads, args.repeats, args.warmup, args.contexts, args.out, args.plot, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
