"""Checkpoints: one .npz with arrays and a JSON header, written atomically, device-independent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xnet.atomic import atomic_write_bytes
from xnet.errors import XnetError

FORMAT = "xnet-checkpoint-1"


def _split_arrays(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray inside nested dicts/lists with a reference, collecting the arrays."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = obj
        return {"__array__": prefix}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(k): _split_arrays(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_arrays(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
    return obj


def _join_arrays(obj: Any, arrays: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return np.asarray(arrays[obj["__array__"]])
        return {k: _join_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_arrays(v, arrays) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Save a nested dict of host arrays and JSON-able values as one .npz, atomically."""
    arrays: dict[str, np.ndarray] = {}
    header = _split_arrays(state, "s", arrays)
    header = {"format": FORMAT, "state": header}
    import io

    buf = io.BytesIO()
    np.savez(buf, __header__=np.array(json.dumps(header)), **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load what `save_checkpoint` wrote; a missing or foreign file raises XnetError."""
    path = Path(path)
    if not path.is_file():
        raise XnetError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["__header__"]))
            if header.get("format") != FORMAT:
                raise XnetError(f"{path} is not an xnet checkpoint (format {header.get('format')!r})")
            arrays = {k: z[k] for k in z.files if k != "__header__"}
    except XnetError:
        raise
    except Exception as e:
        raise XnetError(f"cannot read checkpoint {path}: {e}") from e
    return _join_arrays(header["state"], arrays)
