"""Writing files so that a crash never leaves half of one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Runs ``write(tmp)`` on a new temporary name beside ``path``, then
    renames it over ``path`` (atomic on the same file system): readers see
    the old file or the new one, never a part. An OSError names ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            tmp.unlink()
        except OSError:
            pass
        # np.save and h5py report a full disk without a file name, open()
        # with the temporary one: the caller knows the file by ``path``.
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, os.strerror(err.errno), str(path)) from err
        raise
    return path


def remove_stale_temporaries(path: Path) -> None:
    """Removes what :func:`atomic_write` left of ``path`` in processes that
    were killed while writing it (``kill -9`` gives no chance to clean up)."""
    prefix = f".{path.name}."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:  # no folder yet, or not readable: nothing of ours there
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
            pid = entry.name[len(prefix):].split(".")[0]
            if pid.isdigit() and not alive(int(pid)):
                try:
                    os.unlink(entry.path)
                except OSError:
                    pass


def alive(pid: int) -> bool:
    """Whether process ``pid`` may still be running (this one included)."""
    if os.name != "posix":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True
