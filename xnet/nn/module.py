"""Module: the base of every layer. forward caches what backward needs; backward returns dx."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from xnet.backends import Array, Backend, get_backend
from xnet.nn.building import accepted_arguments, build_on, current_build, float_dtype
from xnet.nn.parameter import Parameter, dtype_name, is_floating
from xnet.nn.shapes import leaf_shape, where_of

_set_attribute = object.__setattr__
# for a layer's forward caches (never Parameters) written every step: past Module.__setattr__'s
# check, a Python call per write (~0.17 us; an MLP step at batch 16 made fifteen of them)
set_cache = _set_attribute
# inputs __call__ turns into an array of the model's dtype, as Keras does; arrays pass as they are
_CONVERTIBLE = (list, tuple, int, float, np.generic)


class Module:
    """Base class of layers and containers.

    Subclasses set Parameters and sub-Modules as attributes (found by `parameters()` in the
    order they were set), list the names of non-trained state arrays in `buffer_names`, and
    implement `forward(x)` / `backward(grad_out)`.
    """

    buffer_names: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.backend, self.dtype = current_build()
        self.xp = self.backend.xp
        self.training = True

    # -- computation ------------------------------------------------------------------------------

    def forward(self, x: Array) -> Array:
        """Output for input `x`; keeps what backward needs."""
        raise NotImplementedError

    def backward(self, grad_out: Array) -> Array:
        """Gradient of the loss for the input; adds parameter gradients into `.grad`."""
        raise NotImplementedError

    def __call__(self, x: Array) -> Array:
        """forward(x) for a floating-point array; lists and scalars are converted first.

        Only the outermost call checks: a Sequential runs its layers' forward directly."""
        if isinstance(x, _CONVERTIBLE):
            x = self._input_array(x)
        elif not is_floating(x):
            raise self._input_type_error(x)
        return self.forward(x)

    def _input_array(self, x: Any) -> Array:
        """A list, tuple or scalar as an array of this module's dtype on its backend."""
        try:
            return self.backend.asarray(x, self.dtype)
        except (TypeError, ValueError) as e:
            what = type(x).__name__
            raise ValueError(f"{type(self).__name__}: the input {what} is not an array of numbers: {e}") from None

    def _input_type_error(self, x: Any) -> TypeError:
        name = type(self).__name__
        if not hasattr(x, "dtype") or not hasattr(x, "shape"):
            return TypeError(f"{name}: expected an array (or a list of numbers), got {type(x).__name__}")
        fix = f"x.astype(np.{self.dtype})" if isinstance(x, np.ndarray) else f"backend.asarray(x, {self.dtype!r})"
        return TypeError(
            f"{name}: expected a floating-point input (float32 or float64), got {dtype_name(x.dtype)}; "
            f"convert with {fix}"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        # as PyTorch: an array assigned over a Parameter would silently leave parameters() (and training)
        if type(self.__dict__.get(name)) is Parameter and value is not None and not isinstance(value, Parameter):
            kind = type(value)
            what = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
            raise TypeError(
                f"{type(self).__name__}: cannot assign {what!r} as parameter {name!r} (Parameter or None expected); "
                f"to change its values assign to .{name}.data"
            )
        _set_attribute(self, name, value)

    def _cached(self, value: Any) -> Any:
        """Return a forward cache, or raise the clear error for backward-before-forward."""
        if value is None:
            raise RuntimeError(f"{type(self).__name__}: backward called before forward")
        return value

    # -- structure --------------------------------------------------------------------------------

    def children(self) -> Iterator[tuple[str, Module]]:
        """Direct sub-modules with their attribute names (lists are numbered)."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    if isinstance(v, Module):
                        yield str(i) if name == "layers" else f"{name}.{i}", v

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) for this module and every sub-module."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        """Every trainable Parameter, in a stable order."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Array]]:
        """(dotted name, array) for non-trained state such as batch-norm running statistics."""
        for name in self.buffer_names:
            yield prefix + name, getattr(self, name)
        for name, child in self.children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def modules(self) -> Iterator[Module]:
        """This module and all modules below it."""
        yield self
        for _, child in self.children():
            yield from child.modules()

    def num_parameters(self) -> int:
        """Total number of trainable scalars."""
        return sum(p.size for p in self.parameters())

    # -- shapes (per sample, no batch axis) ------------------------------------------------------

    def infer_shape(self, shape: tuple[int, ...], name: str = "") -> tuple[int, ...]:
        """Output shape for input `shape`, building lazy sizes and checking given ones (lazy.py).

        `name` is the layer's parameter path, for errors. A leaf runs a zero sample; a container
        overrides this to walk its children."""
        where = where_of(self, name)
        self.check_input_shape(shape, where)
        return leaf_shape(self, shape, where)

    def check_input_shape(self, shape: tuple[int, ...], where: str) -> None:
        """ValueError when a size this layer was given is not its input's (Dense, Conv2D); lazy layers build here."""

    def shape_rows(self, shape: tuple[int, ...], path: str, depth: int) -> tuple[list[tuple], tuple[int, ...]]:
        """(rows, output shape) for a summary: rows are (path, depth, module, output shape), nested blocks deeper."""
        out = self.infer_shape(shape, path)
        return [(path, depth, self, out)], out

    # -- modes and gradients ---------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm uses batch statistics)."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(
                f"{type(self).__name__}.train: mode must be True or False, got {type(mode).__name__} {mode!r}"
                + ("; use .eval() for evaluation mode" if isinstance(mode, str) else "")
            )
        mode = bool(mode)
        for m in self.modules():
            if m.training is not mode:  # a read is cheaper than a set, and trainers call this every step
                m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off, batch norm uses running statistics)."""
        return self.train(False)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[Module]:
        """`with model.evaluating():` evaluation mode inside the block; every module's own mode is back after it
        (also when the block raises)."""
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        try:
            yield self
        finally:
            for m, mode in modes:
                m.training = mode

    def zero_grad(self) -> None:
        """Make every parameter gradient zero (Parameter.clear_grad: written when read, or replaced by a backward)."""
        for p in self.parameters():
            p.clear_grad()

    # -- state and devices ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter and buffer, by dotted name."""
        out = {n: self._host_copy(p.data) for n, p in self.named_parameters()}
        out.update({n: self._host_copy(b) for n, b in self.named_buffers()})
        return out

    def _host_copy(self, a: Array) -> np.ndarray:
        """A host array that later training steps do not change."""
        host = self.backend.to_numpy(a)
        # on the CPU backend the parameter already is a host array, which to_numpy returns as it is
        # (callers that only read, such as predictions, want no copy there): copy it here
        if isinstance(a, np.ndarray) and np.may_share_memory(host, a):
            host = host.copy()
        return host

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays into parameters and buffers; a name or shape mismatch lists them all."""
        _check_state(state)
        own = {n: tuple(p.data.shape) for n, p in self.named_parameters()}
        own.update({n: tuple(b.shape) for n, b in self.named_buffers()})
        problems = [f"{n}: missing" for n in own if n not in state]
        problems += [f"{n}: unexpected" for n in state if n not in own]
        problems += [
            f"{n}: expected {own[n]}, got {tuple(state[n].shape)}"
            for n in own
            if n in state and tuple(state[n].shape) != own[n]
        ]
        if problems:
            raise ValueError("state does not fit this model: " + "; ".join(problems))
        for n, p in self.named_parameters():
            value = self._device_copy(state[n])
            if _same_placement(p.data, value):
                # in place, as PyTorch copies in: the arrays may be views into an optimizer's flat buffer
                p.data[...] = value
                p.grad[...] = 0
            else:  # another device or dtype (Module.to)
                p.data, p.grad = value, value * 0
        for m_prefix, m in self._modules_with_prefix():
            for b in m.buffer_names:
                setattr(m, b, self._device_copy(state[m_prefix + b]))

    def _device_copy(self, value: Any) -> Array:
        """`value` in this module's dtype on its backend, sharing no memory with `value`: later
        changes to the caller's array must not change the model (as PyTorch copies in)."""
        if isinstance(value, np.ndarray):
            # one host copy (NumPy and the strict backend would otherwise wrap the caller's array)
            return self.backend.asarray(np.array(value, dtype=self.dtype, copy=True), self.dtype)
        out = self.backend.asarray(value, self.dtype)
        return self.backend.xp.asarray(out, copy=True) if out is value else out

    def _modules_with_prefix(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.children():
            yield from child._modules_with_prefix(f"{prefix}{name}.")

    def to(self, backend: Backend | str, dtype: str | None = None) -> Module:
        """Move (and optionally cast) every parameter and buffer to `backend`; returns self."""
        target = get_backend(backend)
        # checked before anything changes: a refused dtype leaves the model as it was
        dtype = self.dtype if dtype is None else float_dtype(dtype, f"{type(self).__name__}.to")
        state = self.state_dict()
        for m in self.modules():
            m.backend, m.xp, m.dtype = target, target.xp, dtype
            m._on_backend_change()
        self.load_state_dict(state)
        return self

    def _on_backend_change(self) -> None:
        """Hook for modules that cache backend-specific constants."""

    # -- description -------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this module (JSON-able), with its 'type'."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its configuration")

    def extra_repr(self) -> str:
        """The arguments shown in repr."""
        try:
            cfg = self.config()
        except NotImplementedError:
            return ""
        return ", ".join(f"{k}={v!r}" for k, v in cfg.items() if k != "type")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def _same_placement(a: Array, b: Array) -> bool:
    """Whether `b` can be copied into `a` as it is: the same array library, dtype and device."""
    return type(a) is type(b) and a.dtype == b.dtype and getattr(a, "device", None) == getattr(b, "device", None)


def _check_state(state: Any) -> None:
    """A mapping of name -> numeric array, as state_dict() gives: TypeError naming what is not."""
    if not isinstance(state, Mapping):
        raise TypeError(
            f"load_state_dict: expected a dict of arrays by name (as state_dict() returns), got {type(state).__name__}"
        )
    for name, value in state.items():
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise TypeError(f"load_state_dict: {name!r} is a {type(value).__name__}, expected an array")
        if not is_floating(value, numeric=True):
            raise TypeError(f"load_state_dict: {name!r} holds {dtype_name(value.dtype)} values, expected numbers")


__all__ = ["Module", "accepted_arguments", "build_on", "current_build", "float_dtype"]
