"""The keyboard side of the console phone: terminal mode, key reading, escape sequences.

Why cbreak mode: a phone key acts when it is pressed, not when Enter is. `cbreak_terminal()`
switches a TTY to character-at-a-time input without echo and restores the saved settings on
every exit path (normal end, exception, Ctrl-C, SIGTERM handled by the caller) — a terminal left
without echo is the worst thing a CLI can do to its user. An `atexit` hook is the last resort.

Arrow keys and function keys arrive as escape sequences ("\\x1b[A"); their letters must never
be read as DTMF A-D, so `split_keys` keeps each sequence as one token, reported and dropped.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import os
import re
from collections.abc import Callable, Iterator

__all__ = ["Terminal", "cbreak_terminal", "read_fd_nonblocking", "split_keys"]

# CSI (ESC [ params final) or SS3 (ESC O x) or ESC + one char, or a lone ESC at the end.
_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|O.|[^\[O]|$)|\x1b\[[0-?]*[ -/]*$", re.DOTALL)


def split_keys(text: str) -> list[str]:
    """Split typed input into single characters, keeping each escape sequence whole."""
    out: list[str] = []
    pos = 0
    for m in _ESCAPE.finditer(text):
        out.extend(text[pos : m.start()])
        out.append(m.group())
        pos = m.end()
    out.extend(text[pos:])
    return out


class Terminal:
    """What `cbreak_terminal` yields: truthy when the fd is a terminal; `restore()` puts the
    saved settings back now (idempotent) — for a forced exit that skips `finally` blocks."""

    def __init__(self, restore: Callable[[], None] | None = None) -> None:
        self._restore = restore

    def __bool__(self) -> bool:
        return self._restore is not None

    def restore(self) -> None:
        if self._restore is not None:
            self._restore()


@contextlib.contextmanager
def cbreak_terminal(fd: int) -> Iterator[Terminal]:
    """Character-at-a-time, no-echo input on `fd` while inside; yields a falsy `Terminal` (and
    does nothing) when `fd` is not a terminal. Ctrl-C still raises SIGINT (ISIG stays on)."""
    if fd < 0 or not os.isatty(fd):
        yield Terminal()
        return
    import termios
    import tty

    saved = termios.tcgetattr(fd)

    def restore() -> None:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

    atexit.register(restore)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        yield Terminal(restore)
    finally:
        restore()
        atexit.unregister(restore)


def read_fd_nonblocking(
    loop: asyncio.AbstractEventLoop, fd: int, on_text: Callable[[str], None], on_eof: Callable[[], None]
) -> Callable[[], None]:
    """Call `on_text` with decoded text as it arrives on `fd`, `on_eof` at the end. Returns a
    function that stops reading.

    Uses the event loop's reader (no thread to leak). Files that cannot be polled (a regular
    file or /dev/null redirected to stdin) are read whole at once instead.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    done = False

    def stop() -> None:
        nonlocal done
        if not done:
            done = True
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(fd)

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            tail = decoder.decode(b"", final=True)
            if tail:
                on_text(tail)
            stop()
            on_eof()
            return
        text = decoder.decode(data)
        if text:
            on_text(text)

    try:
        loop.add_reader(fd, readable)
    except (PermissionError, OSError, ValueError):
        chunks = []
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
        done = True
        text = b"".join(chunks).decode("utf-8", errors="replace")

        def deliver() -> None:
            if text:
                on_text(text)
            on_eof()

        loop.call_soon(deliver)
    return stop
