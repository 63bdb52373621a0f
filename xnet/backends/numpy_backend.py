"""The default CPU backend: NumPy >= 2, whose main namespace follows the Array API standard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xnet.backends import cpu_memory, cpu_threads, dlpack, numpy_namespace, philox
from xnet.backends.base import Backend, T
from xnet.backends.cpu_kernels import loader
from xnet.backends.rng import Rng, Stream, bernoulli_threshold


class NumpyBackend(Backend):
    """NumPy on the CPU. The namespace is `numpy` itself, with no wrapper (wrappers cost time)."""

    name = "numpy"
    # window matrices of about 2 MB per chunk (conv.py) were fastest in the measurements on a
    # 2-core Zen 5 (1 MB L2 per core): smaller ones pay more Python overhead per sample
    chunk_bytes = 1 << 21
    # Memory-bound passes are many short array operations; each holds Python's lock between
    # calls, so two threads on small chunks queue for it (measured: 0.8 MB arrays, 1.5x slower
    # than one thread), and a hand-off to a sleeping thread costs ~45 us. So only passes over
    # more than 16 MB are split, into chunks of 4 MB, which mostly stay in cache and keep both
    # cores busy (with the rewrite that came with it, BatchNorm2D on (128, 32, 28, 28) went from
    # 3.6 to 2.0 ms forward and from 4.1 to 3.6 ms backward).
    pass_bytes = 1 << 22
    pass_split_bytes = 1 << 24

    def __init__(self, seed: int = 0):
        self.xp = numpy_namespace.xp  # numpy, a few wrappers called straight (numpy_namespace.py)
        self.device = "cpu"
        self.rng = Rng(self, seed)
        self.threads = cpu_threads.threads()  # decided once per process (see cpu_threads.py)
        cpu_memory.keep_freed_memory()  # no page faults on each step's temporaries (cpu_memory.py)
        self.remember()

    @property
    def device_name(self) -> str:
        return "cpu"

    def asarray(self, a: Any, dtype: Any = None) -> np.ndarray:
        a = dlpack.take(np.from_dlpack, a) if dlpack.foreign(a, np.ndarray) else a  # shares CPU memory
        return np.asarray(a, dtype=self.dtype(dtype) if dtype is not None else None)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def owns(self, a: Any) -> bool:
        return isinstance(a, np.ndarray)

    def host_buffer(self, a: np.ndarray) -> np.ndarray:
        return a

    def random_words(self, key: philox.Key, epoch: int, start: int, n: int) -> np.ndarray:
        # NumPy's own Philox in C: the reference's ~460 array operations per draw cost 10-100x more
        return philox.numpy_words(key, epoch, start, n)

    def matmul(self, a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        # OpenBLAS runs on one thread (its spinning workers stall on busy machines); large
        # products are split over xnet's own sleeping-when-idle threads instead
        return cpu_threads.matmul(a, b, out)

    def matmul_for(self, m: int, k: int, n: int) -> Callable[..., np.ndarray]:
        # a product too small to split is NumPy's own: two Python calls fewer than matmul's route to it
        if cpu_threads.threads() == 1 or m * k * n < cpu_threads.PARALLEL_MIN_MACS:
            return np.matmul
        return self.matmul

    def background(self, fn: Callable[[], T], nbytes: int) -> Callable[[], T]:
        return cpu_threads.background(fn, nbytes)

    def background_worth(self, nbytes: int) -> bool:
        return cpu_threads.background_worth(nbytes)

    def run_chunks(self, fn: Callable[[int, int], None], count: int) -> None:
        cpu_threads.run_chunks(fn, count)

    def warm_up(self) -> None:
        # importing Numba and the kernel table takes 0.2-0.5 s: done beside the dataset's reading
        loader.load_in_background()

    # -- compiled kernels (cpu_kernels/, Numba): each returns None where it does not run, and the
    # caller's Array API reference body runs instead. Numba is imported at the first of these calls.

    def fused_im2col(self, xpad: Any, stride: tuple, dilation: tuple, buf: Any) -> np.ndarray | None:
        k = loader.kernels()
        return None if k is None else k.im2col(xpad, stride, dilation, buf)

    def fused_col2im(self, cols: Any, stride: tuple, dilation: tuple, out: Any) -> np.ndarray | None:
        k = loader.kernels()
        return None if k is None else k.col2im(cols, stride, dilation, out)

    def fused_conv2d(
        self, xpad: Any, w: Any, bias: Any, stride: tuple, dilation: tuple, groups: int, out_hw: tuple
    ) -> np.ndarray | None:
        if stride != (1, 1) or dilation != (1, 1) or groups != 1:
            return None
        k = loader.kernels()
        return None if k is None else k.conv2d(self, xpad, w, bias, out_hw)

    def fused_conv2d_backward(self, xpad: Any, w: Any, g: Any, pads: tuple, x_shape: tuple, want_dx: bool) -> Any:
        k = loader.kernels()
        return None if k is None else k.conv2d_backward(self, xpad, w, g, pads, x_shape, want_dx)

    def fused_channel_moments(self, x: Any) -> tuple[np.ndarray, np.ndarray] | None:
        k = loader.kernels()
        return None if k is None else k.channel_moments(self, x)

    def fused_norm_relu_pool(self, x: np.ndarray, scale: Any, shift: Any) -> tuple[np.ndarray, np.ndarray] | None:
        k = loader.kernels()
        return None if k is None else k.norm_relu_pool(self, x, scale, shift)

    def fused_pool_grad_sums(self, g: Any, x: Any, winner: Any, mean: Any) -> tuple[np.ndarray, np.ndarray] | None:
        k = loader.kernels()
        return None if k is None else k.pool_grad_sums(self, g, x, winner, mean)

    def fused_pool_grad_input(self, g: Any, x: Any, winner: Any, terms: tuple | None) -> np.ndarray | None:
        k = loader.kernels()
        return None if k is None else k.pool_grad_input(self, g, x, winner, terms)

    def optimizer_kernel(
        self, name: str, arrays: tuple[Any, ...], scalars: dict[str, Any], cache: dict | None = None
    ) -> bool:
        """The compiled update `name` on `arrays` (cpu_kernels/optim.py) where it takes them; else False.

        With a `cache` (an optimizer's), the kernel is bound to the arrays once and kept there: an
        optimizer updates the same flat buffers every step, and checking and splitting them anew
        cost ~5 us a step. The entry holds the arrays, so their ids cannot be reused while it lives."""
        if cache is None:
            launch = self._bind_update(name, arrays)
        else:
            key = (name, *map(id, arrays))
            made = cache.get(key)
            if made is None:
                made = cache[key] = (arrays, self._bind_update(name, arrays))
            launch = made[1]
        if launch is None:
            return False
        launch(scalars)
        return True

    def _bind_update(self, name: str, arrays: tuple[Any, ...]) -> Callable[..., None] | None:
        k = loader.kernels()
        return None if k is None or not isinstance(arrays[0], np.ndarray) else k.optimizer(name, arrays)

    def fused_relu(self, x: Any) -> tuple[np.ndarray, np.ndarray] | None:
        k = loader.kernels()
        return None if k is None else k.relu(self, x)

    def fused_bias_activation(self, z: Any, bias: Any, kind: str) -> np.ndarray | None:
        k = loader.kernels()
        return None if k is None else k.bias_activation(self, z, bias, kind)

    def fused_dense_activation(self, kind: str, shape: tuple[int, int], dtype: Any) -> Any:
        k = loader.kernels()
        return None if k is None else k.dense_activation_kernels(self, kind, shape, np.dtype(dtype))

    def fused_activation_grad(self, g: Any, y: Any, kind: str, sums: bool) -> Any:
        k = loader.kernels()
        return None if k is None else k.activation_grad(self, g, y, kind, sums)

    def fused_dropout(self, x: Any, stream: Stream, keep: float, scale: float) -> tuple[np.ndarray, np.ndarray] | None:
        k = loader.kernels()
        if k is None:
            return None
        shape = tuple(x.shape)
        words = lambda first, n: self.random_words(stream.key, stream.epoch, first, n)  # noqa: E731
        return k.dropout(self, x, lambda: stream.take(shape), words, bernoulli_threshold(keep), scale)

    def fused_cross_entropy(self, shape: tuple[int, ...], dtype: Any) -> Any:
        k = loader.kernels()
        return None if k is None else k.cross_entropy_kernels(shape, np.dtype(dtype))

    def fused_softmax_cross_entropy(self, z: Any, target: Any, smoothing: float, scale: float) -> Any:
        k = loader.kernels()
        return None if k is None else k.softmax_cross_entropy(self, z, target, smoothing, scale)

    def fused_take_normalized(self, raw: Any, index: Any, offset: float, scale: float) -> np.ndarray | None:
        k = loader.kernels()
        return None if k is None else k.take_normalized(raw, index, offset, scale)
