"""The one door to xnet's fast paths: optional Backend methods, absent unless a backend offers them.

Layers, losses and optimizers all reach a fused kernel the same way: they hold the backend their
arrays live on (a layer its `self.backend`, an optimizer its `self.ops`, found once from its
parameters by `xnet.backends.backend_of`) and call one of the methods below on it. The base
Backend declares every one of them with the "absent" answer; a backend that has a kernel
overrides the method (CupyBackend: CUDA kernels; NumpyBackend: compiled CPU kernels, cpu_kernels/,
Numba, unless XNET_CPU_KERNELS=0). Callers
never ask which library runs: where the answer is "absent" they run their Array API reference
body, which stays beside them (nn/, losses/, optim/) and which the kernels are tested against.

Methods and what "absent" looks like (all arrays on the backend's device):

  fused_dropout(x, stream, keep, scale) -> (y, mask) | None
  fused_relu(x) -> (y, mask) | None
  fused_bias_activation(z, bias, kind) -> act(z + bias) written into z | None (a Dense and its activation)
  fused_activation_grad(g, y, kind, sums) -> (gradient at the activation's input, its sums over N | None) | None
  fused_softmax_cross_entropy(z, target, smoothing, scale) -> (terms, dz) | None
  fused_dense_activation(kind, shape, dtype) -> kernels | None, kernels.activate(z, bias) answering as
      fused_bias_activation, kernels.takes(g) and kernels.grad(g, y, sums=None) -> (gz, sums) for a g it
      takes (sums written into a given array where it can); fused_cross_entropy(shape, dtype) -> kernels | None,
      kernels.run(z, labels, smoothing, scale) answering as fused_softmax_cross_entropy
      (kernels made for one batch shape: a layer or loss asks once per shape and calls them every
      step, so the checks and choices are not made again on each call; NumPy: small batches only)
  matmul_for(m, k, n) -> the product to call for operands of that size (not optional: the base
      answers its own matmul; NumPy answers np.matmul for a product too small to split)
  fused_take_normalized(raw, index, offset, scale) -> float32 batch | None (a DataLoader's uint8 pixels)
  fused_im2col(xpad, stride, dilation, buf) -> buf | None; fused_col2im(cols, stride, dilation, out)
  fused_channel_moments(x) -> (mean, var) | None
  fused_norm_relu_pool(x, scale, shift) -> (y, winner) | None
  fused_pool_grad_sums(g, x, winner, mean) -> (sums, sums) | None
  fused_pool_grad_input(g, x, winner, terms) -> dx | None
      None: absent here or not for these arrays; nothing was changed (a stream has not moved).
      Shapes and meanings: their docstrings in base.Backend.

  adam_update(param, grad, m, v, *, b1, one_minus_b1, b2, one_minus_b2, eps_hat, step_size,
              wd, shrink, decay) -> bool
  sgd_update(param, grad, *, lr, wd, decay) -> bool
  sgd_momentum_update(param, grad, velocity, *, lr, mu, wd, decay, nesterov) -> bool
  rmsprop_update(param, grad, mean_sq, *, lr, rho, one_minus_rho, eps, wd, decay) -> bool
  adagrad_update(param, grad, sum_sq, *, lr, eps, wd, decay) -> bool
  adadelta_update(param, grad, square_avg, acc_delta, *, lr, rho, one_minus_rho, eps, wd, decay) -> bool
  adamax_update(param, grad, exp_avg, exp_inf, *, b1, one_minus_b1, b2, eps, step_size, wd, decay) -> bool
  nadam_update(param, grad, exp_avg, exp_avg_sq, *, b1, one_minus_b1, b2, one_minus_b2, eps, sqrt_bc2,
               grad_step, momentum_step, wd, shrink, decay) -> bool
  radam_update(param, grad, exp_avg, exp_avg_sq, *, b1, one_minus_b1, b2, one_minus_b2, eps, step_size,
               rectified, wd, shrink, decay) -> bool
  lion_update(param, grad, exp_avg, *, lr, b1, one_minus_b1, b2, one_minus_b2, wd, shrink, decay) -> bool
      (these five: compiled CPU kernels only; no CUDA kernel yet)
      One optimizer step of one parameter (or flat slice), in place, doing the floating-point
      operations of the reference body in xnet/optim/<name>.py in the same order, with every
      scalar of the arrays' type. The arrays have one shape; the scalars are Python floats,
      `decay` one of NO_DECAY, COUPLED_DECAY (g += wd * w, kept in grad) and DECOUPLED_DECAY
      (w *= shrink), `nesterov` and `rectified` bools. True: done. False: absent here or not for these arrays
      (`fits` says which a kernel may take); nothing was changed and the caller runs its reference.
      The base methods hand (name, arrays, scalars) to `optimizer_kernel(name, arrays, scalars)
      -> bool` (absent: False), the one method a backend with an optimizer kernel set overrides
      (CupyBackend, NumpyBackend); xnet's optimizers call it directly, with `decay` among the
      scalars (optim/optimizer.py, UpdateRule.kernel), a Python call less every step, and a `cache`
      dict of their own where the NumPy backend keeps its kernels bound to their arrays. A kernel
      taking its scalars positionally gets them in OPTIMIZER_SCALARS[name] order (`scalar_args`),
      the order of both kernel sets' arguments.

First use: a kernel is checked once before its first real launch (compiled and run on small
inputs). Where that fails, one RuntimeWarning says so and the method answers absent from then on.
CupyBackend keeps the verdict in the backend instance (Backend.kernel_ok, keyed by kernel name
and, for the optimizer kernels, dtype). The compiled CPU kernels still keep theirs per process in
cpu_kernels/probes.py (one NumPy library per process); Backend.kernel_ok is where they can move.

To add a kernel to a backend: override the method on that backend class, test `fits` (or what
your kernel needs) and `self.kernel_ok(key, probe)` first, and return the absent answer when
either says no. Tests hold the kernel to the reference (tests/backends/test_fast_paths.py runs
the optimizers with and without it). A new fast path: declare it in base.Backend with its absent
answer, list it here, and call it from the layer or optimizer with the reference as the fallback.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xnet.backends.base import Array

# weight decay in an optimizer fast path's `decay` argument: none, coupled (added to the gradient,
# which keeps it, as the reference's `g += wd * w` does) or decoupled (AdamW's `w *= 1 - lr * wd`)
NO_DECAY, COUPLED_DECAY, DECOUPLED_DECAY = 0, 1, 2

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
OPTIMIZER_FAST_PATHS = (
    "adam_update", "sgd_update", "sgd_momentum_update", "rmsprop_update", "adagrad_update", "adadelta_update",
    "adamax_update", "nadam_update", "radam_update", "lion_update",
)  # fmt: skip
# each optimizer kernel's scalars, in the order its kernels take them (the CUDA in_params, cpu_kernels/optim.py)
OPTIMIZER_SCALARS = {
    "adam": ("b1", "one_minus_b1", "b2", "one_minus_b2", "eps_hat", "step_size", "wd", "shrink", "decay"),
    "sgd": ("lr", "wd", "decay"),
    "sgd_momentum": ("lr", "mu", "wd", "decay", "nesterov"),
    "rmsprop": ("lr", "rho", "one_minus_rho", "eps", "wd", "decay"),
    "adagrad": ("lr", "eps", "wd", "decay"),
    "adadelta": ("lr", "rho", "one_minus_rho", "eps", "wd", "decay"),
    "adamax": ("b1", "one_minus_b1", "b2", "eps", "step_size", "wd", "decay"),
    "nadam": ("b1", "one_minus_b1", "b2", "one_minus_b2", "eps", "sqrt_bc2", "grad_step", "momentum_step", "wd",
              "shrink", "decay"),
    "radam": ("b1", "one_minus_b1", "b2", "one_minus_b2", "eps", "step_size", "rectified", "wd", "shrink", "decay"),
    "lion": ("lr", "b1", "one_minus_b1", "b2", "one_minus_b2", "wd", "shrink", "decay"),
}  # fmt: skip
# the scalars that are bools, which the kernels take as integers 0/1
FLAG_SCALARS = ("nesterov", "rectified")


def scalar_args(name: str, scalars: dict[str, Any]) -> list[Any]:
    """The keyword scalars of optimizer fast path `name` as its kernels' positional arguments."""
    return [int(scalars[n]) if n in FLAG_SCALARS else scalars[n] for n in OPTIMIZER_SCALARS[name]]


def fits(arrays: tuple[Array, ...]) -> bool:
    """Whether an elementwise kernel computes these arrays as the reference does: one library, one
    shape, one float dtype (float32 or float64), each C-contiguous."""
    first = arrays[0]
    if first.dtype not in FLOATS:
        return False
    for a in arrays:
        if type(a) is not type(first) or a.dtype != first.dtype or a.shape != first.shape:
            return False
        if not a.flags.c_contiguous:
            return False
    return True


__all__ = [
    "COUPLED_DECAY", "DECOUPLED_DECAY", "NO_DECAY", "OPTIMIZER_FAST_PATHS", "OPTIMIZER_SCALARS", "fits", "scalar_args",
]  # fmt: skip
