"""Datasets for the milestones: readers for the official file formats and the data the course ships.

Course infrastructure, not an exercise: the milestones use these before the dataloader module.
`load_mnist()` reads the full MNIST where you have it (`data_dir`, `$TINYTORCH_DATA/mnist` or
`~/.tinytorch/data/mnist`) and otherwise the 5,000 real digits shipped in `mnist_subset/`.
`load_cifar10()` reads the official CIFAR-10 python batches (`data_dir`, `$TINYTORCH_DATA/cifar10`
or `~/.tinytorch/data/cifar10`, which `download_cifar10()` fills); nothing of CIFAR-10 ships.
`load_shakespeare()` reads the eight plays shipped in `shakespeare/` (or, when asked, the classic
Tiny Shakespeare, which `download_shakespeare()` fetches). What every reader shares (the cache
folder, checksums, the download, `DatasetError`) is in `tinytorch.datasets.files`.
"""

from .cifar10 import CIFAR10, download_cifar10, extract_cifar10, load_cifar10, read_batch
from .files import DatasetError, data_home
from .mnist import MNIST, download_mnist, load_mnist, read_idx
from .shakespeare import Shakespeare, download_shakespeare, load_shakespeare

__all__ = [
    "CIFAR10",
    "MNIST",
    "Shakespeare",
    "DatasetError",
    "data_home",
    "download_cifar10",
    "download_mnist",
    "download_shakespeare",
    "extract_cifar10",
    "load_cifar10",
    "load_mnist",
    "load_shakespeare",
    "read_batch",
    "read_idx",
]
