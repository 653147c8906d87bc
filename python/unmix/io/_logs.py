"""Third-party log messages while reading and writing.

RosettaSciIO and HyperSpy log through handlers of their own that write to
the terminal ("Cannot find package lumispy …", "Numba is not installed …"),
which would make unmix print. :func:`captured` takes their messages for the
time of a call instead, so that the caller can keep them as a note.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

#: The loggers taken over; their children propagate to them.
LOGGERS = ("rsciio", "hyperspy", "exspy")


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.into.append(f"{record.name}: {record.getMessage()}")
        except Exception:  # a message that cannot be formatted is not worth failing for
            self.into.append(f"{record.name}: {record.msg!r}")


@contextlib.contextmanager
def captured() -> Iterator[list[str]]:
    """Within the block, warnings and errors logged under :data:`LOGGERS`
    are appended to the yielded list instead of reaching any handler."""
    messages: list[str] = []
    handler = _Collect(messages)
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate))
        logger.handlers[:] = [handler]
        logger.propagate = False
    try:
        yield messages
    finally:
        for logger, handlers, propagate in saved:
            # A package imported within the block may have set up its logger
            # (HyperSpy's import replaces the handlers): its setup is kept.
            added = [h for h in logger.handlers if h is not handler]
            logger.handlers[:] = added or handlers
            logger.propagate = propagate
