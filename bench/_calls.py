"""Running calls in-process for the engine benchmarks: the flow, the machine, idle detection.

"Idle" (the end of one keypress's processing) means: the call's event queue is empty and the
event loop has no runnable callback left — every task the key woke has run to its next wait.
That is exactly what `FlowTester` waits for, measured the same way for ivrkit and the baseline.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from _baselines import Table

#: The flow the keypress and memory benchmarks run (menus and a 4-digit sensitive PIN).
BENCH_FLOW = """\
flow: bench-keys
start: main
defaults: {timeout: 5s, inter_digit_timeout: 3s, retries: 3, terminator: "#"}
states:
  main:
    menu:
      prompt: "Main menu. For sales press 1. For support press 2. For your PIN press 3."
      options: {"1": sales, "2": support, "3": pin}
      no_input: "Sorry, I didn't hear a choice."
      no_match: "That is not a valid choice."
      on_max_retries: main
  sales:
    menu:
      prompt: "Sales. For the main menu press 0. For support press 2. For your PIN press 3."
      options: {"0": main, "2": support, "3": pin}
      no_input: "Sorry, I didn't hear a choice."
      no_match: "That is not a valid choice."
      on_max_retries: main
  support:
    menu:
      prompt: "Support. For the main menu press 0. For sales press 1. For your PIN press 3."
      options: {"0": main, "1": sales, "3": pin}
      no_input: "Sorry, I didn't hear a choice."
      no_match: "That is not a valid choice."
      on_max_retries: main
  pin:
    collect:
      prompt: "Please enter your four digit PIN."
      into: pin
      min_digits: 4
      max_digits: 4
      sensitive: true
      no_match: "That PIN is not valid."
      on_max_retries: main
    next: main
"""

#: The same IVR for the hand-written baseline.
BENCH_TABLE: Table = {
    "main": ("menu", "Main menu. For sales press 1. For support press 2. For your PIN press 3.",
             {"1": "sales", "2": "support", "3": "pin"}),
    "sales": ("menu", "Sales. For the main menu press 0. For support press 2. For your PIN press 3.",
              {"0": "main", "2": "support", "3": "pin"}),
    "support": ("menu", "Support. For the main menu press 0. For sales press 1. For your PIN press 3.",
                {"0": "main", "1": "sales", "3": "pin"}),
    "pin": ("collect", "Please enter your four digit PIN.", (4, "main")),
}

#: One cycle of keys: main -1-> sales -2-> support -0-> main -3-> pin, 4 digits -> main.
#: Kinds: "menu" (a menu option: barge-in, transition, next prompt), "digit" (a PIN digit that
#: does not complete), "complete" (the 4th digit: collect ends, transition, next prompt).
CYCLE: list[tuple[str, str]] = [("1", "menu"), ("2", "menu"), ("0", "menu"), ("3", "menu"),
                                ("5", "digit"), ("5", "digit"), ("5", "digit"), ("5", "complete")]


def load_bench_machine() -> Any:
    """Load BENCH_FLOW through the real loader and compile the shared FlowMachine."""
    from ivrkit.flow.loader import load_flow
    from ivrkit.machine import FlowMachine

    with tempfile.TemporaryDirectory(prefix="ivrkit-bench-") as tmp:
        path = Path(tmp) / "bench-keys.yaml"
        path.write_text(BENCH_FLOW)
        flow = load_flow(path)
    return FlowMachine(flow)


async def until_idle(queue_size: Any) -> int:
    """Yield until nothing is runnable and `queue_size()` is 0. Returns the loop turns taken."""
    loop = asyncio.get_running_loop()
    ready = loop._ready  # type: ignore[attr-defined]  # CPython's run queue: "is anything runnable?"
    turns = 0
    while True:
        await asyncio.sleep(0)
        turns += 1
        if not ready and not queue_size():
            return turns
