"""tito: the command line of the TinyTorch course."""

from autograder import __version__

__all__ = ["__version__"]
