"""The terminal: escape sequences kept whole, cbreak mode restored, non-blocking reads."""

from __future__ import annotations

import asyncio
import os
import termios
from pathlib import Path

import pytest

from ivrkit.console.term import cbreak_terminal, read_fd_nonblocking, split_keys


def test_split_keys_keeps_escape_sequences_whole() -> None:
    # Arrow up, F1 and Ctrl-Right must not become DTMF A, P/C...: each is one token.
    assert split_keys("1\x1b[A2\x1bOP#\x1b[1;5C*") == ["1", "\x1b[A", "2", "\x1bOP", "#", "\x1b[1;5C", "*"]
    assert split_keys("ab\x1b") == ["a", "b", "\x1b"]
    assert split_keys("") == []


def test_cbreak_terminal_restores_settings_even_on_error() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        with pytest.raises(RuntimeError):
            with cbreak_terminal(slave) as is_tty:
                assert is_tty
                during = termios.tcgetattr(slave)
                assert not during[3] & termios.ICANON and not during[3] & termios.ECHO
                assert during[3] & termios.ISIG  # Ctrl-C still interrupts
                raise RuntimeError("boom")
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_cbreak_terminal_is_a_no_op_on_a_pipe() -> None:
    r, w = os.pipe()
    try:
        with cbreak_terminal(r) as is_tty:
            assert not is_tty
    finally:
        os.close(r)
        os.close(w)


async def test_read_fd_from_a_pipe_and_from_a_regular_file(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    got: list[str] = []
    eof = asyncio.Event()
    r, w = os.pipe()
    stop = read_fd_nonblocking(loop, r, got.append, eof.set)
    os.write(w, "1é#".encode())
    os.close(w)
    await eof.wait()
    stop()
    os.close(r)
    assert "".join(got) == "1é#"

    path = tmp_path / "keys.txt"
    path.write_text("1,wait 1s\n2\n")
    got.clear()
    eof.clear()
    with open(path, "rb") as f:  # regular files cannot be polled: read whole
        read_fd_nonblocking(loop, f.fileno(), got.append, eof.set)
        await eof.wait()
    assert "".join(got) == "1,wait 1s\n2\n"
