"""`python -m benchmarks`: names the benchmarks it knows, and refuses a name it does not in one line."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _run(*args):
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_benchmark():
    done = _run("--help")
    assert done.returncode == 0, done.stderr
    assert "benchmarks: acceleration, caching, compression, gpt" in done.stdout and "Traceback" not in done.stderr


def test_an_unknown_name_is_one_line_that_lists_the_choices():
    done = _run("nope")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no benchmark named nope: choose from acceleration" in done.stderr
