"""How autograder/execute.py starts the kernel that runs every notebook."""

from __future__ import annotations

import nbformat

from autograder.execute import execute


def test_the_kernel_keeps_tornado_quiet_and_the_namespace_clean(tmp_path):
    """At shutdown ipykernel can log a ZMQError through tornado's logger onto the terminal the
    kernel shares with tito; the kernel starts with that logger silenced, by a line that leaves
    no name behind for the notebook."""
    code = ("import logging\n"
            "print(logging.getLogger('tornado').level, logging.getLogger('tornado.general').isEnabledFor(40))\n"
            "del logging\n"
            "print(sorted(name for name in globals() if not name.startswith('_')))")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    done = execute(notebook, cwd=tmp_path)
    (output,) = done.cells[0].outputs
    level, names = output["text"].splitlines()
    assert level == "100 False"
    assert names == "['In', 'Out', 'exit', 'get_ipython', 'open', 'quit']", names
