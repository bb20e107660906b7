"""tito: the command line of the TinyTorch course."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tinytorch")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
