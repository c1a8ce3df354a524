"""A SIP e2e module's view of its stack: SIPp phones dialling the worker, and what to print when
a call goes wrong (the phone's and LiveKit SIP's account, then the worker's log tail)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack.sip_stack import SipStack
from stack.sipp import SippPhone, SippResult
from stack.worker import Worker


@dataclass
class PhoneEnv:
    sip: SipStack
    worker: Worker
    workdir: Path

    def call(self, number: str, name: str, **options: Any) -> SippPhone:
        """A SIPp phone calling `number` (through the stack's inbound trunk), its files in `name`."""
        options.setdefault("answer_timeout", 15.0)
        return self.sip.phone(number, self.workdir / name, **options)

    def why(self, result: SippResult) -> str:
        """What to print on a failure: the phone's and LiveKit SIP's view, and the worker's."""
        return f"\n{self.sip.explain(result)}\n--- worker log tail\n{self.worker.tail()}"
