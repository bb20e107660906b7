"""`python -m benchmarks [NAME ...]`: run every benchmarks/*.py that defines `main()` (or the
named ones), one after the other, each with its default settings; each writes its results
under benchmarks/results/. A benchmark's own options: `python -m benchmarks.NAME --help`."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path


def available() -> list[str]:
    """The benchmarks: the modules of this folder that define main()."""
    names = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    return [n for n in names if "def main(" in (Path(__file__).parent / f"{n}.py").read_text(encoding="utf-8")]


def main(argv: list[str]) -> int:
    known = available()
    if any(arg.startswith("-") for arg in argv):
        print(__doc__.strip() + "\n\nbenchmarks: " + ", ".join(known))
        return 0 if set(argv) <= {"-h", "--help"} else 2
    unknown = [name for name in argv if name not in known]
    if unknown:
        print(f"no benchmark named {', '.join(unknown)}: choose from {', '.join(known)}", file=sys.stderr)
        return 2
    for name in argv or known:
        run = importlib.import_module(f"benchmarks.{name}").main
        print(f"== benchmarks/{name}.py", flush=True)
        sys.argv = [f"python -m benchmarks.{name}"]  # each with its defaults, not this command's words
        run([]) if inspect.signature(run).parameters else run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
