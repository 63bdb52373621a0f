"""Datasets: IDX/CSV readers, MNIST fetch+verify+cache, the sine set, preparation, loader.

    ds = load_dataset("mnist", val_split=0.1)          # host arrays, prepared
    train = DataLoader(ds.train.inputs, ds.train.y, 128, backend)   # on the device, shuffled
"""

from xnet.data.augment import Augment
from xnet.data.csv import read_csv
from xnet.data.datasets import DATASET_FORMS, Dataset, Split, load_dataset
from xnet.data.idx import read_idx, read_idx_pair, write_idx
from xnet.data.loader import DataLoader
from xnet.data.mnist import locate_mnist, mnist_cache_dir
from xnet.data.pixels import Pixels
from xnet.data.prepare import (
    NORMALIZE_MODES,
    Normalization,
    flatten,
    one_hot,
    prepare_images,
)
from xnet.data.synthetic import make_sine

__all__ = [
    "Augment",
    "DATASET_FORMS",
    "DataLoader",
    "Dataset",
    "NORMALIZE_MODES",
    "Normalization",
    "Pixels",
    "Split",
    "flatten",
    "load_dataset",
    "locate_mnist",
    "make_sine",
    "mnist_cache_dir",
    "one_hot",
    "prepare_images",
    "read_csv",
    "read_idx",
    "read_idx_pair",
    "write_idx",
]
