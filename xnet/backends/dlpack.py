"""Arrays from other libraries through DLPack (a torch tensor, a JAX or CuPy array): shared, not copied.

`Backend.asarray` calls `take` for any object that is not its own array type but speaks DLPack;
the library's `from_dlpack` then wraps the producer's memory where the standard allows it (same
device, a layout it can describe) and copies only where it must.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CUDA = 2  # DLPack's device type kDLCUDA, as __dlpack_device__() reports it


def foreign(a: Any, own: type) -> bool:
    """Whether `a` is another library's array that offers DLPack."""
    return not isinstance(a, own) and hasattr(a, "__dlpack__") and hasattr(a, "__dlpack_device__")


def take(from_dlpack: Callable[..., Any], a: Any, **kwargs: Any) -> Any:
    """from_dlpack(a, **kwargs); a producer's refusal becomes one TypeError line saying what to do."""
    try:
        return from_dlpack(a, **kwargs)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        hint = " (call .detach() on the tensor first)" if "grad" in str(e) else ""
        raise TypeError(f"asarray: cannot take a {type(a).__name__} through DLPack: {e}{hint}") from None
