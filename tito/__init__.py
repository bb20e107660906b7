"""tito: the command line of the TinyTorch course (a thin layer over the `autograder` library)."""
