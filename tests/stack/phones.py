"""A SIP e2e module's view of its stack: one stack and worker per module (`sip_worker`), SIPp
phones dialling the worker, and what to print when a call goes wrong (the phone's and LiveKit
SIP's account, then the worker's log tail)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack import testenv
from stack.sip import sip_stack_missing
from stack.sip_stack import SipStack
from stack.sipp import SippPhone, SippResult
from stack.testenv import unavailable
from stack.worker import Worker


@contextlib.contextmanager
def sip_worker(name: str, flows: Path, *, agent: str, expect_flows: str,
               trunks: Callable[[SipStack], Sequence[str]],
               trace_timeout: float | None = None) -> Iterator[tuple[SipStack, Worker, Path]]:
    """Redis, livekit-server and LiveKit SIP up in a namespace (logs in a folder named `name`),
    the trunks and rules `trunks(sip)` creates — it returns the worker's own arguments (routes,
    `--sip-trunk`) — and `ivrkit start` on `flows`, registered with `expect_flows`. Yields
    (stack, worker, log folder); after, everything is stopped and nothing may be left running
    in the namespace. Skips (or fails, under IVRKIT_STACK_REQUIRED) without a SIP stack."""
    reason = sip_stack_missing()
    if reason:
        unavailable(reason)
    log_dir = testenv.log_dir(name)
    sip = SipStack.up(log_dir)
    try:
        args = trunks(sip)
        trace_dir = log_dir / "traces"
        proc = sip.start_worker(flows, agent=agent, trace_dir=trace_dir, expect_flows=expect_flows, args=args)
        print(f"\n{name}: LiveKit SIP {sip.sip.sip_ip}:{sip.sip.sip_port}, worker log {proc.log_path}")
        worker = Worker(proc, trace_dir) if trace_timeout is None else Worker(proc, trace_dir, trace_timeout=trace_timeout)
        yield sip, worker, log_dir
        proc.stop(timeout=10)
    finally:
        leftover = sip.down()
    assert leftover == [], f"processes left in the namespace: {leftover}"


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
