"""xnet: a small neural-network framework whose one body of code runs on NumPy or CuPy."""

__version__ = "0.1.0"
