"""The course's milestones: each `milestones/NAME.py` is a script that `tito milestone NAME`
runs on the student's package. This file only makes the folder a package, so that the import
contracts (pyproject.toml, [tool.importlinter]) can check that milestones use `tinytorch` alone;
the scripts still run as plain files (`python milestones/xor.py`)."""
