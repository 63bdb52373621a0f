"""Benchmarks: xnet against PyTorch on the same machine, in the same run (`make bench`)."""
