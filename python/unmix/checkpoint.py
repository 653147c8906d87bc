"""Checkpoints of long fits: the state of a run in one file, to resume from.

:func:`unmix.nmf` writes one with ``checkpoint=path`` every
``checkpoint_every`` iterations or ``checkpoint_interval`` seconds, and when
the run stops for any reason (Ctrl-C included); ``resume=True`` continues
from it. The file is replaced atomically, so a crash — even ``kill -9`` in
the middle of a write — leaves the previous checkpoint whole (and the next
run removes the temporary file it left). A resumed run gives the factors of
the uninterrupted run, bit for bit on the same machine; resuming a run that
had already ended (killed after its last checkpoint) returns its result.

The file is an ``.npz`` of the core's state (its factors in the core's
orientation, the objective history, the iteration) and a fingerprint of the
problem — shape, dtype, k, solver, loss and every penalty and constraint —
so that resuming with other settings is refused with the difference named.
The data itself is recognized by its norm.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from . import _core
from ._files import atomic_write

# Options that may change between the interrupted run and the resumed one
# (the start and its seed are the checkpoint's; the seed is kept in it).
_MAY_CHANGE = {"max_iter", "tol", "time_limit", "init", "seed"}
# With extrapolate=True the state also holds the plain iterates, where the
# next iteration starts, and the extrapolation's (beta, beta_bar); empty
# arrays otherwise.
_STATE_ARRAYS = ("W", "H", "objective", "rel_error", "fixed_at_start", "gram_W", "gram_H",
                 "W_plain", "H_plain", "W_next", "H_next", "extrapolation")
# Files from unmix 0.1.0 lack these; the run then sums the Gram matrices
# again (and cannot resume an extrapolated run).
_OPTIONAL_ARRAYS = ("gram_W", "gram_H", "W_plain", "H_plain", "W_next", "H_next", "extrapolation")
_STATE_SCALARS = ("iteration", "elapsed", "data_norm")


def fingerprint(options: dict[str, Any], shape: tuple[int, ...], k: int, dtype: Any) -> dict[str, Any]:
    """What identifies a problem: everything that changes the iterates."""
    digest = hashlib.sha256()
    for key in sorted(set(options) - _MAY_CHANGE):
        value = options[key]
        if isinstance(value, tuple):  # a graph: (indptr, indices, data, n)
            value = list(value)
        for part in value if isinstance(value, list) else [value]:
            if isinstance(part, np.ndarray):
                digest.update(part.tobytes())
            else:
                digest.update(repr(part).encode())
        digest.update(key.encode())
    return {"shape": list(shape), "k": int(k), "dtype": np.dtype(dtype).name,
            "solver": options["solver"], "loss": options["loss"], "options": digest.hexdigest()}


def save(path: Union[str, os.PathLike], state: dict[str, Any], fp: dict[str, Any],
         seed: int) -> Path:
    """Writes the core's state, its seed and the problem's fingerprint atomically."""
    path = Path(path)
    meta = {"unmix": _core.__version__, "fingerprint": fp, "events": state["events"], "seed": seed,
            **{key: state[key] for key in _STATE_SCALARS}}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **{key: state[key] for key in _STATE_ARRAYS})
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, write)


def load(path: Union[str, os.PathLike], fp: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """The state in a checkpoint file, checked against the problem's
    fingerprint when given."""
    path = Path(path)
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            state = {key: z[key] for key in _STATE_ARRAYS
                     if key in z.files or key not in _OPTIONAL_ARRAYS}
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file gets one message
        raise ValueError(f"checkpoint {str(path)!r} is not a readable unmix checkpoint: {e}") from e
    if fp is not None and meta["fingerprint"] != fp:
        differ = [key for key in fp if meta["fingerprint"].get(key) != fp[key]]
        what = ", ".join(f"{key} {meta['fingerprint'].get(key)!r} -> {fp[key]!r}"
                         if key != "options" else "penalties or constraints" for key in differ)
        raise ValueError(f"checkpoint {str(path)!r} is from another problem: {what}")
    state.update({key: meta[key] for key in (*_STATE_SCALARS, "seed")})
    state["events"] = [tuple(e) for e in meta["events"]]
    return state
