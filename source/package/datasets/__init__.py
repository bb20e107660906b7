"""Datasets for the milestones: readers for the official file formats and the data the course ships.

Course infrastructure, not an exercise: the milestones use these before the dataloader module.
`load_mnist()` reads the full MNIST where you have it (`data_dir`, `$TINYTORCH_DATA/mnist` or
`~/.tinytorch/data/mnist`) and otherwise the 5,000 real digits shipped in `mnist_subset/`.
"""

from .mnist import MNIST, DatasetError, download_mnist, load_mnist, read_idx

__all__ = ["MNIST", "DatasetError", "download_mnist", "load_mnist", "read_idx"]
