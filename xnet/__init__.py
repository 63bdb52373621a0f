"""xnet: a small neural-network framework whose one body of code runs on NumPy or CuPy."""

__version__ = "0.1.0"

from xnet import _moved

_moved.install()  # old module paths (xnet.compare, xnet.train.run, ...) still import; see xnet/_moved.py
