"""What the console tests share: a rendered prompt, a ConsoleChannel on a virtual clock with
its printed output (`Phone`), and where the repository and the embedded demo flow are."""

from __future__ import annotations

import io
from pathlib import Path

from ivrkit.channel import ChannelEvent
from ivrkit.console.channel import ConsoleChannel
from ivrkit.prompts import Prompt, fill
from ivrkit.testing import VirtualClock

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "ivrkit" / "defaults" / "demo.yaml"


def make_prompt(text: str, *, id: int = 1, state: str = "main", barge_in: bool = True):  # type: ignore[no-untyped-def]
    return fill(Prompt.text(text), {}, id=id, state=state, barge_in=barge_in)


class Phone:
    """A ConsoleChannel on a virtual clock with its printed output and emitted events."""

    def __init__(self, **kw: object) -> None:
        self.clock = VirtualClock()
        self.out = io.StringIO()
        self.events: list[ChannelEvent] = []
        self.channel = ConsoleChannel(clock=self.clock, out=self.out, **kw)  # type: ignore[arg-type]
        self.channel.connect(self.events.append)

    @property
    def text(self) -> str:
        return self.out.getvalue()
