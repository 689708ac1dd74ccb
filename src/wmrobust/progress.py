"""Progress of long work where a person looks: a bar on a terminal (tqdm, by the caller),
else a line in the job's log at most every EVERY_SECONDS."""

from __future__ import annotations

import time

EVERY_SECONDS = 120.0


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


class LogLines:
    """Prints a progress line when EVERY_SECONDS have passed since the last one (or the start)."""

    def __init__(self):
        self.start = self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= EVERY_SECONDS

    def print(self, line: str) -> None:
        print(line, flush=True)
        self.last = time.monotonic()

    def elapsed(self) -> str:
        return duration(time.monotonic() - self.start)

    def eta(self, done: float, total: float) -> str:
        """Time so far and, at this pace, left."""
        spent = time.monotonic() - self.start
        return self.elapsed() + (f", ~{duration((total - done) * spent / done)} left" if done > 0 else "")
