"""Structured logging for the daemon: one JSON object per line (or plain text)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable


class JsonFormatter(logging.Formatter):
    """Render a record and its ``extra={"fields": {...}}`` as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            base += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return base


def configure_logging(level: str, fmt: str) -> None:
    """Send ``attest.*`` logs to stderr in the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger("attest")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class RateLimited:
    """Log a recurring condition at most once per ``interval_s`` per key.

    A condition that can repeat as fast as the peers or the kernel make it (accept failing with
    EMFILE, a store that keeps failing, a handler bug hit by every connection) must not fill the
    disk with identical lines: the first occurrence is logged at once, later ones within the
    interval are only counted, and the next line that is let through says how many were
    suppressed (``suppressed`` field).
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(
        self,
        key: str,
        level: int,
        msg: str,
        fields: dict[str, object] | None = None,
        *,
        exc_info: bool = False,
    ) -> bool:
        """Log ``msg`` unless ``key`` was logged less than ``interval_s`` ago; True if logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        out = dict(fields or {})
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            out["suppressed"] = suppressed
        self._log.log(level, msg, extra={"fields": out}, exc_info=exc_info)
        return True
