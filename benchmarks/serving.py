"""The capstone server under load: latency, time to first token and tokens/s at 1, 4 and 8
concurrent clients, a burst beyond its capacity, and bad input.

The load test starts its own server (`python -m serving`, a subprocess on a free loopback port)
on a language model the size of the gpt milestone's (2 layers, width 64, 4 heads, context 64,
over the shipped Shakespeare's characters): a trained one given with --model (a
language.safetensors written by `tito milestone capstone --track language`), else the same
architecture with random weights (the speed does not depend on the weights; the report says
which). An asyncio client (httpx) then sends a fixed number of requests per level, each a
prompt of the corpus continued by a fixed number of tokens sampled at temperature 0.8, with
`concurrency` requests in flight at a time, and reads every streamed line. Prompt and new
tokens fill the model's context of 64 and no more: past it, each token recomputes its slot's
whole window alone (learned positions cannot slide, module 16), which batching cannot share.

- per level: p50/p95/p99 of the whole request's latency, p50/p95 of the time to the first
  token, the aggregate tokens/s (all tokens over the level's wall time) and each stream's own;
- overload: 4x (slots + queue) requests at once: the server must answer the ones beyond its
  capacity with 503 at once rather than queue them; the p99 of those refusals' latency;
- bad input: the malformed requests of tests/serving, each must be a 4xx and the server still up.

    python -m benchmarks serving              (with the others: python -m benchmarks)
    python -m benchmarks.serving [--requests N] [--tokens N] [--model PATH] [--quick]
                                 [--out PATH] [--plot PATH | --no-plot]

Results: benchmarks/results/serving.md and serving.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from benchmarks.common import load_average

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "serving.md"
PLOT = RESULTS.with_suffix(".png")
LEVELS = (1, 4, 8)
SLOTS, QUEUE = 8, 8
REQUESTS, TOKENS = 32, 48
QUICK_REQUESTS, QUICK_TOKENS = 8, 16
PROMPT_CHARS = 16   # 16 + 48 = the model's context of 64: past it every token recomputes the window


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")




# --- the model and the server ---------------------------------------------------------------------


def write_model(folder: Path, trained: Path | None) -> tuple[str, list[str]]:
    """language.safetensors in `folder` and what it is; also prompts from the validation text."""
    from milestones import cnn, gpt
    from tinytorch.capstone import export, tokenizer_to_json
    from tinytorch.core.layers import manual_seed

    corpus = gpt.load_corpus(None)
    text = corpus.val
    starts = range(0, len(text) - PROMPT_CHARS, max(1, (len(text) - PROMPT_CHARS) // 64))
    prompts = [text[s:s + PROMPT_CHARS] for s in starts][:64]
    if trained is not None:
        (folder / "language.safetensors").write_bytes(trained.read_bytes())
    manual_seed(0)  # a digit classifier too, so that /classify's refusals are measured: the cnn milestone's
    export(cnn.build_model(), folder / "vision.safetensors",
           extra={"task": "vision", "classes": json.dumps([str(i) for i in range(10)]),
                  "input": json.dumps({"shape": [1, 28, 28]}), "source": "the cnn milestone's CNN, random weights"})
    if trained is not None:
        from tinytorch.capstone import load_safetensors

        source = load_safetensors(trained)[1].get("source", "no source in its metadata")
        return f"a trained {trained.name} ({source})", prompts
    tokenizer = gpt.make_tokenizer("char", corpus, 0)
    manual_seed(0)
    model = gpt.build_model(tokenizer.vocab_size)
    export(model, folder / "language.safetensors",
           extra={"task": "language", "tokenizer": tokenizer_to_json(tokenizer),
                  "source": "benchmarks/serving.py: the gpt milestone's architecture, random weights"})
    params = sum(int(np.prod(p.data.shape)) for p in model.parameters())
    return (f"the gpt milestone's architecture ({gpt.N_LAYER} layers, width {gpt.N_EMBD}, {gpt.N_HEAD} heads, "
            f"context {gpt.BLOCK_SIZE}, {params:,} parameters) with **random weights** (no trained model "
            "was given: the speed does not depend on the weights)"), prompts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path, tokens: int, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    command = [sys.executable, "-m", "serving", "--models", str(folder), "--port", str(port), "--slots", str(SLOTS),
               "--queue", str(QUEUE), "--max-new-tokens", str(tokens), "--deadline", "120", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    until = time.monotonic() + 120
    while time.monotonic() < until and process.poll() is None:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


# --- the client ------------------------------------------------------------------------------------


async def one_request(client, prompt: str, tokens: int, seed: int) -> dict:
    """One /generate: its status, latency, time to first token and the tokens it streamed."""
    start = time.perf_counter()
    first, count, finish = None, 0, None
    body = {"prompt": prompt, "max_new_tokens": tokens, "temperature": 0.8, "seed": seed}
    async with client.stream("POST", "/generate", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return {"status": response.status_code, "latency": time.perf_counter() - start}
        async for line in response.aiter_lines():
            if not line:
                continue
            record = json.loads(line)
            if record.get("done"):
                finish = record["finish"]
            else:
                count += 1
                first = first if first is not None else time.perf_counter() - start
    latency = time.perf_counter() - start
    return {"status": 200, "latency": latency, "first": first, "tokens": count, "finish": finish,
            "stream_tokens_per_s": count / latency}


async def level(url: str, prompts: list[str], concurrency: int, requests: int, tokens: int) -> dict:
    """`requests` requests, `concurrency` in flight at a time."""
    import httpx

    queue = list(range(requests))
    results = []
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def worker():
            while queue:
                i = queue.pop()
                results.append(await one_request(client, prompts[i % len(prompts)], tokens, i))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    done = [r for r in results if r["status"] == 200 and r["finish"] == "length"]
    latencies, firsts = [r["latency"] for r in done], [r["first"] for r in done]
    return {
        "concurrency": concurrency, "requests": requests, "completed": len(done),
        "p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99),
        "ttft_p50": percentile(firsts, 50), "ttft_p95": percentile(firsts, 95),
        "tokens_per_s": sum(r["tokens"] for r in done) / wall, "wall": wall,
        "stream_tokens_per_s": statistics.median(r["stream_tokens_per_s"] for r in done) if done else float("nan"),
    }


async def overload(url: str, prompts: list[str], tokens: int) -> dict:
    """4x (slots + queue) requests at once."""
    import httpx

    burst = 4 * (SLOTS + QUEUE)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=httpx.Limits(max_connections=burst)) as client:
        results = await asyncio.gather(*(one_request(client, prompts[i % len(prompts)], tokens, i) for i in range(burst)))
    refused = [r["latency"] for r in results if r["status"] == 503]
    served = [r["latency"] for r in results if r["status"] == 200]
    return {"burst": burst, "served": len(served), "refused": len(refused),
            "other": burst - len(served) - len(refused),
            "refused_p50": percentile(refused, 50), "refused_p99": percentile(refused, 99),
            "served_p50": percentile(served, 50), "served_p99": percentile(served, 99)}


BAD_INPUTS = [  # (what, path, body, content type, the status it must get)
    ("empty prompt", "/generate", json.dumps({"prompt": ""}).encode(), "application/json", 422),
    ("huge prompt", "/generate", json.dumps({"prompt": "a" * 100_000}).encode(), "application/json", 413),
    ("invalid UTF-8", "/generate", b'{"prompt": "\xff\xfe"}', "application/json", 400),
    ("wrong content type", "/generate", b"prompt=hi", "text/plain", 415),
    ("bad JSON", "/generate", b'{"prompt": ', "application/json", 400),
    ("out-of-range tokens", "/generate", json.dumps({"prompt": "a", "max_new_tokens": -1}).encode(), "application/json", 422),
    ("not an image", "/classify", b"hello", "image/png", 422),
    ("image of the wrong size", "/classify", b"P5 32 32 255\n" + bytes(32 * 32), "image/x-portable-graymap", 422),
    ("wrong image content type", "/classify", b"{}", "application/json", 415),
]


async def bad_inputs(url: str) -> list[dict]:
    import httpx

    rows = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for what, path, body, content_type, status in BAD_INPUTS:
            start = time.perf_counter()
            response = await client.post(path, content=body, headers={"Content-Type": content_type})
            latency = time.perf_counter() - start
            healthy = (await client.get("/health")).status_code == 200
            message = response.json().get("error", "") if response.headers.get("content-type", "").startswith(
                "application/json") else ""
            rows.append({"what": what, "path": path, "expected": status, "status": response.status_code,
                         "ms": 1000 * latency, "error": message, "healthy": healthy})
    return rows


# --- the report ----------------------------------------------------------------------------------


def markdown(info: dict, levels: list[dict], burst: dict, bad: list[dict]) -> str:
    lines = [
        "# The capstone server under load",
        "",
        "Written by `python -m benchmarks.serving` (benchmarks/serving.py): an asyncio client on loopback",
        "against `python -m serving` started for the run. Do not edit by hand.",
        "",
        f"- Date: {info['date']}; machine: {info['machine']}; Python {info['python']}, NumPy {info['numpy']}",
        f"- Load average before / after: {info['load_before']} / {info['load_after']} (client and server share the cores)",
        f"- Model: {info['model']}",
        f"- Server: {SLOTS} slots (streams batched in one engine step), {QUEUE} waiting places, BLAS threads "
        f"{info['threads']}; each request: a {PROMPT_CHARS}-character prompt of the validation text, "
        f"{info['tokens']} new tokens at temperature 0.8 (within the model's context: past it, every token "
        "recomputes its slot's window alone, which batching cannot share)",
        "",
        "## Latency and throughput by concurrency",
        "",
        f"{info['requests']} requests per level, `concurrency` in flight at a time. Latency: from sending the request "
        "to its final line; first token: to its first token line.",
        "",
        "| concurrency | completed | p50 s | p95 s | p99 s | first token p50 ms | first token p95 ms "
        "| tokens/s, all streams | tokens/s, one stream (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in levels:
        lines.append(f"| {r['concurrency']} | {r['completed']}/{r['requests']} | {r['p50']:.3f} | {r['p95']:.3f} | "
                     f"{r['p99']:.3f} | {1000 * r['ttft_p50']:.1f} | {1000 * r['ttft_p95']:.1f} | "
                     f"{r['tokens_per_s']:.0f} | {r['stream_tokens_per_s']:.0f} |")
    one, top = levels[0], levels[-1]
    lines += [
        "",
        f"Batching: {top['concurrency']} concurrent streams give {top['tokens_per_s'] / one['tokens_per_s']:.2f}x the "
        f"tokens/s of one ({top['tokens_per_s']:.0f} vs {one['tokens_per_s']:.0f}).",
        "",
        "## Overload",
        "",
        f"{burst['burst']} requests at once against {SLOTS} slots + {QUEUE} waiting places:",
        "",
        "| served | refused (503) | other | refused p50 ms | refused p99 ms | served p50 s | served p99 s |",
        "|---|---|---|---|---|---|---|",
        f"| {burst['served']} | {burst['refused']} | {burst['other']} | {1000 * burst['refused_p50']:.1f} | "
        f"{1000 * burst['refused_p99']:.1f} | {burst['served_p50']:.3f} | {burst['served_p99']:.3f} |",
        "",
        "## Bad input",
        "",
        "| request | path | status (expected) | ms | server up after | error |",
        "|---|---|---|---|---|---|",
    ]
    for b in bad:
        lines.append(f"| {b['what']} | {b['path']} | {b['status']} ({b['expected']}) | {b['ms']:.1f} | "
                     f"{'yes' if b['healthy'] else 'NO'} | {b['error'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def save_plot(levels: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    x = [r["concurrency"] for r in levels]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("p50", "p50"), ("p95", "p95"), ("p99", "p99")):
        left.plot(x, [r[key] for r in levels], marker="o", label=label)
    left.set(xlabel="concurrent clients", ylabel="request latency (s)", title="Latency", xticks=x)
    left.legend()
    right.plot(x, [r["tokens_per_s"] for r in levels], marker="o", label="all streams")
    right.plot(x, [r["stream_tokens_per_s"] for r in levels], marker="o", label="one stream (median)")
    right.set(xlabel="concurrent clients", ylabel="tokens/s", title="Throughput", xticks=x)
    right.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(args: argparse.Namespace) -> dict:
    import httpx

    info = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "python": platform.python_version(),
            "numpy": np.__version__, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
            "load_before": load_average(), "requests": args.requests, "tokens": args.tokens,
            "threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    with tempfile.TemporaryDirectory(prefix="serving-bench-") as scratch:
        folder = Path(scratch)
        info["model"], prompts = write_model(folder, args.model)
        process, url = start_server(folder, args.tokens, folder / "server.log")
        try:
            levels = [asyncio.run(level(url, prompts, c, args.requests, args.tokens)) for c in LEVELS]
            burst = asyncio.run(overload(url, prompts, args.tokens))
            bad = asyncio.run(bad_inputs(url))
            assert httpx.get(url + "/health").status_code == 200
        finally:
            process.terminate()
            code = process.wait(timeout=60)
        info["load_after"] = load_average()
        info["server_exit"] = code
    return {"info": info, "levels": levels, "overload": burst, "bad": bad}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=REQUESTS, help="requests per concurrency level")
    parser.add_argument("--tokens", type=int, default=TOKENS, help="new tokens per request")
    parser.add_argument("--model", type=Path, help="a trained language.safetensors (default: random weights)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_REQUESTS} requests of {QUICK_TOKENS} tokens a level")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.tokens = QUICK_REQUESTS, QUICK_TOKENS
    if args.requests < 1 or args.tokens < 1:
        parser.error("--requests and --tokens must be at least 1")
    if args.model is not None and not args.model.is_file():
        parser.error(f"--model {args.model}: no such file (write it with `tito milestone capstone --track language`)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the server's engine thread, as the milestones run
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(results["info"], results["levels"], results["overload"], results["bad"]), encoding="utf-8")
    print(args.out.read_text(encoding="utf-8"))
    if not args.no_plot and save_plot(results["levels"], args.plot):
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
