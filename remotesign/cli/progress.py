"""A progress bar for the batch commands, on stderr so that stdout stays the result. On a terminal
one line redrawn in place; elsewhere (a log, a CI job) a plain line only when the numbers change,
so that the log reads as a short history instead of a wall of repeats or carriage returns."""

from __future__ import annotations

from typing import TextIO

WIDTH = 20


def render(total: int, done: int, failed: int, running: int, width: int = WIDTH) -> str:
    """``[##########----------] 12/24 done, 1 failed, 3 running``: the bar fills with the
    documents that are settled (done or failed)."""
    settled = min(done + failed, total)
    filled = width * settled // total if total else width
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} done, {failed} failed, {running} running"


class ProgressBar:
    """Draws :func:`render` on ``stream`` as the numbers come in."""

    def __init__(self, stream: TextIO, width: int = WIDTH) -> None:
        self.stream = stream
        self.width = width
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._last: tuple[int, int, int, int] | None = None
        self._drawn = 0  # length of the line on the terminal, to blank what a shorter one leaves

    def update(self, total: int, done: int, failed: int, running: int) -> None:
        numbers = (total, done, failed, running)
        if numbers == self._last:
            return
        self._last = numbers
        line = render(total, done, failed, running, self.width)
        if self.tty:
            self.stream.write("\r" + line.ljust(self._drawn))
            self._drawn = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the line on a terminal (what follows starts on its own line)."""
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0
