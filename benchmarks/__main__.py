"""`python -m benchmarks [NAME ...]`: run every benchmarks/*.py that defines `main()` (or the
named ones), one after the other; each writes its results under benchmarks/results/."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_"))
    ran = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        if callable(getattr(module, "main", None)):
            print(f"== benchmarks/{name}.py", flush=True)
            module.main()
            ran += 1
    if not ran:
        print("no benchmark defines main()", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
