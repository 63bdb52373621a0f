"""xnet: a small neural-network framework whose one body of code runs on NumPy or CuPy."""

__version__ = "0.1.0"

from xnet import _moved

_moved.install()  # old module paths (xnet.compare, xnet.train.run, ...) still import; see xnet/_moved.py

def __getattr__(name: str):  # `import xnet` stays light: NumPy is imported only when asarray is used
    if name == "asarray":
        from xnet.interop.arrays import asarray

        return asarray
    raise AttributeError(f"module 'xnet' has no attribute {name!r}")
