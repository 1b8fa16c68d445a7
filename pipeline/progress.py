"""Progress reporting for long loops: a progressbar2 bar on a terminal, periodic log lines otherwise
(`docker run` without `-t`, log files), so progress is visible either way."""

from __future__ import annotations

import logging
import sys
import time
from typing import TypeVar

import progressbar

from pipeline.logs import format_duration

T = TypeVar("T")
log = logging.getLogger(__name__)


class Progress:
    """Manual progress: `update(n)` as work is done, `close()` at the end."""

    def __init__(self, total: int | None, label: str, unit: str = "items", interval_s: float = 15.0):
        self.total = total
        self.label = label
        self.unit = unit
        self.count = 0
        self.interval_s = interval_s
        self._start = time.monotonic()
        self._last_log = self._start
        self._bar: progressbar.ProgressBar | None = None
        if sys.stderr.isatty():
            widgets = [f"{label}: ", progressbar.Percentage(), " ", progressbar.Bar(), " ",
                       progressbar.SimpleProgress(), " ", progressbar.ETA()] if total else [
                f"{label}: ", progressbar.Counter(), " ", progressbar.Timer()]
            self._bar = progressbar.ProgressBar(max_value=total or progressbar.UnknownLength,
                                                widgets=widgets, fd=sys.stderr)
            self._bar.start()

    def update(self, n: int = 1, extra: str = "") -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(min(self.count, self.total) if self.total else self.count)
            return
        now = time.monotonic()
        if now - self._last_log >= self.interval_s:
            self._last_log = now
            log.info("%s: %s", self.label, self.status(extra))

    def status(self, extra: str = "") -> str:
        elapsed = time.monotonic() - self._start
        text = f"{self.count}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100.0 * self.count / self.total:.0f}%)"
            if self.count:
                eta = elapsed * (self.total - self.count) / self.count
                text += f", ETA {format_duration(eta)}"
        else:
            text += f" {self.unit}"
        return text + (f", {extra}" if extra else "")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.finish()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

