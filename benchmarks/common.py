"""What the benchmarks share: the machine's description, a worker process per thread count
(its BLAS pinned before NumPy loads) reporting JSON events, interleaved timing, and the
options every benchmark with workers takes."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from autograder.milestones import ALLOCATOR_ENV

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")     # see benchmarks/training.py's docstring


def cpu_name() -> str:
    """The CPU's model name as /proc/cpuinfo gives it, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. "0.9, 1.4, 2.1"."""
    try:
        return ", ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# --- the worker: one thread count, in its own process ------------------------------------------

def emit(**event) -> None:
    """One event of a worker to its parent: a JSON line on stdout."""
    print(json.dumps(event), flush=True)


def blas_pools() -> list[dict]:
    """The thread pools NumPy and torch loaded, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed (pip install threadpoolctl)"}]
    keys = ("internal_api", "prefix", "version", "architecture", "threading_layer", "num_threads")
    return [{key: pool.get(key) for key in keys if pool.get(key) is not None} for pool in threadpool_info()]


def blas_text(blas: list[dict]) -> str:
    parts = []
    for pool in blas:
        if "error" in pool:
            return pool["error"]
        name = f"{pool.get('internal_api', '?')} {pool.get('version') or ''}".strip()
        details = [f"{key} {pool[key]}" for key in ("prefix", "architecture", "threading_layer") if pool.get(key)]
        parts.append(f"{name} ({', '.join(details)}; {pool.get('num_threads')} threads)")
    return "; ".join(parts)


def ticker(name: str, total: int):
    """Report `name` at 0 of `total`; the callable returned reports one more each call."""
    done = 0

    def tick():
        nonlocal done
        done += 1
        emit(progress=name, done=done, total=total)

    emit(progress=name, done=0, total=total)
    return tick


def interleaved(first, second, repeats: int, warmup: int, tick=lambda: None) -> tuple[list, list]:
    """Time `first()` and `second()` alternately, `repeats` times each after `warmup` untimed
    calls of each: both see the same load on a shared machine."""
    for _ in range(warmup):
        first()
        second()
    times_first, times_second = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        first()
        times_first.append(time.perf_counter() - start)
        start = time.perf_counter()
        second()
        times_second.append(time.perf_counter() - start)
        tick()
    return times_first, times_second


def worker_env(threads: int) -> dict:
    """A worker's environment: its threads pinned, UNSET removed, and the allocator settings
    `tito milestone` runs the milestones with (autograder.milestones.ALLOCATOR_ENV)."""
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    env.update({name: str(threads) for name in THREAD_VARIABLES})
    env.update(ALLOCATOR_ENV)
    return env


def worker_text() -> str:
    """What worker_env does, said once for a result file."""
    unset = ", ".join(f"{name}={os.environ[name]}" for name in UNSET if name in os.environ) or "neither was set"
    allocator = " and ".join(f"{name}={value}" for name, value in ALLOCATOR_ENV.items())
    return ("Threads pinned in each worker process before NumPy (and torch, where it runs) loads: "
            f"{', '.join(THREAD_VARIABLES)} and torch.set_num_threads. The workers unset "
            f"{' and '.join(UNSET)} ({unset} in the parent's environment) and run with {allocator}, as "
            "`tito milestone` runs the milestones: glibc's malloc then keeps freed memory for the next array "
            "instead of returning it to the kernel (every side of a comparison runs with it).")


def run_worker(threads: int, repeats: int, warmup: int, only: list[str] | None, progress=None, *,
               module: str, extra: tuple[str, ...] = ()) -> dict:
    """Start `python -m module --worker` for one thread count (its BLAS pinned before NumPy
    loads), with the module's own `extra` options, and follow its progress events; its result."""
    command = [sys.executable, "-m", module, "--worker", "--threads", str(threads),
               "--repeats", str(repeats), "--warmup", str(warmup), *extra]
    if only:
        command += ["--models", ",".join(only)]
    process = subprocess.Popen(command, cwd=ROOT, env=worker_env(threads), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    result, tasks = None, {}
    for line in process.stdout:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "result" in event:
            result = event["result"]
        elif progress is not None and "progress" in event:
            name = f"{threads} thread{'s' if threads > 1 else ''}: {event['progress']}"
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=event["total"])
            progress.update(tasks[name], completed=event["done"])
    errors = process.stderr.read()
    if process.wait() != 0 or result is None:
        tail = "\n".join(errors.strip().splitlines()[-15:])
        raise RuntimeError(f"the {module} worker for {threads} thread(s) failed (exit {process.returncode}):\n{tail}")
    return result


def check_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--quick, --threads, --repeats and --warmup, as every benchmark with workers takes them:
    the thread counts parsed into a list; a bad value is the parser's one-line error."""
    if args.quick:
        args.repeats, args.warmup = 3, 1
    try:
        args.threads = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        parser.error(f"--threads takes comma-separated whole numbers such as 1,2, got {args.threads!r}")
    if not args.threads or min(args.threads) < 1:
        parser.error("--threads needs at least one thread count of 1 or more")
    if args.repeats < 1 or args.warmup < 0:
        parser.error(f"--repeats must be 1 or more and --warmup 0 or more, got {args.repeats} and {args.warmup}")
