"""How a command of the command line ends on Ctrl-C (SIGINT) and on SIGTERM
(what a batch scheduler sends before it kills a job).

Both stop it where they come, Ctrl-C as Python's KeyboardInterrupt, SIGTERM
as :class:`Terminated` (a KeyboardInterrupt too, so that the same clean-up
runs), and the command exits with 128 + the signal's number. Once its
result is being put in place, neither stops it any more: they are noted and
reported when it ends. A signal ignored when the command starts (``nohup``)
stays ignored. Only the main thread handles signals; elsewhere these
functions do nothing.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Optional

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt."""


_state: dict[str, Any] = {"previous": {}}


def _here() -> bool:
    return threading.current_thread() is threading.main_thread()


def _install(signum: int, handler: Any) -> None:
    if signal.getsignal(signum) is signal.SIG_IGN:
        return
    previous = signal.signal(signum, handler)
    _state["previous"].setdefault(signum, previous)


def catch() -> None:
    """From now on SIGTERM raises :class:`Terminated`."""
    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    if _here():
        _install(signal.SIGTERM, terminate)


def hold() -> None:
    """From now on SIGINT and SIGTERM are noted instead of raised;
    :func:`release` says whether one came."""
    def note(signum: int, frame: Any) -> None:
        _state.setdefault("came", signum)

    if _here() and not _state.get("held"):
        _state["held"] = True
        for signum in SIGNALS:
            _install(signum, note)


def release(ignore: bool = False) -> Optional[int]:
    """The signal that came while they were held, if any. Puts back the
    handlers found before :func:`catch` and :func:`hold`, or, with
    ``ignore``, ignores both signals: for a process about to exit, which a
    late one would otherwise end by the signal while Python shuts down
    (Python restores their default action then)."""
    if _here():
        previous = _state["previous"]
        for signum in SIGNALS:
            if ignore or signum in previous:
                # Runs the handler of a signal that came just before.
                signal.signal(signum, signal.SIG_IGN if ignore else previous[signum])
                previous.pop(signum, None)
    _state.pop("held", None)
    return _state.pop("came", None)


def signal_of(err: KeyboardInterrupt) -> int:
    """The signal that raised ``err``."""
    return signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT


def what(signum: int) -> str:
    """What the signal did, for the message."""
    return "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
