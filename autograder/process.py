"""The grading process's entry point: `python -m autograder.process --memory-mb N`.

It sets the process's limits first and only then imports the worker (autograder/worker.py),
so that the memory limit covers nbgrader, nbformat and everything else the worker loads, as
it covers the submission's code: a limit too small even for those imports stops the process
at its start, and the pool (autograder/pool.py) reports that for every job it held.
"""

from __future__ import annotations

import argparse
import resource
import sys

MAX_FILE_BYTES = 1 << 30


def set_limits(memory_mb: int) -> None:
    """RLIMIT_AS of `memory_mb` (0: none), no file over 1 GiB, no core dumps; inherited by the
    kernel the worker starts, through bubblewrap too."""
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_BYTES, MAX_FILE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, default=0)
    args = parser.parse_args(argv)
    set_limits(args.memory_mb)
    from autograder.worker import serve  # heavy: nbgrader, imported under the limits just set

    serve(args.memory_mb)


if __name__ == "__main__":
    sys.exit(main())
