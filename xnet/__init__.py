"""xnet: a small neural-network framework whose one body of code runs on NumPy or CuPy."""

__version__ = "0.1.0"


def __getattr__(name: str):  # `import xnet` stays light: NumPy is imported only when asarray is used
    if name == "asarray":
        from xnet.interop.arrays import asarray

        return asarray
    raise AttributeError(f"module 'xnet' has no attribute {name!r}")
