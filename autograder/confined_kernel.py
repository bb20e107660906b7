"""nbgrader's autograde with its kernel started inside bubblewrap (autograder/confine.py).

`confine(config, sandbox)` swaps the Execute step of nbgrader's autograde for one whose kernel
manager wraps the kernel's command in `bwrap`: `ConfinedKernelManager._async_launch_kernel`,
the override point jupyter_client documents for launching kernels differently. nbgrader's
Execute passes its kernel manager class as a keyword, so configuration alone cannot change it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from functools import cache

from jupyter_client.manager import AsyncKernelManager
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from traitlets import Dict

from autograder.confine import Sandbox


class ConfinedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start inside bubblewrap."""

    sandbox = Dict(help="The Sandbox the kernel runs in, as a dict.").tag(config=True)

    @property
    def kernel_spec(self):
        # Interrupt (at a cell's time limit) by message: the kernel then signals itself. A
        # SIGINT to the process group would end the outer bwrap process, and the kernel with it.
        spec = super().kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"
        return spec

    async def _async_pre_start_kernel(self, **kw):
        # its sockets in a folder of their own: that folder is all of the grader it can reach
        if self.transport == "ipc":
            self.ip = os.path.join(tempfile.mkdtemp(prefix="", dir=os.path.dirname(os.path.abspath(self.ip))), "k")
        return await super()._async_pre_start_kernel(**kw)

    def cleanup_ipc_files(self):
        super().cleanup_ipc_files()
        if self.transport == "ipc":
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.ip))

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if self.transport != "ipc":  # a TCP port on the host is outside the kernel's network
            raise RuntimeError("a confined kernel needs the ipc transport (autograder.execute.kernel_sockets)")
        cwd = os.path.abspath(kw.get("cwd") or os.getcwd())
        kernel_cmd = Sandbox(**self.sandbox).command(
            kernel_cmd, cwd=cwd, connection_file=os.path.realpath(self.connection_file),
            sockets=os.path.dirname(os.path.abspath(self.ip)),
        )
        return await super()._async_launch_kernel(kernel_cmd, **kw)


@cache
def _confined(executor: type) -> type:
    """`executor` (nbgrader's Execute, or a subclass of it) starting its kernels confined."""

    class Confined(executor):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", ConfinedKernelManager)
            super().__init__(*args, **kwargs)

    Confined.__name__ = Confined.__qualname__ = f"Confined{executor.__name__}"
    return Confined


def confine(config, sandbox: Sandbox) -> None:
    """Make nbgrader's autograde, run with `config` (a traitlets Config), start its kernel in
    `sandbox`."""

    steps = config.Autograde.get("autograde_preprocessors") or Autograde.autograde_preprocessors.default()
    config.Autograde.autograde_preprocessors = [
        _confined(step) if isinstance(step, type) and issubclass(step, Execute) else step for step in steps
    ]
    config.ConfinedKernelManager.sandbox = sandbox.to_dict()
