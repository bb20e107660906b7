"""The gpt milestone's model: tinytorch against PyTorch CPU, measured in the same run.

For each thread count (1 and 2), a fresh worker process pins its threads before NumPy and torch
load (as benchmarks/training.py does) and times:

- one training step of the milestone's GPT (milestones/gpt.py: 2 layers, width 64, 4 heads,
  context 64, batch 32, the shipped corpus's characters): forward, next-token cross-entropy,
  backward, AdamW, zero_grad, in tinytorch and in its PyTorch twin (benchmarks/gpt_twin.py)
  holding the same weights, alternating step by step so that both see the same load; the
  median after a warm-up, in ms per step and tokens per second, and their ratio;
- generation: tokens per second of `GPT.generate` (batch 1 and batch 8, 64 new tokens each,
  the whole context recomputed for every token, as module 14 does it) against the twin doing the
  same loop.

    python -m benchmarks gpt                  (with the others: python -m benchmarks)
    python -m benchmarks.gpt [--repeats N] [--warmup N] [--threads 1,2] [--quick]

Results: benchmarks/results/gpt.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
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
RESULTS = Path(__file__).resolve().parent / "results" / "gpt.md"
TARGET = 1.5                     # tinytorch's training step, in PyTorch's time
NEW_TOKENS = 64
GENERATION_BATCHES = (1, 8)


def setup(seed: int = 0):
    """(milestone module, tinytorch GPT, torch twin, train ids) for the milestone's recipe."""
    import numpy as np

    from benchmarks.gpt_twin import torch_gpt_twin
    from milestones import gpt as milestone
    from tinytorch.core.layers import manual_seed

    corpus = milestone.load_corpus(None)
    tokenizer = milestone.make_tokenizer("char", corpus, 0)
    ids = np.array(tokenizer.encode(corpus.train), dtype=np.int64)
    manual_seed(seed)
    model = milestone.build_model(tokenizer.vocab_size)
    return milestone, model, torch_gpt_twin(model), ids


def steps(seed: int = 0):
    """(tinytorch step, torch step, tokens per step): one AdamW training step each on the same batch."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from tinytorch.models.transformer import next_token_loss, random_windows

    milestone, model, twin, ids = setup(seed)
    x, y = random_windows(ids, milestone.BLOCK_SIZE, milestone.BATCH_SIZE, np.random.default_rng(seed))
    optimizer = milestone.make_optimizer(model)
    twin_optimizer = torch.optim.AdamW(twin.parameters(), lr=milestone.LR, betas=milestone.BETAS,
                                       weight_decay=milestone.WEIGHT_DECAY)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).reshape(-1)

    def ours():
        loss = next_token_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    def theirs():
        loss = F.cross_entropy(twin(xt).reshape(yt.numel(), -1), yt)
        twin_optimizer.zero_grad()
        loss.backward()
        twin_optimizer.step()
        return loss.item()

    return ours, theirs, x.size


def torch_generate(twin, idx, new_tokens: int, block_size: int, generator):
    """The twin's generation loop, as module 14's generate (temperature 1, no cache)."""
    import torch

    with torch.no_grad():
        for _ in range(new_tokens):
            logits = twin(idx[:, -block_size:])[:, -1, :]
            chosen = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
            idx = torch.cat([idx, chosen], dim=1)
    return idx


def measure_generation(repeats: int) -> list[dict]:
    """Tokens per second of generation, tinytorch and the twin, for each batch size."""
    import numpy as np
    import torch

    milestone, model, twin, ids = setup()
    rows = []
    for batch in GENERATION_BATCHES:
        prompt = np.repeat(ids[None, :8], batch, axis=0)
        prompt_t = torch.from_numpy(prompt)
        generator, torch_generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
        ours, theirs = interleaved(
            lambda p=prompt, g=generator: model.generate(p, NEW_TOKENS, generator=g),
            lambda p=prompt_t, g=torch_generator: torch_generate(twin, p, NEW_TOKENS, milestone.BLOCK_SIZE, g),
            repeats, 1, ticker(f"generate batch {batch}", repeats))
        made = batch * NEW_TOKENS
        rows.append({"batch": batch, "tinytorch_tokens_per_s": made / statistics.median(ours),
                     "torch_tokens_per_s": made / statistics.median(theirs)})
    return rows


def worker(threads: int, repeats: int, warmup: int) -> None:
    """Measure everything at one thread count; JSON lines on stdout (progress, then the result)."""
    import numpy
    import torch

    torch.set_num_threads(threads)
    ours, theirs, tokens = steps()
    times_ours, times_theirs = interleaved(ours, theirs, repeats, warmup, ticker("training step", repeats))
    ms_ours, ms_theirs = 1e3 * statistics.median(times_ours), 1e3 * statistics.median(times_theirs)
    step = {"tinytorch_ms": ms_ours, "torch_ms": ms_theirs, "ratio": ms_ours / ms_theirs,
            "tinytorch_tokens_per_s": tokens / ms_ours * 1e3, "torch_tokens_per_s": tokens / ms_theirs * 1e3,
            "fastest_ratio": min(times_ours) / min(times_theirs), "tokens": tokens}
    generation = measure_generation(max(1, repeats // 5))
    emit(result={"threads": threads, "step": step, "generation": generation, "blas": blas_pools(),
                  "torch_threads": torch.get_num_threads(), "numpy": numpy.__version__,
                  "torch": torch.__version__, "pinned": {name: os.environ.get(name) for name in THREAD_VARIABLES}})


def markdown(results: list[dict], started: str, loads: tuple[str, str], repeats: int, warmup: int) -> str:
    from milestones import gpt as milestone

    first = results[0]
    lines = [
        "# The gpt milestone's model: tinytorch against PyTorch CPU",
        "",
        f"Measured {started} by `python -m benchmarks gpt` (benchmarks/gpt.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, NumPy {first['numpy']}, PyTorch {first['torch']}. Load average (1, 5, 15 min) "
        f"before: {loads[0]}; after: {loads[1]} (other work on the machine slows both sides; the steps alternate so "
        "that both see the same load).",
        "",
        worker_text() + " Thread pools seen by threadpoolctl:",
        "",
    ]
    for result in results:
        lines.append(f"- {result['threads']} thread(s): {blas_text(result['blas'])}; torch intra-op threads "
                     f"{result['torch_threads']}")
    lines += [
        "",
        "## One training step",
        "",
        f"The milestone's GPT ({milestone.N_LAYER} layers, width {milestone.N_EMBD}, {milestone.N_HEAD} heads, "
        f"context {milestone.BLOCK_SIZE}, batch {milestone.BATCH_SIZE}: {first['step']['tokens']:,} tokens per step, "
        "float32): forward, next-token cross-entropy, backward, AdamW and zero_grad; the PyTorch twin holds the same "
        f"weights. Median of {repeats} steps after {warmup} warm-up steps; ratio = tinytorch's time / PyTorch's.",
        "",
        "| threads | tinytorch ms/step | PyTorch ms/step | tinytorch tokens/s | PyTorch tokens/s | ratio "
        "| ratio of the fastest steps |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        s = result["step"]
        lines.append(f"| {result['threads']} | {s['tinytorch_ms']:.1f} | {s['torch_ms']:.1f} | "
                     f"{s['tinytorch_tokens_per_s']:,.0f} | {s['torch_tokens_per_s']:,.0f} | {s['ratio']:.2f}× | "
                     f"{s['fastest_ratio']:.2f}× |")
    verdicts = ", ".join(f"{r['step']['ratio']:.2f}× at {r['threads']} thread(s)" for r in results)
    within = all(r["step"]["ratio"] <= TARGET for r in results)
    lines += ["", f"Target: at most {TARGET}× PyTorch's time. Measured: {verdicts}: "
              + ("within the target." if within else "not within the target at every thread count."),
              "", "## Generation", "",
              f"{NEW_TOKENS} new tokens after a prompt of 8, temperature 1, every token recomputing the whole "
              "context (no cache: module 16's subject); tokens per second, median.",
              "", "| threads | batch | tinytorch tokens/s | PyTorch tokens/s |", "|---:|---:|---:|---:|"]
    for result in results:
        for row in result["generation"]:
            lines.append(f"| {result['threads']} | {row['batch']} | {row['tinytorch_tokens_per_s']:,.0f} | "
                         f"{row['torch_tokens_per_s']:,.0f} |")
    return "\n".join(lines) + "\n"


def run(threads: list[int], repeats: int, warmup: int, out: Path, console) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from autograder.files import atomic_write

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        for count in threads:
            results.append(run_worker(count, repeats, warmup, None, progress, module="benchmarks.gpt"))
    for result in results:
        s = result["step"]
        console.print(f"{result['threads']} thread(s): tinytorch {s['tinytorch_ms']:.1f} ms/step, PyTorch "
                      f"{s['torch_ms']:.1f} ms/step, ratio {s['ratio']:.2f}×; generation "
                      + ", ".join(f"batch {g['batch']}: {g['tinytorch_tokens_per_s']:,.0f} vs "
                                  f"{g['torch_tokens_per_s']:,.0f} tokens/s" for g in result["generation"]))
    atomic_write(out, markdown(results, started, (load_before, load_average()), repeats, warmup))
    console.print(f"results: {out}")
    return results


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpt", description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts, each in its own process "
                        "(default 1,2)")
    parser.add_argument("--repeats", type=int, default=20, help="timed training steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 1 warm-up step: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the markdown results (default "
                        f"{RESULTS.relative_to(ROOT)})")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_options(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks` calls main() with no arguments: the defaults."""
    args = parse_args([] if argv is None else argv)
    if args.worker:
        worker(args.threads[0], args.repeats, args.warmup)
        return 0
    from rich.console import Console

    run(args.threads, args.repeats, args.warmup, args.out, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
