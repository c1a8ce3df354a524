"""The browser dial pad, end to end: headless Chromium on the real page against a real server.

Why: the dial pad is how a flow author "calls" a flow without a phone line, and the JavaScript
path (livekit-client `publishDtmf` / `RoomEvent.SipDTMFReceived`) is one of the three client
stacks LiveKit's DTMF page names. Only a real browser, on the page `ivrkit dialpad` serves,
through a real livekit-server, proves that keys leave with the right RFC 4733 code and digit,
in order, and that what others send shows up on the page.

Everything runs inside the harness's network namespace: livekit-server, the dev server (bound to
the namespace's own 127.0.0.1), Chromium (driven by tests/e2e/web/dialpad_driver.mjs over JSON
lines) and the Python test caller (tests/stack/caller.py).

Prerequisites (installed by `bash tests/stack/install_web.sh`): Node.js, Debian chromium, the
built page bundle (ivrkit/dialpad/web/dist/app.js) and playwright-core in tests/e2e/web/node_modules.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack.process import NsProcess
from stack.stack import Stack
from stack.testenv import unavailable
from stack.worker import Worker

REPO = Path(__file__).resolve().parents[2]
WEB_DIR = REPO / "ivrkit" / "dialpad" / "web"
DRIVER_DIR = Path(__file__).resolve().parent / "web"
DRIVER = DRIVER_DIR / "dialpad_driver.mjs"
CHROMIUM = Path(os.environ.get("IVRKIT_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = "bash tests/stack/install_web.sh"
PAGE_IDENTITY = "web-dialpad"

# RFC 4733: what each keypad key must send. A-D go out lowercase.
RFC4733 = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "a": 12, "b": 13, "c": 14, "d": 15}


def missing_browser_prerequisites() -> str | None:
    """Why the browser test cannot run here, naming the install command; None if it can."""
    node = shutil.which("node")
    if node is None:
        return f"no Node.js (`node`) on PATH; the dial pad test needs it (then run `{INSTALL_HINT}`)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (Debian package chromium); install it with `{INSTALL_HINT}` as root"
    if not (WEB_DIR / "dist" / "app.js").is_file():
        return f"dial pad bundle not built ({WEB_DIR / 'dist' / 'app.js'}); build it with `{INSTALL_HINT}`"
    if not (DRIVER_DIR / "node_modules" / "playwright-core").is_dir():
        return f"playwright-core not installed in {DRIVER_DIR}; install it with `{INSTALL_HINT}`"
    return None


class BrowserError(AssertionError):
    """The browser driver reported a failure (or died); carries what the page showed."""


class Browser:
    """The Playwright driver process: one JSON request, one JSON reply; a thread reads stdout."""

    def __init__(self, process: NsProcess) -> None:
        self.process = process
        self.replies: list[dict[str, Any]] = []
        self.console: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._eof = False
        self._next_id = 0
        self._reader = threading.Thread(target=self._read, name="dialpad-browser", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        stdout = self.process.popen.stdout
        assert stdout is not None
        try:
            for raw in stdout:
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue  # non-JSON noise; the log keeps stderr
                with self._cond:
                    (self.console if "event" in obj else self.replies).append(obj)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(e.get("event") == "ready" for e in self.console):
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    raise BrowserError(f"dial pad driver did not start:\n{self.describe()}")
                self._cond.wait(left)

    def request(self, cmd: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Send `cmd`; return the reply's page snapshot, or raise BrowserError with the details."""
        stdin = self.process.popen.stdin
        if stdin is None or stdin.closed:
            raise BrowserError("dial pad driver's stdin is closed")
        with self._cond:
            self._next_id += 1
            cid = self._next_id
        stdin.write((json.dumps({"id": cid, "cmd": cmd, **fields}) + "\n").encode())
        stdin.flush()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                reply = next((r for r in self.replies if r.get("id") == cid), None)
                if reply is not None:
                    break
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    why = "exited" if self._eof else f"no reply in {timeout:.0f} s"
                    raise BrowserError(f"dial pad driver {why} to {cmd} {fields}:\n{self.describe()}")
                self._cond.wait(left)
        if not reply.get("ok"):
            shown = json.dumps(reply.get("page"), indent=1)[:3000]
            raise BrowserError(
                f"browser {cmd} {fields} failed: {reply.get('error')}\nscreenshot: {reply.get('screenshot')}\n"
                f"page: {shown}\n{self.describe()}"
            )
        page: dict[str, Any] = reply["page"]
        return page

    def describe(self) -> str:
        with self._cond:
            console = [f"  {e}" for e in self.console[-15:]]
        return ("browser console (errors/warnings):\n" + ("\n".join(console) or "  (none)")
                + f"\n{self.process.describe()}, log tail:\n{self.process.log_tail(20)}")

    def quit(self) -> None:
        stdin = self.process.popen.stdin
        if self.process.alive() and stdin is not None and not stdin.closed:
            try:
                stdin.write(b'{"cmd": "quit"}\n')
                stdin.close()
                self.process.popen.wait(10)
            except Exception:
                pass  # stop() below ends it by PID
        self.process.stop()
        self._reader.join(2.0)


@dataclass(frozen=True)
class DevServer:
    process: NsProcess
    url: str


def start_dialpad_server(stack: Stack, room: str, agent_name: str | None = None,
                         flows: Path | None = None) -> DevServer:
    """`python -m ivrkit.dialpad` (= `ivrkit dialpad`) in the namespace, on its 127.0.0.1."""
    argv = [sys.executable, "-m", "ivrkit.dialpad", "--host", "127.0.0.1", "--port", "0", "--room", room]
    if agent_name:
        argv += ["--agent-name", agent_name]
    if flows is not None:
        argv += ["--flows", str(flows)]  # the worker's flows: the page draws the call's
    proc = stack.start(argv, name="dialpad-devserver", env=stack.env(), cwd=REPO)  # secret via env, not argv
    match = proc.wait_for_log(r"serving (http://127\.0\.0\.1:\d+/)", timeout=20.0)
    return DevServer(process=proc, url=match.group(1))


@pytest.fixture
def browser_ready() -> None:
    """Skip (or fail under IVRKIT_STACK_REQUIRED=1) when Node, Chromium or the bundle is missing."""
    reason = missing_browser_prerequisites()
    if reason:
        unavailable(reason)


@pytest.fixture
def dialpad_server(stack: Stack, room_name: str, browser_ready: None) -> Iterator[DevServer]:
    server = start_dialpad_server(stack, room_name)
    try:
        yield server
    finally:
        server.process.stop()


def start_browser(stack: Stack, fake_audio: Path | None = None) -> Browser:
    """Headless Debian Chromium, fresh profile, driven by playwright-core, in the namespace; its
    microphone is Chromium's fake device (beeps, or the WAV file `fake_audio`, looped)."""
    node = shutil.which("node")
    assert node is not None  # browser_ready skipped otherwise
    argv = [node, str(DRIVER), "--chromium", str(CHROMIUM), "--artifacts", str(stack.log_dir / "dialpad-shots")]
    if fake_audio is not None:
        argv += ["--fake-audio", str(fake_audio)]
    proc = stack.start(argv, name="dialpad-browser", cwd=DRIVER_DIR, pipe_stdin=True, pipe_stdout=True)
    b = Browser(proc)
    try:
        b.wait_ready()
    except BaseException:
        b.quit()
        raise
    return b


@pytest.fixture
def browser(stack: Stack, browser_ready: None) -> Iterator[Browser]:
    b = start_browser(stack)
    try:
        yield b
    finally:
        b.quit()


def expected(keys: str) -> list[tuple[str, int]]:
    """(digit, code) that each key must produce: A-D lowercase, RFC 4733 codes."""
    return [(k.lower(), RFC4733[k.lower()]) for k in keys]


def test_keys_from_the_page_reach_a_python_caller_and_back(
    stack: Stack, room_name: str, dialpad_server: DevServer, browser: Browser
) -> None:
    caller = stack.caller(room_name, identity="py-caller")

    page = browser.request("open", url=f"{dialpad_server.url}?room={room_name}&identity={PAGE_IDENTITY}")
    assert page["status"] == "connected", page["status_text"]
    caller.wait_for("participant_joined", 15.0, participant=PAGE_IDENTITY)

    # Every key of the 4x4 pad by mouse, then keys typed on the keyboard (letters in both cases).
    clicked = "123A456B789C*0#D"
    typed = "9#*bD05"
    browser.request("press", keys=clicked, via="click")
    page = browser.request("press", keys=typed, via="keyboard")
    want = expected(clicked + typed)

    # The page lists each key as sent, with the code and digit it handed to publishDtmf ...
    assert [(s["digit"], s["code"]) for s in page["sent"]] == want
    assert all(s["ok"] for s in page["sent"]), page["sent"]
    # ... and the Python caller receives exactly those, in order, from the page's participant.
    got = caller.wait_for_dtmf(len(want), timeout=15.0)
    assert [(d.digit, d.code) for d in got] == want
    assert {d.participant for d in got} == {PAGE_IDENTITY}
    time.sleep(0.5)  # nothing extra may trail in: no key is invented or doubled
    assert len(caller.received_dtmf()) == len(want)

    # The other way: DTMF the Python caller publishes shows up on the page, in order, with sender.
    sent_back = "5#a*0d"
    caller.press(sent_back, interval=0.05)
    page = browser.request("wait_received", count=len(sent_back))
    assert [(r["digit"], r["code"]) for r in page["received"]] == expected(sent_back)
    assert {r["from"] for r in page["received"]} == {"py-caller"}
    assert [r["text"].split()[0] for r in page["received"]] == ["5", "#", "A", "*", "0", "D"]

    browser.request("screenshot", name="after-dtmf")
    page = browser.request("hangup")
    assert page["status"] == "ended" and "CLIENT_INITIATED" in page["status_text"]
    caller.wait_for("participant_left", 15.0, participant=PAGE_IDENTITY)


def test_page_says_why_it_cannot_join(stack: Stack, room_name: str, dialpad_server: DevServer,
                                      browser: Browser) -> None:
    page = browser.request("open", url=f"{dialpad_server.url}?room={room_name}&identity=two%20words",
                           expect="error")
    assert page["status"] == "error"
    assert "bad identity 'two words'" in page["status_text"]
    assert all(b == "disabled" for b in page["keypad"]), "keys must stay off outside a call"


FLOW_SENDS = "12#ABcd*0"  # A-D in both cases: they must reach the page lowercase

# Two menus and a DTMF-sending state: pressing 1 moves the flow to `sales` (the page hears both
# prompts and shows the state), pressing 2 makes the flow send FLOW_SENDS to the page.
FLOW = """\
flow: dialpad-e2e
start: main
defaults: {timeout: 60s, retries: 1}
states:
  main:
    menu:
      prompt: "Main menu. For sales, press 1. For tones, press 2. To hang up, press 0."
      options: {"1": sales, "2": tones, "0": bye, "3": pin}
      on_max_retries: bye
  pin:
    collect:
      prompt: "Enter your PIN, then press pound."
      into: pin
      min_digits: 4
      max_digits: 8
      sensitive: true
      on_max_retries: bye
    next: main
  sales:
    menu:
      prompt: "Sales. To go back to the main menu, press 9."
      options: {"9": main}
      on_max_retries: bye
  tones:
    send_dtmf: {digits: "%s", pace: 100ms}
    next: main
  bye: {say: "Goodbye.", hangup: true}
""" % FLOW_SENDS


# A second flow in the worker's folder, to be picked from the page (dispatch metadata).
OTHER_FLOW = """\
flow: dialpad-other
start: hello
defaults: {timeout: 60s, retries: 1}
states:
  hello:
    menu:
      prompt: "The other flow. Press 1 to leave."
      options: {"1": bye}
      on_max_retries: bye
  bye: {say: "Goodbye.", hangup: true}
"""


#: The shipped press-or-say example: the page speaks to it (say box, microphone).
PRESS_OR_SAY = REPO / "flows" / "press_or_say.yaml"


def _write_flows(folder: Path) -> Path:
    folder.mkdir()
    (folder / "dialpad.yaml").write_text(FLOW)
    (folder / "other.yaml").write_text(OTHER_FLOW)
    (folder / "press_or_say.yaml").write_text(PRESS_OR_SAY.read_text())
    return folder


def _worker_env(stack: Stack) -> dict[str, str]:
    # IVRKIT_MAX_CALLS makes the worker report its load as calls/max instead of machine CPU:
    # livekit-server gives no job to a worker reporting load >= 0.7, which a 2-core machine
    # running Chromium reaches.
    return {**stack.env(), "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0", "IVRKIT_MAX_CALLS": "4"}


@pytest.fixture
def worker(stack: Stack, tmp_path: Path) -> Iterator[Worker]:
    """The ivrkit worker on a folder of FLOW and OTHER_FLOW, under an agent name of its own."""
    flows = _write_flows(tmp_path / "flows")
    agent = f"dialpad-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    proc = stack.start(
        # `dev`, as a flow author runs it next to the dial pad.
        [sys.executable, "-m", "ivrkit.livekit.worker", "dev", str(flows), "--no-reload", "--agent-name", agent,
         "--default-flow", "dialpad-e2e", "--http-port", "0"],
        name="worker", cwd=REPO, env=_worker_env(stack),
    )
    try:
        proc.wait_for_log(r"ivrkit worker registered", timeout=90.0)
        yield Worker(agent_name=agent, process=proc)
    finally:
        proc.stop(timeout=10.0)


def _call_flow(stack: Stack, room_name: str, worker: Worker, browser: Browser, flow: str = "",
               flows: Path | None = None) -> dict[str, Any]:
    """Open the page with a token that dispatches `worker`; return the page once it hears sound."""
    server = start_dialpad_server(stack, room_name, agent_name=worker.agent_name, flows=flows)
    query = f"room={room_name}&identity={PAGE_IDENTITY}" + (f"&flow={flow}" if flow else "")
    page = browser.request("open", url=f"{server.url}?{query}")
    assert page["status"] == "connected", page["status_text"]
    page = browser.request("wait_audio", min_packets=25, min_energy=1e-4, timeout_ms=30000, timeout=40.0)
    assert page["audio"]["tracks"] == 1
    assert page["agent"].startswith("agent-"), page["agent"]
    return page


def test_page_calls_a_flow_and_hears_each_prompt(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    # The token dispatched the worker; it answers the page's "call" and plays the first menu.
    page = _call_flow(stack, room_name, worker, browser)
    worker.process.wait_for_log(r"call in room '[^']+': caller 'web-dialpad'", timeout=5.0)
    worker.process.wait_for_log(r"prompt 1 \[main\]", timeout=5.0)
    before = page["audio"]
    browser.request("screenshot", name="main-menu")

    # A menu key clicked on the pad takes the flow to `sales`, and its prompt's sound arrives.
    page = browser.request("press", keys="1", via="click")
    assert [(s["digit"], s["code"]) for s in page["sent"]] == [("1", 1)]
    worker.process.wait_for_log(r"prompt \d+ \[sales\]", timeout=15.0)
    browser.request("wait_audio", min_packets=before["packets"] + 25, min_energy=before["energy"] + 1e-4,
                    timeout_ms=15000, timeout=25.0)

    # Back with the keyboard: the main menu plays again.
    browser.request("press", keys="9", via="keyboard")
    worker.process.wait_for_log(r"prompt \d+ \[main\][\s\S]*prompt \d+ \[sales\][\s\S]*prompt \d+ \[main\]",
                                timeout=15.0)
    page = browser.request("snapshot")
    assert page["received"] == []  # no DTMF was asked of the flow: none may be invented

    # Hanging up on the page ends the call in the worker.
    page = browser.request("hangup")
    assert page["status"] == "ended"
    worker.process.wait_for_log(r"job \S+ [^\n]*ended: [^\n]*caller_hangup", timeout=15.0)


def test_flow_hanging_up_ends_the_call_on_the_page(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    _call_flow(stack, room_name, worker, browser)
    browser.request("press", keys="0", via="keyboard")
    worker.process.wait_for_log(r"prompt \d+ \[bye\]", timeout=15.0)
    page = browser.request("wait_ended", timeout_ms=20000, timeout=30.0)
    assert "ROOM_DELETED" in page["status_text"]  # how a flow hangs up: it deletes the room
    assert all(b == "disabled" for b in page["keypad"])


def test_page_receives_the_dtmf_a_flow_sends(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    _call_flow(stack, room_name, worker, browser)
    browser.request("press", keys="2", via="click")
    page = browser.request("wait_received", count=len(FLOW_SENDS), timeout_ms=20000, timeout=30.0)
    assert [(r["digit"], r["code"]) for r in page["received"]] == expected(FLOW_SENDS)
    assert {r["from"] for r in page["received"]} == {page["agent"]}
    browser.request("screenshot", name="flow-sent-dtmf")
    worker.process.wait_for_log(r"prompt \d+ \[main\][\s\S]*prompt \d+ \[main\]", timeout=15.0)
    time.sleep(0.5)  # nothing may trail in: no key invented or doubled
    assert len(browser.request("snapshot")["received"]) == len(FLOW_SENDS)


def test_page_picks_which_flow_to_call(stack: Stack, room_name: str, worker: Worker, browser: Browser) -> None:
    _call_flow(stack, room_name, worker, browser, flow="dialpad-other")
    worker.process.wait_for_log(r"caller 'web-dialpad' \(non-SIP\) -> flow 'dialpad-other' \(dispatch metadata\)",
                                timeout=5.0)
    worker.process.wait_for_log(r"prompt 1 \[hello\]", timeout=5.0)
    browser.request("press", keys="1", via="click")
    page = browser.request("wait_ended", timeout_ms=20000, timeout=30.0)
    assert "ROOM_DELETED" in page["status_text"]


def test_ivrkit_dev_serves_the_dial_pad_next_to_the_worker(
    stack: Stack, room_name: str, browser_ready: None, browser: Browser, tmp_path: Path
) -> None:
    """The flow author's command: `ivrkit dev FLOWS` prints the dial pad's address; calling works."""
    flows = _write_flows(tmp_path / "flows")
    agent = f"dev-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    ivrkit = Path(sys.executable).with_name("ivrkit")
    proc = stack.start(
        [str(ivrkit), "dev", str(flows), "--no-reload", "--agent-name", agent, "--default-flow", "dialpad-e2e",
         "--http-port", "0", "--dialpad-port", "0"],
        name="ivrkit-dev", cwd=REPO, env=_worker_env(stack),
    )
    url = proc.wait_for_log(r"dial pad at (http://127\.0\.0\.1:\d+/)", timeout=60.0).group(1)
    proc.wait_for_log(r"ivrkit worker registered", timeout=90.0)
    page = browser.request("open", url=f"{url}?room={room_name}&identity={PAGE_IDENTITY}")
    assert page["status"] == "connected", page["status_text"]
    browser.request("wait_audio", min_packets=25, min_energy=1e-4, timeout_ms=30000, timeout=40.0)
    proc.wait_for_log(r"prompt 1 \[main\]", timeout=5.0)
    browser.request("press", keys="1", via="click")
    proc.wait_for_log(r"prompt \d+ \[sales\]", timeout=15.0)
    # `ivrkit dev` hands its flows to the dial pad: the page draws the call's flow (or, without
    # Graphviz, says how to get it) and follows the call.
    picture = browser.request("wait_picture", state="sales", edge="main:key:1", timeout_ms=15000, timeout=25.0)["picture"]
    assert picture["flow"] == "dialpad-e2e" and picture["path"] == "path: main → sales"
    if shutil.which("dot"):
        assert picture["lit_elements"] == ["node:sales"] and picture["taken_elements"] == ["edge:main:key:1"]
    else:
        assert picture["message"].startswith("no picture: Graphviz's `dot` is not on PATH")


def test_page_shows_the_agent_state_and_prompt(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    _call_flow(stack, room_name, worker, browser)
    page = browser.request("wait_state", state="main", timeout_ms=10000, timeout=20.0)
    assert "Main menu" in page["prompt"]
    browser.request("press", keys="1", via="click")
    page = browser.request("wait_state", state="sales", timeout_ms=15000, timeout=25.0)
    assert "Sales" in page["prompt"]
    browser.request("screenshot", name="sales")
    browser.request("press", keys="9", via="keyboard")
    page = browser.request("wait_state", state="main", timeout_ms=15000, timeout=25.0)
    assert "Main menu" in page["prompt"]


def test_keys_sent_during_a_pin_entry_are_masked_and_the_prompt_is_shown_once(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    """The page lists the keys it sends; while the agent publishes ivrkit.sensitive=true (a
    sensitive collect) they are masked everywhere on the page, and only then."""
    _call_flow(stack, room_name, worker, browser)
    page = browser.request("wait_state", state="main", timeout_ms=10000, timeout=20.0)
    assert page["sensitive"] == "false"
    assert "ivrkit.prompt" not in page["attributes"] and "Main menu" not in page["attributes"]  # the panel has it
    page = browser.request("press", keys="3", via="click")
    assert [(s["digit"], s["masked"]) for s in page["sent"]] == [("3", False)]
    page = browser.request("wait_state", state="pin", timeout_ms=15000, timeout=25.0)
    assert page["sensitive"] == "true"
    page = browser.request("press", keys="4321#", via="keyboard")
    pin_items = page["sent"][1:]
    assert [(s["masked"], s.get("digit"), s["ok"]) for s in pin_items] == [(True, None, True)] * 5, page["sent"]
    assert all(s["text"].startswith("•") for s in pin_items)
    assert "4321" not in page["page_text"] and "4 3 2 1" not in page["page_text"]
    worker.process.wait_for_log(r"prompt \d+ \[pin\][\s\S]*prompt \d+ \[main\]", timeout=15.0)  # collected
    page = browser.request("wait_state", state="main", timeout_ms=15000, timeout=25.0)
    assert page["sensitive"] == "false"
    page = browser.request("press", keys="1", via="click")
    assert (page["sent"][-1]["digit"], page["sent"][-1]["masked"]) == ("1", False)  # clear again


def test_ivrkit_dev_local_server_is_one_command_for_a_browser_call(
    stack: Stack, room_name: str, browser_ready: None, browser: Browser, tmp_path: Path
) -> None:
    """A newcomer's command: `ivrkit dev FLOWS --local-server` starts its own livekit-server
    (signalling on 127.0.0.1, media on a non-loopback address: here the namespace's, on a laptop
    its LAN address), the worker and the dial pad; a browser call hears the menu and its keys
    work. No LIVEKIT_* variables. Its ports differ from the harness's server in the same
    namespace (7880, UDP 50000-50199)."""
    from stack.server import server_binary

    flows = _write_flows(tmp_path / "flows")
    agent = f"local-{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    env = {k: v for k, v in _worker_env(stack).items() if not k.startswith("LIVEKIT_") or k.startswith("LIVEKIT_AGENTS")}
    env["IVRKIT_LIVEKIT_SERVER"] = str(server_binary())
    ivrkit = Path(sys.executable).with_name("ivrkit")
    proc = stack.start(
        [str(ivrkit), "dev", str(flows), "--local-server", "--local-server-ip", stack.address,
         "--local-server-port", "7890", "--local-server-udp", "50300-50399",
         "--no-reload", "--agent-name", agent, "--default-flow", "dialpad-e2e", "--http-port", "0",
         "--dialpad-port", "0"],
        name="ivrkit-dev-local", cwd=REPO, env=env,
    )
    proc.wait_for_log(rf"local livekit-server at ws://127\.0\.0\.1:7890 \(media on {stack.address}", timeout=40.0)
    url = proc.wait_for_log(r"dial pad at (http://127\.0\.0\.1:\d+/)", timeout=60.0).group(1)
    proc.wait_for_log(r"ivrkit worker registered", timeout=90.0)
    page = browser.request("open", url=f"{url}?room={room_name}&identity={PAGE_IDENTITY}")
    assert page["status"] == "connected", page["status_text"]
    browser.request("wait_audio", min_packets=25, min_energy=1e-4, timeout_ms=30000, timeout=40.0)
    proc.wait_for_log(r"prompt 1 \[main\]", timeout=5.0)
    browser.request("press", keys="1", via="click")
    proc.wait_for_log(r"prompt \d+ \[sales\]", timeout=15.0)
    browser.request("hangup")
    proc.stop(timeout=15.0)
    assert "livekit-server" not in stack.run(["pgrep", "-fa", "ivrkit-local-server-"]).stdout  # stopped with dev


#: Where the test below leaves its screenshot of the lit picture, for a person to look at.
PICTURE_SHOT = Path("/tmp/ivrkit-dialpad-picture.png")


def test_page_draws_the_flow_and_lights_the_state_and_edge_after_a_key(
    stack: Stack, room_name: str, worker: Worker, browser: Browser, tmp_path: Path
) -> None:
    if shutil.which("dot") is None:
        unavailable("Graphviz's dot is missing (apt-get install graphviz; tests/stack/install.sh installs it)")
    # The worker fixture's flows (tmp_path is shared with it): the dial pad draws from the same files.
    _call_flow(stack, room_name, worker, browser, flows=tmp_path / "flows")
    page = browser.request("wait_picture", state="main", edge="_ivrkit_start:start", timeout_ms=15000, timeout=25.0)
    picture = page["picture"]
    assert picture["flow"] == "dialpad-e2e" and picture["svg"], picture
    assert picture["lit_elements"] == ["node:main"] and picture["taken_elements"] == ["edge:_ivrkit_start:start"]

    # A key on the pad: the worker publishes the move, the picture follows it.
    browser.request("press", keys="1", via="click")
    page = browser.request("wait_picture", state="sales", edge="main:key:1", timeout_ms=15000, timeout=25.0)
    picture = page["picture"]
    assert picture["lit_elements"] == ["node:sales"], picture  # one state lit: the one the call is in
    assert picture["taken_elements"] == ["edge:main:key:1"]
    assert picture["path"] == "path: main → sales"
    assert page["state"] == "sales"  # the agent panel agrees
    shot = browser.request("screenshot", name="picture", path=str(PICTURE_SHOT))
    assert PICTURE_SHOT.is_file() and PICTURE_SHOT.stat().st_size > 10_000, shot

    # And back: the edge out of sales is marked, the path grows.
    browser.request("press", keys="9", via="keyboard")
    picture = browser.request("wait_picture", state="main", edge="sales:key:9", timeout_ms=15000, timeout=25.0)["picture"]
    assert picture["lit_elements"] == ["node:main"] and picture["taken_elements"] == ["edge:sales:key:9"]
    assert picture["path"] == "path: main → sales → main"


#: Where the say-box test leaves its screenshot of the page listening, for a person to look at.
SPEECH_SHOT = Path("/tmp/ivrkit-dialpad-speech.png")
MIC_SHOT = Path("/tmp/ivrkit-dialpad-mic.png")


def test_the_say_box_speaks_to_a_press_or_say_flow(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    """Words typed in the say box: the dev server speaks them (eSpeak NG), the page plays them into
    its microphone track, the worker's offline recogniser hears them and the flow moves — no key
    pressed, no microphone."""
    page = _call_flow(stack, room_name, worker, browser, flow="press-or-say")
    assert page["voice"]["enabled"] and page["voice"]["mic"] == "off"
    page = browser.request("wait_state", state="main", timeout_ms=15000, timeout=25.0)
    assert "say billing or press 1" in page["prompt"]
    # The menu listens while its prompt plays (barge-in): the page says so, with its words.
    page = browser.request("wait_listening", what="billing, bills, invoice, payments", timeout_ms=15000, timeout=25.0)
    assert page["listening"]["text"].startswith("Listening now: say billing, bills")
    assert "representative" in page["listening"]["what"]

    page = browser.request("say", text="invoice", timeout_ms=15000, timeout=25.0)
    assert page["voice"]["said"] == 1
    assert any('said "invoice" (' in line for line in page["log"]), page["log"]
    page = browser.request("wait_state", state="account", timeout_ms=20000, timeout=30.0)
    worker.process.wait_for_log(r"prompt \d+ \[account\]", timeout=5.0)
    assert page["sent"] == []  # it was the words: no key left the page
    # The collect takes spoken digits now; the page shows what it listens for.
    page = browser.request("wait_listening", what="4 digits", timeout_ms=15000, timeout=25.0)
    shot = browser.request("screenshot", name="speech", path=str(SPEECH_SHOT))
    assert SPEECH_SHOT.is_file(), shot
    browser.request("hangup")


@pytest.fixture
def said_billing(tmp_path: Path) -> Path:
    """ "billing" in eSpeak NG's voice, padded with quiet, as the browser's fake microphone plays it."""
    from ivrkit.voice.audio import concat, resample, silence, write_wav
    from ivrkit.voice.speech import EspeakVoice

    words = resample(EspeakVoice("en-us").synthesize("billing"), 48000)
    return write_wav(tmp_path / "billing.wav", concat([silence(0.5, sample_rate=48000), words,
                                                        silence(1.5, sample_rate=48000)]))


def test_the_microphone_speaks_to_a_press_or_say_flow(
    stack: Stack, room_name: str, worker: Worker, browser_ready: None, said_billing: Path
) -> None:
    """The mic switch: the browser's microphone (Chromium's fake device playing a WAV of
    "billing") goes into the call only once it is on, and the flow routes on it."""
    browser = start_browser(stack, fake_audio=said_billing)
    try:
        page = _call_flow(stack, room_name, worker, browser, flow="press-or-say")
        assert page["voice"]["mic"] == "off" and page["voice"]["mic_button"] == "Microphone: off"
        browser.request("wait_listening", what="billing", timeout_ms=15000, timeout=25.0)
        page = browser.request("mic", on=True)
        assert page["voice"]["mic_button"] == "Microphone: on"
        browser.request("wait_voice_level", min_level=0.02, timeout_ms=10000, timeout=20.0)  # the call hears it
        browser.request("screenshot", name="mic-on", path=str(MIC_SHOT))
        page = browser.request("wait_state", state="account", timeout_ms=30000, timeout=40.0)
        assert page["sent"] == [] and page["voice"]["said"] == 0  # the microphone, not keys or the say box
        page = browser.request("mic", on=False)
        assert page["voice"]["mic"] == "off" and page["voice"]["mic_button"] == "Microphone: off"
        browser.request("hangup")
    finally:
        browser.quit()


def test_a_key_only_flow_is_shown_not_listening_and_words_said_in_a_pin_entry_are_masked(
    stack: Stack, room_name: str, worker: Worker, browser: Browser
) -> None:
    """The listening line says when speech goes nowhere; words typed in a sensitive collect (a
    PIN said aloud) never appear on the page, as keys pressed there do not."""
    _call_flow(stack, room_name, worker, browser)
    page = browser.request("wait_state", state="main", timeout_ms=10000, timeout=20.0)
    page = browser.request("wait_listening", listening=False)
    assert page["listening"]["text"] == "Not listening for speech now: keys only."
    browser.request("press", keys="3", via="click")
    page = browser.request("wait_state", state="pin", timeout_ms=15000, timeout=25.0)
    assert page["sensitive"] == "true"
    page = browser.request("say", text="four three two one", timeout_ms=15000, timeout=25.0)
    assert any(line.endswith("saying • (the flow is not listening for speech now)") for line in page["log"]), page["log"]
    assert any("said • (" in line for line in page["log"]), page["log"]
    assert "four three two one" not in page["page_text"] and "four" not in " ".join(page["log"])
