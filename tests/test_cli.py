"""The `ivrkit` command line: every command is reachable, and the ones that need no server work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ivrkit import cli
from ivrkit.flow.loader import load_flow
from ivrkit.voice.cache import PromptCache
from ivrkit.voice.speech import EspeakVoice

ROOT = Path(__file__).resolve().parent.parent


def test_every_command_is_listed() -> None:
    help_text = cli.build_parser().format_help()
    for command in ("console", "check", "schema", "prompts", "start", "dev", "dialpad"):
        assert command in help_text


def test_prompts_bake_fills_the_cache_the_worker_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow_path = ROOT / "flows" / "bank.yaml"
    assert cli.main(["prompts", "bake", str(flow_path), "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "baked" in out and "templated" in out
    cache = PromptCache(tmp_path)
    menu = load_flow(flow_path).states["main"].menu
    assert menu is not None
    assert cache.get(menu.prompt.parts[0].value, EspeakVoice()) is not None
    # "Your balance is {balance} dollars." varies per call: never baked ahead
    balance_say = load_flow(flow_path).states["balance"].say
    assert balance_say is not None
    assert cache.get(balance_say.parts[0].value, EspeakVoice()) is None


def test_start_without_livekit_settings_says_which_and_how(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "ivrkit.cli", "start", str(ROOT / "flows")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "LIVEKIT_URL" in lines[0] and "export" in lines[0], proc.stderr
