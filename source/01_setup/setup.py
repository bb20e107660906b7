# %% [markdown]
# # Module 01: Setup
#
# Welcome to TinyTorch. Over twenty modules you will build a small PyTorch out of NumPy:
# tensors, layers, losses, optimizers, automatic differentiation, convolutions, attention,
# a GPT. Each module answers the problem the previous one left open, and everything you
# write is exported into **your own** `tinytorch` package, which later modules import.
#
# This first module answers the most basic problem of all: **my environment must compute**.
# Before we build a framework we need to know that Python and NumPy are here, recent
# enough, and that they compute what we think they compute. You will also tell the course
# who you are, so that your submissions carry your name.
#
# How a module works:
#
# 1. Read the text; run the examples.
# 2. Find each `# TODO`: it says what to write. Replace the `raise NotImplementedError(...)`
#    line under it with your code. Stuck? `tito hint 01` in a terminal gives a hint for your
#    first unfinished TODO: a nudge first, then the idea, then a sketch, one per call.
# 3. Run the test cell under it. A failing test tells you what it expected and what came.
# 4. From a terminal: `tito test 01` runs the same tests the grader runs (minus a few hidden
#    ones), and `tito module complete 01` exports your code into your package.
#
# Cells that start with `#| export` become part of your package. Cells that start with
# `#| test:` are graded; don't edit them (the grader restores them anyway).

# %%
#| export
import platform

import numpy as np

# %% [markdown]
# ## Who you are
#
# Every submission carries your identity. Return it from `personal_info()` as a dictionary
# with a `name` and an `email`. `tito module complete 01` reads it from your package and
# stores it in your workspace, and `tito submit` puts it on every submission.
#
# ```python
# >>> personal_info()
# {'name': 'Grace Hopper', 'email': 'grace@navy.mil'}
# ```

# %%
#| export
def personal_info():
    """Your name and email, used to label your submissions.

    Returns:
        dict with the keys "name" and "email" (both non-empty strings).
    """
    # TODO: return a dict with your own "name" and "email".
    ### BEGIN SOLUTION
    return {"name": "Ada Lovelace", "email": "ada@example.org"}
    ### END SOLUTION

# %%
#| test: setup_identity (1 point)
def test_setup_identity():
    info = personal_info()
    assert isinstance(info, dict), (
        f"personal_info() should return a dict, got {type(info).__name__}.")
    for key in ("name", "email"):
        assert isinstance(info.get(key), str) and info[key].strip(), (
            f"personal_info() needs a non-empty string under '{key}', "
            f"got {info.get(key)!r}."
        )
    user, _, domain = info["email"].partition("@")
    assert user and "." in domain, (
        f"'{info['email']}' does not look like an email address (name@domain.tld)."
    )
    print(f"Hello, {info['name']}!")
test_setup_identity()
### BEGIN HIDDEN TESTS
assert set(personal_info()) >= {"name", "email"}
### END HIDDEN TESTS

# %% [markdown]
# ## Versions are numbers, not strings
#
# TinyTorch needs Python 3.10 or newer and NumPy 1.26 or newer. Versions are written as text,
# `"1.26.4"`, and the tempting check is wrong:
#
# ```python
# >>> "1.9.0" >= "1.26.0"      # compares character by character: '9' > '2'
# True
# >>> (1, 9, 0) >= (1, 26, 0)  # compares numbers, left to right
# False
# ```
#
# Write `parse_version(text)` that turns a version string into a tuple of integers, so
# that Python's tuple comparison does the right thing. Real version strings carry
# suffixes: `"2.0.0rc1"` is a release candidate of 2.0.0, and `"1.26.4+cpu"` names a
# build. Keep only the leading digits of each dotted part: `(2, 0, 0)` and `(1, 26, 4)`.

# %%
#| export
def parse_version(text):
    """Turn "1.26.4" (or "2.0.0rc1", "2.13.0+cpu") into a tuple of ints, e.g. (1, 26, 4).

    Args:
        text: a version string with dot-separated parts.
    Returns:
        tuple of ints, one per dotted part; a part's non-digit suffix is dropped.
    """
    # TODO: split the text on ".", keep the leading digits of each part, convert to int.
    ### BEGIN SOLUTION
    numbers = []
    for part in text.split("+")[0].split("."):
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        numbers.append(int(digits))
    return tuple(numbers)
    ### END SOLUTION

# %%
#| test: setup_parse_version (2 points)
def test_setup_parse_version():
    cases = {"1.26.4": (1, 26, 4), "3.11": (3, 11), "10.2.1": (10, 2, 1)}
    for text, expected in cases.items():
        got = parse_version(text)
        assert got == expected, (
            f"parse_version({text!r}) should be {expected}, got {got!r}.")
    assert parse_version("1.9.0") < parse_version("1.26.0"), (
        "1.9.0 is older than 1.26.0: compare numbers, not characters."
    )
test_setup_parse_version()
### BEGIN HIDDEN TESTS
# Real version strings: pre-releases, builds, multi-digit parts; only leading digits count.
for _text, _want in {"2.0.0rc1": (2, 0, 0), "2.13.0+cpu": (2, 13, 0),
                     "1.26.4+cu118": (1, 26, 4), "3.12.0b4": (3, 12, 0),
                     "1.10.0a12": (1, 10, 0), "10.2": (10, 2), "0.9": (0, 9),
                     "2024.10.15": (2024, 10, 15)}.items():
    _got = parse_version(_text)
    assert _got == _want and type(_got) is tuple, (
        f"parse_version({_text!r}) should be the tuple {_want}, got {_got!r}: keep the "
        "leading digits of each dotted part and drop the rest of that part.")
    assert all(type(_n) is int for _n in _got), (
        f"parse_version({_text!r}) = {_got!r}: every part must be an int.")
for _older, _newer in [("9.12", "10.2"), ("1.9.12", "1.26.4"), ("2.0.0rc1", "2.0.1"),
                       ("1.26", "1.26.1")]:
    assert parse_version(_older) < parse_version(_newer), (
        f"{_older} is older than {_newer}, but parse_version gives {parse_version(_older)} "
        f"and {parse_version(_newer)}.")
### END HIDDEN TESTS

# %% [markdown]
# ## Does this machine compute?
#
# `system_info()` gathers what a bug report needs, and `check_environment()` turns it into
# a verdict: a list of problems, empty when all is well. It checks the versions, and that
# NumPy really computes: a 2×2 matrix product you can do by hand,
#
# $$\begin{pmatrix}1&2\\3&4\end{pmatrix}\begin{pmatrix}5&6\\7&8\end{pmatrix} =
# \begin{pmatrix}19&22\\43&50\end{pmatrix}$$
#
# in float32, the precision deep learning uses.

# %%
#| export
MIN_PYTHON = (3, 10)
MIN_NUMPY = (1, 26)


def system_info():
    """What a bug report needs: versions and the machine.

    Returns:
        dict with "python" and "numpy" (version strings), "platform" (str) and
        "cpus" (int).
    """
    import os

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 1,
    }


def check_environment(info=None):
    """List what is wrong with this environment; an empty list means ready.

    Args:
        info: a dict like system_info()'s (default: this machine's).
    Returns:
        list of one-line problem descriptions.
    """
    info = info if info is not None else system_info()
    problems = []
    # TODO: append a problem when info["python"] is older than MIN_PYTHON or
    #       info["numpy"] is older than MIN_NUMPY, and when a float32 2x2 matmul does
    #       not give the product above.
    ### BEGIN SOLUTION
    if parse_version(info["python"])[:2] < MIN_PYTHON:
        problems.append(f"Python {info['python']} is older than {'.'.join(map(str, MIN_PYTHON))}")
    if parse_version(info["numpy"])[:2] < MIN_NUMPY:
        problems.append(f"NumPy {info['numpy']} is older than {'.'.join(map(str, MIN_NUMPY))}")
    a = np.array([[1, 2], [3, 4]], dtype=np.float32)
    b = np.array([[5, 6], [7, 8]], dtype=np.float32)
    if not np.array_equal(a @ b, np.array([[19, 22], [43, 50]], dtype=np.float32)):
        problems.append("NumPy's float32 matrix product gives a wrong result")
    ### END SOLUTION
    return problems

# %%
print(system_info())
print(check_environment() or "Your environment is ready.")

# %%
#| test: setup_environment (2 points)
def test_setup_environment():
    problems = check_environment()
    assert problems == [], (
        f"This machine should pass, but check_environment() reported {problems}.")
    old = dict(system_info(), python="3.8.10")
    assert len(check_environment(old)) == 1, (
        "Python 3.8.10 is older than 3.10: check_environment should report exactly one "
        f"problem, got {check_environment(old)}."
    )
test_setup_environment()
### BEGIN HIDDEN TESTS
# Each case: the versions that replace this machine's, and how many problems they are.
# The minimum versions themselves (3.10, 1.26) are fine; one step below is not.
for _versions, _count in [({"numpy": "1.9.3"}, 1), ({"numpy": "1.25.2"}, 1),
                          ({"numpy": "0.99.0"}, 1), ({"python": "3.9.18"}, 1),
                          ({"python": "2.7.18", "numpy": "1.21.0"}, 2),
                          ({"python": "3.10.0"}, 0), ({"python": "3.10"}, 0),
                          ({"python": "3.10.14+local"}, 0), ({"numpy": "1.26.0"}, 0),
                          ({"numpy": "1.26.4"}, 0), ({"numpy": "2.0.0rc1"}, 0),
                          ({"python": "3.10.0", "numpy": "1.26.0"}, 0)]:
    _info = dict(system_info(), **_versions)
    _before = dict(_info)
    _got = check_environment(_info)
    assert isinstance(_got, list) and len(_got) == _count, (
        f"check_environment with {_versions}: expected {_count} problem(s), got {_got!r}. "
        "Compare parse_version(...)[:2] with the minimum, as tuples of numbers; report "
        "every problem, not only the first.")
    assert all(isinstance(_p, str) and "\n" not in _p for _p in _got), (
        f"check_environment with {_versions}: each problem is a one-line string, "
        f"got {_got!r}.")
    assert _info == _before, (
        f"check_environment changed the dict it was given: {_before} became {_info}. "
        "Read info; never write into it.")
### END HIDDEN TESTS

# %% [markdown]
# ## What you built
#
# Your package now has `tinytorch.core.setup` with three functions. Run `tito test 01`, then
# `tito module complete 01`: it exports them and records who you are. Next, module 02 gives
# data a structure: the `Tensor`.
