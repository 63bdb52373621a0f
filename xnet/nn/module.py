"""Module: the base of every layer. forward caches what backward needs; backward returns dx."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from xnet.backends import Array, Backend, default_backend, get_backend
from xnet.nn.parameter import Parameter

_build_stack: list[tuple[Backend, str]] = []


@contextlib.contextmanager
def build_on(backend: Backend | str, dtype: str = "float32") -> Iterator[Backend]:
    """Modules created inside this block put their parameters on `backend` with `dtype`."""
    b = get_backend(backend)
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    _build_stack.append((b, dtype))
    try:
        yield b
    finally:
        _build_stack.pop()


def current_build() -> tuple[Backend, str]:
    """The (backend, dtype) new modules are built on: the innermost `build_on`, else numpy float32."""
    return _build_stack[-1] if _build_stack else (default_backend(), "float32")


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
        return self.forward(x)

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

    # -- modes and gradients ---------------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, batch norm uses batch statistics)."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off, batch norm uses running statistics)."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter gradient to zero, in place."""
        for p in self.parameters():
            p.grad[...] = 0

    # -- state and devices ---------------------------------------------------------------------

    def state_dict(self) -> dict[str, np.ndarray]:
        """Host copies of every parameter and buffer, by dotted name."""
        out = {n: self.backend.to_numpy(p.data) for n, p in self.named_parameters()}
        out.update({n: self.backend.to_numpy(b) for n, b in self.named_buffers()})
        return out

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into parameters and buffers; a name or shape mismatch lists them all."""
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
            p.data = self.backend.asarray(state[n], self.dtype)
            p.grad = p.data * 0
        for m_prefix, m in self._modules_with_prefix():
            for b in m.buffer_names:
                setattr(m, b, self.backend.asarray(state[m_prefix + b], self.dtype))

    def _modules_with_prefix(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.children():
            yield from child._modules_with_prefix(f"{prefix}{name}.")

    def to(self, backend: Backend | str, dtype: str | None = None) -> Module:
        """Move (and optionally cast) every parameter and buffer to `backend`; returns self."""
        target = get_backend(backend)
        dtype = dtype or self.dtype
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
