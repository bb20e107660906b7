"""The course's milestones, one script each (`python milestones/NAME.py`, `tito milestone NAME`).

Imported as a package by the tests and the benchmarks (`from milestones import mnist`), which
also lets the import contracts (pyproject.toml, [tool.importlinter]) check that milestones use
`tinytorch` alone; each script also runs on its own, importing `harness` (and `digits`) from
its own folder.
"""
