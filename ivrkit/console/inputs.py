"""Where the console caller's keys come from: the keyboard, lines on stdin, a key script.

`CallerInputs` feeds one `ConsoleChannel` from any mix of them and owns what it starts (fd
readers, script tasks), so `aclose()` leaves nothing behind. Keys wait for the call to connect;
a bad line on stdin is reported and hangs up (a script with a typo must not press keys its
author did not mean), and `run_key_script` plays a parsed script on the channel's clock — the
same function the tests run on a virtual clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence

from ivrkit.clock import Clock
from ivrkit.console.channel import ConsoleChannel
from ivrkit.console.script import HangUp, KeyScriptError, Press, Say, Step, Wait, parse_script_line
from ivrkit.console.term import read_fd_nonblocking, split_keys
from ivrkit.console.view import ConsoleView

__all__ = ["CallerInputs", "run_key_script"]


class CallerInputs:
    """Feeds the channel from the keyboard, stdin lines and/or a key script; owns their tasks."""

    def __init__(self, channel: ConsoleChannel, clock: Clock, view: ConsoleView) -> None:
        self.channel = channel
        self.clock = clock
        self.view = view
        self.tasks: list[asyncio.Task[None]] = []
        self.stoppers: list[Callable[[], None]] = []
        self.script_error: str | None = None
        self._line_queue: asyncio.Queue[Step | KeyScriptError | None] = asyncio.Queue()
        self._line_no = 0
        self._partial = ""
        self._typing: str | None = None  # words being typed after a ", None: keys

    def keyboard(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        def on_text(text: str) -> None:
            for token in split_keys(text):
                if self._typing is not None or token == '"':
                    self._type_speech(token)
                elif token.startswith("\x1b"):
                    self.view.notice("special key ignored (not sent): press 0-9, *, #, A-D; q hangs up")
                else:
                    self.channel.press(token)

        self.stoppers.append(read_fd_nonblocking(loop, fd, on_text, lambda: self.channel.caller_hangup("Ctrl-D")))

    def _type_speech(self, token: str) -> None:
        """`"` then words then Enter: the caller says the words (Esc: never mind)."""
        if self._typing is None:
            self._typing = ""
            self.view.notice('say: type the words, Enter speaks them, Esc cancels')
        elif token in ("\r", "\n"):
            words, self._typing = self._typing.strip(), None
            if words:
                self.channel.say(words)
        elif token.startswith("\x1b") or token in ("\x03", "\x04"):
            self._typing = None
            self.view.notice("say: cancelled")
        elif token in ("\x7f", "\b"):
            self._typing = self._typing[:-1]
        elif token.isprintable():
            self._typing += token

    def stdin_lines(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        def on_text(text: str) -> None:
            data = self._partial + text
            *lines, self._partial = data.split("\n")
            for line in lines:
                self._line(line)

        def on_eof() -> None:
            if self._partial:
                self._line(self._partial)
                self._partial = ""
            self._line_queue.put_nowait(None)

        self.stoppers.append(read_fd_nonblocking(loop, fd, on_text, on_eof))
        self.tasks.append(asyncio.ensure_future(self._run_queue()))

    def _line(self, line: str) -> None:
        self._line_no += 1
        for n, item in enumerate(line.split(","), start=1):
            try:
                step = parse_script_line(item, where=f"<stdin>: line {self._line_no}, item {n}")
            except KeyScriptError as e:
                self._line_queue.put_nowait(e)
                continue
            if step is not None:
                self._line_queue.put_nowait(step)

    async def _run_queue(self) -> None:
        await self._connected()
        while True:
            step = await self._line_queue.get()
            if step is None:
                return
            if isinstance(step, KeyScriptError):
                self._script_failed(str(step))
                return
            await self._step(step)

    def script(self, steps: Sequence[Step]) -> None:
        self.tasks.append(asyncio.ensure_future(self._run_steps(steps)))

    async def _run_steps(self, steps: Sequence[Step]) -> None:
        await self._connected()
        await run_key_script(steps, self.channel, self.clock)

    async def _step(self, step: Step) -> None:
        await run_key_script((step,), self.channel, self.clock)

    async def _connected(self) -> None:
        ready = asyncio.Event()
        self.channel.on_connect(ready.set)
        await ready.wait()

    def _script_failed(self, message: str) -> None:
        self.script_error = message
        print(f"ivrkit console: {message}", file=sys.stderr)
        self.channel.caller_hangup("key script error")

    async def aclose(self) -> None:
        for stop in self.stoppers:
            stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def run_key_script(steps: Sequence[Step], channel: ConsoleChannel, clock: Clock) -> None:
    """Play a parsed key script against `channel` on `clock`: the scripted caller.

    Stops early once the call is over (keys after the end would go nowhere)."""
    for step in steps:
        if channel.ended is not None:
            return
        if isinstance(step, Press):
            for key in step.keys:
                channel.press(key)
        elif isinstance(step, Wait):
            await clock.sleep(step.seconds)
        elif isinstance(step, HangUp):
            channel.caller_hangup()
        elif isinstance(step, Say):
            channel.say(step.text)
