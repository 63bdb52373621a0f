"""The Backend: the one object that knows which array library xnet runs on.

Its optional fast-path methods (fused_*, *_update) are how layers, losses and optimizers, which
all hold their backend, find a one-launch kernel; the absent answer (None, False) means "run the
reference body". fast_paths.py documents that door.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Hashable
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from xnet.backends import kernel_check, philox
from xnet.backends.rng import Rng, Stream

Array = Any  # an array of the backend's namespace
T = TypeVar("T")
DTYPE_NAMES = ("float32", "float64")


class BackendUnavailable(RuntimeError):
    """A requested backend cannot run here; the message says why and what to install."""


class Backend:
    """An array library on one device: its Array API namespace, transfers, RNG and kernels.

    Layers never ask which library they run on: they call `backend.xp.<function>` and create
    arrays through `zeros`/`ones`/`full`/`arange`/`asarray`, which place them on `device`.
    """

    name: str = "abstract"
    xp: ModuleType
    device: Any = None
    rng: Rng
    # Batch-chunked kernels (convolution) keep each chunk's work matrix under this size. On a
    # GPU only memory matters (one large kernel beats many small ones); the CPU backend wants
    # chunks that stay in the core's cache.
    chunk_bytes: int = 1 << 26
    threads: int = 1  # how many chunks run at once (run_chunks)
    # True where every array operation is a kernel launch whose fixed cost outweighs its
    # arithmetic at MNIST scale (CuPy, and the strict backend standing in for it): layers then
    # take the formulation with the fewest operations (conv_wide.py, a few whole-batch passes)
    # over the cache-sized chunks that are fastest on a CPU. Both give the same values up to
    # float rounding; tests compare them.
    launch_bound: bool = False
    # memory-bound passes (pass_chunks) over more than pass_split_bytes go in pass_bytes chunks
    pass_bytes: int = 1 << 26
    pass_split_bytes: int = 1 << 26

    # the live backends, newest last: backend_of(array) finds its array's backend here (weak, so
    # a backend nobody holds is not kept alive)
    _live: list[weakref.ref[Backend]] = []

    # -- identity -----------------------------------------------------------------------------

    def remember(self) -> None:
        """Let `backend_of` find this backend from its arrays (each backend's __init__ calls it)."""
        Backend._live = [r for r in Backend._live if r() is not None] + [weakref.ref(self)]

    def owns(self, a: Array) -> bool:
        """Whether `a` is an array of this backend's library on its device."""
        return False

    @property
    def device_name(self) -> str:
        """Human-readable device, e.g. 'cpu', 'cuda:0'."""
        return str(self.device)

    def __repr__(self) -> str:
        return f"<Backend {self.name} on {self.device_name}>"

    def dtype(self, name: str | Any) -> Any:
        """The namespace dtype for 'float32'/'float64'/'int64'/'bool' (or a dtype, unchanged)."""
        if isinstance(name, str):
            if name not in (*DTYPE_NAMES, "int64", "int32", "uint8", "bool"):
                raise ValueError(f"unknown dtype {name!r}; expected one of {DTYPE_NAMES}")
            return getattr(self.xp, name)
        return name

    # -- creation and transfer --------------------------------------------------------------------

    def asarray(self, a: Any, dtype: str | Any = None) -> Array:
        """Put a host array (or a Python scalar/sequence) on the device, optionally cast."""
        raise NotImplementedError

    def to_numpy(self, a: Array) -> np.ndarray:
        """Copy a device array to a host NumPy array."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait until queued device work is done (a no-op on the CPU)."""

    def host_buffer(self, a: Array) -> np.ndarray | None:
        """A NumPy array sharing memory with the contiguous device array `a`, for MPI to read and
        write in place; None where device memory is not host memory (a GPU)."""
        return None

    def zeros(self, shape: tuple[int, ...], dtype: str | Any = "float32") -> Array:
        """Zeros of `shape` on the device."""
        return self.xp.zeros(shape, dtype=self.dtype(dtype), device=self.device)

    def ones(self, shape: tuple[int, ...], dtype: str | Any = "float32") -> Array:
        """Ones of `shape` on the device."""
        return self.xp.ones(shape, dtype=self.dtype(dtype), device=self.device)

    def full(self, shape: tuple[int, ...], value: float, dtype: str | Any = "float32") -> Array:
        """`value` repeated over `shape` on the device."""
        return self.xp.full(shape, value, dtype=self.dtype(dtype), device=self.device)

    def empty(self, shape: tuple[int, ...], dtype: str | Any = "float32") -> Array:
        """An uninitialised array of `shape` on the device (every element must be written)."""
        return self.xp.empty(shape, dtype=self.dtype(dtype), device=self.device)

    def arange(self, n: int, dtype: str | Any = "int64") -> Array:
        """0..n-1 on the device."""
        return self.xp.arange(n, dtype=self.dtype(dtype), device=self.device)

    def memory_description(self) -> str:
        """The device and how much memory it has, for out-of-memory messages: 'cpu (23.4 GiB of RAM)'."""
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # not a POSIX system
            return self.device_name
        return f"{self.device_name} ({total / 2**30:.1f} GiB of RAM)"

    def memory_pool_reset(self) -> None:
        """Hand the device memory a caching pool keeps for reuse back, so memory_pool_bytes() measures from here."""

    def memory_pool_bytes(self) -> int | None:
        """Bytes the device memory pool holds (in use and cached), or None where there is no pool (the CPU)."""
        return None

    def item(self, a: Array) -> float:
        """A 0-d device array as a Python float (one host read: a sync on GPUs)."""
        return float(self.to_numpy(a))

    # -- kernels the standard lacks (generic versions; backends may override) ----------------------

    def random_words(self, key: philox.Key, epoch: int, start: int, n: int) -> Array:
        """Words start..start+n-1 of the Philox stream (key, epoch): uint64 (n,) on the device.

        This is the Array API reference (philox.stream_words); a backend may compute the same
        words faster, and tests hold it to them."""
        return philox.stream_words(self.xp, self.device, key, epoch, start, n)

    # -- fused fast paths: None means "no kernel for these arrays here", and the caller runs its reference body

    def warm_up(self) -> None:
        """Start getting the fast paths ready on a thread (a training run calls this before reading its data,
        which hides the time); a no-op where there is nothing to prepare."""

    def fused_relu(self, x: Array) -> tuple[Array, Array] | None:
        """(x * mask, mask), both shaped like x, mask = [x > 0] in x's dtype (ReLU's float mask), in one
        pass; or None."""
        return None

    def fused_bias_activation(self, z: Array, bias: Array | None, kind: str) -> Array | None:
        """z (N, K) -> act(z + bias) written into z, act "relu", "sigmoid" or "tanh" as the
        activation layers compute it (bias None: none added); or None, z untouched."""
        return None

    def fused_activation_grad(self, g: Array, y: Array, kind: str, sums: bool) -> tuple[Array, Array | None] | None:
        """Gradient g (N, K) at the output y (N, K) of activation `kind` -> (gradient at its input (N, K),
        that gradient summed over N (K,) when `sums`, else None), in one pass; or None."""
        return None

    def fused_dense_activation(self, kind: str, shape: tuple[int, int], dtype: Any) -> Any | None:
        """For outputs (N, K) = `shape` of `dtype` of a Dense followed by activation `kind`: an object
        with activate(z, bias) -> fused_bias_activation's answer (None: not these arrays, nothing
        changed), takes(g) -> whether grad takes the gradient g, and grad(g, y, sums=None) ->
        (gradient at the activation's input (N, K), its sums over N (K,), written into `sums` where
        it can). Asked once per batch shape, so its methods check almost nothing per call; or None,
        and the caller uses fused_bias_activation and fused_activation_grad."""
        return None

    def fused_dropout(self, x: Array, stream: Stream, keep: float, scale: float) -> tuple[Array, Array] | None:
        """(x * mask, mask), both shaped like x, mask = stream.bernoulli(x.shape, keep, x.dtype) * scale, in one
        pass that advances `stream` as that draw does; or None (then `stream` has not moved)."""
        return None

    def fused_take_normalized(self, raw: Array, index: Array, offset: float, scale: float) -> Array | None:
        """Rows `index` (B,) of uint8 pixels raw (N, ...) -> float32 (B, ...) (raw - offset) / scale with
        Normalization.apply's float32 steps (offset 0 or scale 1: that step skipped), in one pass; or None."""
        return None

    def fused_cross_entropy(self, shape: tuple[int, ...], dtype: Any) -> Any | None:
        """For logits of `shape` (N, K) and `dtype` against integer labels (N,): an object with
        run(z, labels, smoothing, scale) -> fused_softmax_cross_entropy's answer for arrays of exactly
        that shape (None: not these arrays). Asked once per batch shape, so run checks almost nothing
        per call; or None, and the caller uses fused_softmax_cross_entropy."""
        return None

    def fused_softmax_cross_entropy(
        self, z: Array, target: Array, smoothing: float, scale: float
    ) -> tuple[Array, Array] | None:
        """Logits (N, K), labels (N,) or soft targets (N, K) -> (terms (N,), d sum(terms)/dz * scale (N, K))
        of CrossEntropy with `smoothing`, in one pass; or None. The caller has checked the targets."""
        return None

    # -- fused optimizer updates (fast_paths.py): True when done in place, False when absent here.
    # Each passes its arrays and keyword scalars (fast_paths.OPTIMIZER_SCALARS) to optimizer_kernel,
    # which a backend with a kernel set overrides; a backend may also override one method alone.

    def adam_update(self, param: Array, grad: Array, m: Array, v: Array, **scalars: Any) -> bool:
        """One Adam/AdamW step (xnet/optim/adam.py) in place. Scalars: b1, one_minus_b1, b2, one_minus_b2,
        eps_hat, step_size, wd, shrink (floats), decay (NO/COUPLED/DECOUPLED_DECAY); or False."""
        return self.optimizer_kernel("adam", (param, grad, m, v), scalars)

    def sgd_update(self, param: Array, grad: Array, **scalars: Any) -> bool:
        """One SGD step without momentum (xnet/optim/sgd.py) in place. Scalars: lr, wd, decay; or False."""
        return self.optimizer_kernel("sgd", (param, grad), scalars)

    def sgd_momentum_update(self, param: Array, grad: Array, velocity: Array, **scalars: Any) -> bool:
        """One SGD step with momentum (xnet/optim/sgd.py) in place. Scalars: lr, mu, wd, decay,
        nesterov (bool); or False."""
        return self.optimizer_kernel("sgd_momentum", (param, grad, velocity), scalars)

    def rmsprop_update(self, param: Array, grad: Array, mean_sq: Array, **scalars: Any) -> bool:
        """One RMSprop step (xnet/optim/rmsprop.py) in place. Scalars: lr, rho, one_minus_rho, eps, wd,
        decay; or False."""
        return self.optimizer_kernel("rmsprop", (param, grad, mean_sq), scalars)

    def adagrad_update(self, param: Array, grad: Array, sum_sq: Array, **scalars: Any) -> bool:
        """One Adagrad step (xnet/optim/adagrad.py) in place. Scalars: lr, eps, wd, decay; or False."""
        return self.optimizer_kernel("adagrad", (param, grad, sum_sq), scalars)

    def adadelta_update(self, param: Array, grad: Array, square_avg: Array, acc_delta: Array, **scalars: Any) -> bool:
        """One Adadelta step (xnet/optim/adadelta.py) in place. Scalars: lr, rho, one_minus_rho, eps, wd,
        decay; or False."""
        return self.optimizer_kernel("adadelta", (param, grad, square_avg, acc_delta), scalars)

    def adamax_update(self, param: Array, grad: Array, exp_avg: Array, exp_inf: Array, **scalars: Any) -> bool:
        """One Adamax step (xnet/optim/adamax.py) in place. Scalars: b1, one_minus_b1, b2, eps, step_size, wd,
        decay; or False."""
        return self.optimizer_kernel("adamax", (param, grad, exp_avg, exp_inf), scalars)

    def nadam_update(self, param: Array, grad: Array, exp_avg: Array, exp_avg_sq: Array, **scalars: Any) -> bool:
        """One NAdam step (xnet/optim/nadam.py) in place. Scalars: b1, one_minus_b1, b2, one_minus_b2, eps,
        sqrt_bc2, grad_step, momentum_step, wd, shrink, decay; or False."""
        return self.optimizer_kernel("nadam", (param, grad, exp_avg, exp_avg_sq), scalars)

    def radam_update(self, param: Array, grad: Array, exp_avg: Array, exp_avg_sq: Array, **scalars: Any) -> bool:
        """One RAdam step (xnet/optim/radam.py) in place. Scalars: b1, one_minus_b1, b2, one_minus_b2, eps,
        step_size, rectified (bool), wd, shrink, decay; or False."""
        return self.optimizer_kernel("radam", (param, grad, exp_avg, exp_avg_sq), scalars)

    def lion_update(self, param: Array, grad: Array, exp_avg: Array, **scalars: Any) -> bool:
        """One Lion step (xnet/optim/lion.py) in place. Scalars: lr, b1, one_minus_b1, b2, one_minus_b2, wd,
        shrink, decay; or False."""
        return self.optimizer_kernel("lion", (param, grad, exp_avg), scalars)

    def optimizer_kernel(
        self, name: str, arrays: tuple[Array, ...], scalars: dict[str, Any], cache: dict | None = None
    ) -> bool:
        """Optimizer kernel `name` run on `arrays` (param, grad, *state; one shape) with `scalars`, in
        place, where this backend has it and it takes these arrays: True; else False, nothing changed.
        `cache`: a dict the caller keeps as long as it updates these arrays (an optimizer's), in which
        a backend may keep what it prepared for them (the NumPy backend: its kernel bound to them)."""
        return False

    def kernel_ok(self, key: Hashable, probe: Callable[[], str | None], what: str = "", library: str = "CUDA") -> bool:
        """Whether this backend's kernel `key` may run: `probe()` (None, or what differed from the
        reference) passed at its first use; else one warning naming `what` (default f"{key} kernel")
        and `library`, and False from then on. The verdict is kept on this backend, per key."""
        verdicts: dict[Hashable, bool] = self.__dict__.setdefault("_kernel_verdicts", {})
        if key not in verdicts:
            verdicts[key] = kernel_check.first_use_ok(what or f"{key} kernel", probe, library)
        return verdicts[key]

    def fused_im2col(self, xpad: Array, stride: tuple[int, int], dilation: tuple[int, int], buf: Array) -> Array | None:
        """buf (G, kh, kw, C/G, N, Ho, Wo) filled with the windows of the padded input (N, C, Hp, Wp),
        as nn/windows.py's im2col fills it; or None."""
        return None

    def fused_col2im(self, cols: Array, stride: tuple[int, int], dilation: tuple[int, int], out: Array) -> Array | None:
        """out (C, N, Hp, Wp) = windows (G, kh, kw, C/G, N, Ho, Wo) added back, as nn/windows.py's col2im; or None."""
        return None

    def fused_conv2d(
        self, xpad: Array, w: Array, bias: Array | None, stride: tuple, dilation: tuple, groups: int, out_hw: tuple
    ) -> Array | None:
        """Padded input (N, C, Hp, Wp), weight (Co, C/G, kh, kw), bias (Co,) or None -> (N, Co, Ho, Wo),
        the convolution nn/conv.py computes, in another formulation (a direct one where channels are
        few); or None."""
        return None

    def fused_conv2d_backward(
        self, xpad: Array, w: Array, g: Array, pads: tuple, x_shape: tuple, want_dx: bool
    ) -> tuple[Array | None, Array, Array] | None:
        """For the output gradient g of the fused_conv2d that took xpad and w (pads top, bottom, left,
        right): (input gradient of x_shape or None unless want_dx, weight gradient, bias gradient (Co,));
        or None, where fused_conv2d did not run either."""
        return None

    def fused_channel_moments(self, x: Array) -> tuple[Array, Array] | None:
        """x (N, C, H, W) -> (mean, biased variance) per channel, (C,) each, in one pass; or None."""
        return None

    def fused_norm_relu_pool(self, x: Array, scale: Array | None, shift: Array | None) -> tuple[Array, Array] | None:
        """x (N, C, H, W), H and W even -> (y, winner) of (N, C, H/2, W/2): y = 2x2 max-pool of
        ReLU(x * scale + shift) (scale, shift (C,); None: z = x), winner uint8 as nn/fused.py's
        NormReLUPool keeps it (cell 0..3 of the first maximum, + 4 where the ReLU is off); or None."""
        return None

    def fused_pool_grad_sums(self, g: Array, x: Array, winner: Array, mean: Array) -> tuple[Array, Array] | None:
        """Pooled gradient g (N, C, H/2, W/2) routed to the winners as dz (N, C, H, W) -> per channel
        (sum(dz * (x - mean)), sum(dz)), (C,) each; or None."""
        return None

    def fused_pool_grad_input(self, g: Array, x: Array, winner: Array, terms: tuple[Array, ...] | None) -> Array | None:
        """dx (N, C, H, W) from the pooled gradient: dz when terms is None, dz * s for (s,), and
        dz * s - (x - mean) * k - c for (mean, s, k, c), each (C,); or None."""
        return None

    def copy_into(self, dst: Array, src: Array) -> None:
        """dst[...] = src, in place."""
        dst[...] = src

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """a @ b with the standard's broadcasting, written into `out` when given (and returned); a
        backend may spread large products over cores."""
        if out is None:
            return a @ b
        out[...] = a @ b  # the standard has no out=: NumPy and CuPy write in place (their backends)
        return out

    def matmul_for(self, m: int, k: int, n: int) -> Callable[..., Array]:
        """The product to call for (m, k) @ (k, n) operands, as matmul(a, b, out=None): `matmul` itself,
        or where a backend decides by size (NumPy: split or not) its choice, made once by a layer per
        batch shape instead of on every call."""
        return self.matmul

    def batch_chunks(self, n: int, bytes_per_item: int, chunk_bytes: int | None = None) -> list[tuple[int, int]]:
        """[lo, hi) ranges of about equal size covering 0..n, each at most `chunk_bytes` (default
        the backend's) of work, one item at least, as many as there are threads at least, so
        that none stays idle."""
        step = max(1, (chunk_bytes or self.chunk_bytes) // max(1, bytes_per_item))
        count = -(-n // step)  # ceil(n / step)
        count = max(1, min(n, -(-count // self.threads) * self.threads))  # a multiple of the threads
        return [(n * k // count, n * (k + 1) // count) for k in range(count)]

    def background(self, fn: Callable[[], T], nbytes: int) -> Callable[[], T]:
        """Start fn(), which writes about `nbytes`, on an idle core while the caller goes on; returns the
        function that waits for and gives its result (a DataLoader gathers the next batch so). Here: fn
        itself, run when its result is asked for; the CPU backend runs a large enough job on its worker."""
        return fn

    def background_worth(self, nbytes: int) -> bool:
        """Whether `background` may start a job writing `nbytes` on another core at all (False: it would
        always give the job back to run when asked, so a caller need not hand it over). Here: False."""
        return False

    def run_chunks(self, fn: Callable[[int, int], None], count: int) -> None:
        """fn(chunk, worker) for every chunk in range(count); the CPU backend shares them out
        over its threads. `worker` indexes per-thread scratch; fn's results depend on chunk only."""
        for chunk in range(count):
            fn(chunk, 0)

    def pass_chunks(self, n: int, bytes_per_item: int) -> list[tuple[int, int]]:
        """Batch ranges for a memory-bound pass (activations, pooling, batch norm): the whole batch
        when the pass moves at most `pass_split_bytes`, else `batch_chunks` of `pass_bytes`."""
        if n * bytes_per_item <= self.pass_split_bytes:
            return [(0, n)]
        return self.batch_chunks(n, bytes_per_item, self.pass_bytes)

    def map_chunks(self, fn: Callable[[int, int], T], chunks: list[tuple[int, int]]) -> list[T]:
        """[fn(lo, hi) for (lo, hi) in chunks], run as `run_chunks` runs them; results in chunk
        order, so sums over them do not depend on which thread ran which chunk."""
        if len(chunks) == 1:
            return [fn(*chunks[0])]
        results: list[Any] = [None] * len(chunks)

        def run(chunk: int, worker: int) -> None:
            results[chunk] = fn(*chunks[chunk])

        self.run_chunks(run, len(chunks))
        return results
