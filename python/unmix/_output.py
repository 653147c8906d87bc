"""The output folder of a command: the whole new result, or the old one.

A command writes its result into a new folder beside the output folder
(``.OUT.new-PID-XXXX``), then puts that folder in its place: two renames
(``OUT`` to ``.OUT.old-PID-XXXX``, the new one to ``OUT``) and the removal
of the old one. A reader sees the previous result or the new one, never a
mix of the two, and a write that fails or is interrupted leaves the previous
result as it was. From the swap on, Ctrl-C and SIGTERM are held back and
reported when the command ends (:mod:`unmix._signals`): the result is
complete by then.

As the whole folder is replaced, only an empty folder or one a command
wrote (it holds :data:`MARKER`, written last) is taken as an output folder.
What a killed process leaves beside it is cleared up by the next command
writing there.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable

from . import _signals
from ._files import alive

#: The file that marks a folder as a command's output; it lists the files.
MARKER = ".unmix-output"


class OutputError(Exception):
    """The result could not be written; the output folder was left as it was."""


def check(folder: Any) -> Path:
    """The output folder, once the leftovers of killed commands beside it
    are cleared up; refused when it is a file, or a folder that holds files
    no command wrote (they would be removed with it)."""
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output {str(out)!r} exists and is not a folder")
    _clear_leftovers(Path(os.path.realpath(out)))
    if out.is_dir() and not (out / MARKER).is_file():
        foreign = sorted(entry.name for entry in out.iterdir())
        if foreign:
            shown = ", ".join(repr(name) for name in foreign[:3]) + (", ..." if len(foreign) > 3
                                                                     else "")
            raise ValueError(f"the output folder {str(out)!r} holds files no unmix command wrote "
                             f"({shown}): the result replaces the whole folder, so give a new or "
                             "empty folder")
    return out


def publish(out: Path, command: str, write: Callable[[Path], Iterable[Any]]) -> list[str]:
    """Runs ``write(folder)`` on a new folder beside ``out`` and puts that
    folder in ``out``'s place; returns the names of the files written,
    relative to the folder. Signals stay held back from the swap on, until
    :func:`unmix._signals.release`."""
    target = Path(os.path.realpath(out))  # a link to a folder: its target is replaced
    target.parent.mkdir(parents=True, exist_ok=True)
    new = _sibling(target, "new")
    new.mkdir()
    try:
        names = sorted({str(Path(f).resolve().relative_to(new.resolve())) for f in write(new)})
        # Written last: a folder that has it is complete.
        (new / MARKER).write_text(json.dumps({"command": command, "files": names}, indent=1)
                                  + "\n")
    except BaseException as err:
        _signals.hold()  # a second Ctrl-C must not leave the new folder behind
        shutil.rmtree(new, ignore_errors=True)
        left = "was left as it was" if target.exists() else "was not created"
        if isinstance(err, KeyboardInterrupt):
            raise type(err)(f"the output folder {str(out)!r} {left}") from None
        if isinstance(err, OSError):
            raise OutputError(f"cannot write {_name(err, new)} to the output folder "
                              f"{str(out)!r}: {_reason(err)}; the folder {left}") from err
        raise
    _signals.hold()
    _swap(new, target)
    return names


def _swap(new: Path, out: Path) -> None:
    if not out.exists():
        os.rename(new, out)
        return
    old = _sibling(out, "old")
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sibling(out: Path, kind: str) -> Path:
    return out.with_name(f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}")


def _clear_leftovers(out: Path) -> None:
    """Removes the folders killed commands left beside ``out``; an old
    result moved aside by one killed between its two renames goes back."""
    try:
        entries = list(os.scandir(out.parent))
    except OSError:  # no parent folder yet: nothing left there
        return
    for entry in entries:
        kind, _, rest = entry.name[len(out.name) + 2:].partition("-")
        pid = rest.split("-")[0]
        if (not entry.name.startswith(f".{out.name}.") or kind not in ("new", "old")
                or not pid.isdigit() or alive(int(pid))):
            continue
        if kind == "old" and not out.exists():
            os.rename(entry.path, out)
        else:
            shutil.rmtree(entry.path, ignore_errors=True)


def _name(err: OSError, folder: Path) -> str:
    """The file an error is about, as a name in the output folder."""
    if err.filename is None:
        return "the result"
    try:
        return Path(os.fsdecode(err.filename)).resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return repr(os.fsdecode(err.filename))


def _reason(err: OSError) -> str:
    what = os.strerror(err.errno) if err.errno is not None else str(err)
    if err.errno == errno.ENOSPC:
        return f"the disk is full ({what})"
    if err.errno == getattr(errno, "EDQUOT", None):
        return f"the disk quota is used up ({what})"
    return what
