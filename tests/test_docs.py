"""Every code block of README.md and docs/*.md runs, as a newcomer would run it.

Why: a newcomer copies the README's flow, then the FlowTester example of docs/testing.md, and
the second failed against the first. Here each fenced block is taken from the Markdown and run
in a sandbox holding a copy of `flows/`, `examples/`, and the files a block names in a leading
`# path` comment (the README's `# flows/acme.yaml`):

- ```yaml: a block with `start:` and `states:` is a flow, checked with ivrkit's loader (no
  errors; hooks are not imported: the docs name hooks of your project, not ivrkit's). The
  "Top level" block of docs/flows.md ends in `states: {...}`; it is checked with the states of
  the next block of that page put there (`FRAGMENTS`).
- ```python: compiled, executed, then every `test_*` coroutine function it defines that takes
  no fixtures is run (in the sandbox, as pytest would run it from your checkout).
- ```sh / ```dockerfile: each command (`&&`-separated, `#` comments dropped, `\\` joined) is
  an `ivrkit` command run offline — `check`, `schema`, `prompts bake`, and `console`, which
  gets a scripted caller that hangs up after 2 s when the block gives none — or is listed in
  `NOT_RUN` with why it cannot run here. A command in neither fails the test: decide which.
- Untagged blocks are program output and diagrams, not code.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from ivrkit.flow.loader import check_flow_text

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands (by their first words) that are not run here, and why.
NOT_RUN: dict[str, str] = {
    "bash tests/run.sh": "needs root; installs Debian packages, Chromium and the Go builds (~12 min cold)",
    "python3 -m venv": "creates a virtualenv and installs from PyPI (network); the test runs in one already",
    ".venv/bin/pip install": "installs from PyPI (network)",
    "pip install": "installs from PyPI (network)",
    ".venv/bin/pytest tests/e2e": "the e2e tests need root and the built livekit-server",
    "ivrkit report /var/log/ivrkit/traces": "reads a worker's --trace-dir; tests/report/test_cli.py runs it on real traces",
    "export LIVEKIT_URL": "credentials of your LiveKit server",
    "export OTEL_": "the address of your OpenTelemetry collector",
    "ivrkit start": "registers with a LiveKit server",
    "ivrkit dev": "runs a worker (and with --local-server a livekit-server) until stopped; "
                  "tests/e2e/test_dialpad.py runs it",
    "ivrkit dialpad": "serves the dial pad for a LiveKit server",
    "FROM": "Dockerfile instruction (the RUN lines' ivrkit commands are run)",
    "WORKDIR": "Dockerfile instruction",
    "COPY": "Dockerfile instruction",
    "ENV": "Dockerfile instruction",
    "EXPOSE": "Dockerfile instruction",
    "CMD": "Dockerfile instruction: the worker needs a LiveKit server",
    "open": "opens a browser",
    "curl -s localhost:9100/metrics": "reads a running worker's metrics port; tests/livekit/test_status.py and "
                                      "tests/e2e/test_metrics.py read it",
}

#: Python blocks (by file and first line) that are compiled but not executed, and why.
NOT_EXECUTED: dict[tuple[str, str], str] = {
    ("docs/testing.md", "from stack.sip import create_dispatch_rule, create_inbound_trunk"):
        "starts Redis, livekit-server, LiveKit SIP and SIPp in a network namespace (root); "
        "tests/e2e/test_sip_calls.py runs the same calls",
}

#: Test functions a block defines that need the e2e stack's fixtures: defined, not run.
E2E_FIXTURES = {"stack", "room_name", "sip"}

#: A yaml block that is a fragment, checked inside another block of the same page.
FRAGMENTS = {("docs/flows.md", "flow: acme-bank"): ("states: {...}", "main:")}

SCRIPTED_CALLER = ["--fast", "--no-audio", "--keys", "wait 2s,hangup"]


@dataclass(frozen=True)
class Block:
    file: str  # relative to the repository
    line: int
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0] if self.text.strip() else ""


def _blocks() -> list[Block]:
    out = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S):
            out.append(Block(str(path.relative_to(ROOT)), text[: m.start()].count("\n") + 1, m.group(1), m.group(2)))
    return out


BLOCKS = _blocks()


def _named_file(block: Block) -> str | None:
    """`# flows/acme.yaml` on the first line: the block is that file."""
    m = re.match(r"#\s*(\S+\.ya?ml)\s*$", block.first_line)
    return m.group(1) if m else None


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A checkout-like folder: flows/ (a copy), examples/, and every file a doc block names."""
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for block in BLOCKS:
        name = _named_file(block)
        if name is not None:
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(block.text, encoding="utf-8")
    return tmp_path


def _by_lang(*langs: str) -> list[Block]:
    return [b for b in BLOCKS if b.lang in langs]


def test_the_docs_have_code_blocks_of_each_kind() -> None:
    assert {"yaml", "python", "sh"} <= {b.lang for b in BLOCKS}
    assert {b.lang for b in BLOCKS} <= {"yaml", "python", "sh", "dockerfile", ""}, "a new kind: teach this test"


# --- yaml -------------------------------------------------------------------------------------


def _flow_text(block: Block) -> str | None:
    """The flow a yaml block is or completes; None for a fragment checked inside another."""
    for (file, first), (slot, fragment_first) in FRAGMENTS.items():
        if block.file == file and block.first_line.startswith(first):
            fragment = next(b for b in BLOCKS if b.file == file and b.first_line.startswith(fragment_first))
            assert slot in block.text, f"{block.id}: '{slot}' is where the next block's states go"
            return block.text.replace(slot, "states:\n" + textwrap.indent(fragment.text, "  "))
        if block.file == file and block.first_line.startswith(fragment_first):
            return None
    return block.text


@pytest.mark.parametrize("block", _by_lang("yaml"), ids=lambda b: b.id)
def test_yaml_blocks_are_flows_that_pass_the_checks(block: Block, sandbox: Path) -> None:
    if (_named_file(block) or "").startswith("flows/far_ends/"):  # a scripted far end, not a flow
        from ivrkit.far_end_file import load_far_end_text

        load_far_end_text(block.text, block.id)
        return
    text = _flow_text(block)
    if text is None:
        return  # checked as part of the block it completes
    (sandbox / "common.yaml").write_text('prompts: {hold: "Please hold."}\n', encoding="utf-8")  # docs/flows.md includes it
    result = check_flow_text(text, str(sandbox / "doc.yaml"), check_hooks=False)
    errors = [i.format() for i in result.issues if i.severity == "error"]
    assert errors == [], f"{block.id}:\n" + "\n".join(errors)


# --- python -----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", _by_lang("python"), ids=lambda b: b.id)
def test_python_blocks_run(block: Block, sandbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = compile(block.text, block.id, "exec")
    reason = NOT_EXECUTED.get((block.file, block.first_line))
    if reason is not None:
        pytest.skip(f"compiled only: {reason}")
    monkeypatch.chdir(sandbox)
    namespace: dict[str, object] = {"__name__": "doc_block"}
    exec(code, namespace)
    ran = 0
    for name, fn in namespace.items():
        if not (name.startswith("test_") and inspect.iscoroutinefunction(fn)):
            continue
        params = set(inspect.signature(fn).parameters)
        if params & E2E_FIXTURES:
            continue  # an e2e test: needs the stack's fixtures (root, livekit-server)
        assert not params, f"{block.id}: {name} takes fixtures {params}; teach this test about them"
        asyncio.run(fn())
        ran += 1
    defines = [n for n in namespace if n.startswith("test_")]
    if defines and not ran:
        assert all(set(inspect.signature(namespace[n]).parameters) & E2E_FIXTURES for n in defines)  # type: ignore[arg-type]


# --- shell ------------------------------------------------------------------------------------


def _commands(block: Block) -> list[str]:
    text = block.text.replace("\\\n", " ")
    commands = []
    for raw in text.splitlines():
        line = _drop_comment(raw).strip()
        if block.lang == "dockerfile":
            if not line.startswith("RUN "):
                if line:
                    commands.append(line)
                continue
            line = line.removeprefix("RUN ").replace("/app/", "./")
        for part in line.split("&&"):
            part = part.strip()
            if part:
                commands.append(part)
    return commands


def _drop_comment(line: str) -> str:
    """The line without a trailing `# comment` (a # inside quotes, as in "1234#", stays)."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "\"'" and quote in (None, ch):
            quote = None if quote == ch else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _not_run(command: str) -> str | None:
    for prefix, reason in NOT_RUN.items():
        if command.startswith(prefix):
            return reason
    return None


def _run_ivrkit(command: str, cwd: Path) -> None:
    words = shlex.split(command)
    redirect = None
    if ">" in words:
        at = words.index(">")
        words, redirect = words[:at], words[at + 1]
    args = words[1:]
    if args[0] == "console" and "--keys" not in args:
        args += SCRIPTED_CALLER
    expanded = []
    for arg in args:  # the shell's globbing, for `flows/*.yaml`
        expanded += sorted(str(p.relative_to(cwd)) for p in cwd.glob(arg)) if "*" in arg and "=" not in arg else [arg]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0"}
    proc = subprocess.run([sys.executable, "-m", "ivrkit.cli", *expanded], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{command!r} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    if redirect is not None:
        (cwd / redirect).write_text(proc.stdout, encoding="utf-8")


@pytest.mark.parametrize("block", _by_lang("sh", "dockerfile"), ids=lambda b: b.id)
def test_shell_blocks_run_or_say_why_not(block: Block, sandbox: Path) -> None:
    for command in _commands(block):
        if _not_run(command) is not None:
            continue
        if command.startswith(".venv/bin/ivrkit "):
            command = command.removeprefix(".venv/bin/")
        assert command.startswith("ivrkit "), (
            f"{block.id}: {command!r} is neither an ivrkit command nor in NOT_RUN (add it there with the reason)")
        _run_ivrkit(command, sandbox)


def test_the_readme_says_how_to_install_what_tests_need() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    testing = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    assert "'.[test]'" in readme and "'.[test]'" in testing
