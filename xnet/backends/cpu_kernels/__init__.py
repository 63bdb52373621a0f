"""Compiled CPU kernels (Numba) for the NumPy backend: fused passes the Array API reference does in many.

Nothing here imports Numba until the NumPy backend first asks for a kernel (loader.kernels()), so
`import xnet` stays as fast as before. Each kernel is a serial `@njit(nogil=True, cache=True)`
function over NumPy arrays; the backend gives each of its worker threads a share of the batch
(cpu_threads.run_chunks), because Numba's own parallel threads (GNU OpenMP in pip's wheels) keep
spinning after a kernel and take the core from the BLAS product that follows.

Files: loader.py (import, cache directory, on/off), flags.py (compile options), table.py (the
entry points the backend calls: outputs, thread split), norm_pool.py (batch norm + ReLU + 2x2
max-pool), windows.py (im2col, col2im), direct_conv.py (convolution of layers with few input
channels), winograd.py and winograd_grad.py (F(2x2, 3x3) convolution of wider 3x3 layers, forward
and backward), scratch.py (work arrays reused per thread), optim.py (optimizer updates), rows.py
(dropout, cross-entropy, ReLU, the batch gather), spin.py (the polling wait cpu_threads' workers
use before they sleep), probes.py (first-use checks against the reference, one per kernel and
dtype, so a run compiles only what it calls), optim_probe.py (the optimizer kernels' first-use check).
"""
