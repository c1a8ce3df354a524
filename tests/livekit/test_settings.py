"""LIVEKIT_* settings and worker options (ivrkit.livekit.settings)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from ivrkit.livekit.routing import Route
from ivrkit.livekit.settings import DEFAULT_EXECUTOR, SettingsError, WorkerOptions, credentials

ENV = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}


def test_from_env_reads_livekit_and_ivrkit_variables() -> None:
    env = {**ENV, "IVRKIT_TRACE_DIR": "/tmp/t", "IVRKIT_EXECUTOR": "Process", "IVRKIT_ROUTES": "number:+1=a, room:r-*=b", "LIVEKIT_AGENT_NAME": "bank-ivr"}
    opts = WorkerOptions.from_env("flows", env)
    assert opts.path == Path("flows")
    assert opts.trace_dir == Path("/tmp/t")
    assert opts.executor == "process"
    assert opts.agent_name == "bank-ivr"
    assert opts.routes == (Route("number", "+1", "a"), Route("room", "r-*", "b"))
    creds = credentials(opts)
    assert (creds.url, creds.api_key, creds.api_secret) == ("ws://127.0.0.1:7880", "devkey", "secret")


def test_explicit_values_win_and_none_means_not_given() -> None:
    opts = WorkerOptions.from_env("f.yaml", ENV, url="wss://x.livekit.cloud", agent_name=None, executor=None)
    assert opts.url == "wss://x.livekit.cloud"
    assert opts.agent_name == "ivrkit"
    assert opts.executor == DEFAULT_EXECUTOR


def test_unknown_override_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="bogus"):
        WorkerOptions.from_env("f.yaml", ENV, bogus=1)


@pytest.mark.parametrize("missing", ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"])
def test_one_missing_variable_is_named_with_how_to_set_it(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(SettingsError) as err:
        credentials(WorkerOptions.from_env("f.yaml", env))
    message = str(err.value)
    assert message.startswith(f"{missing} is not set: export {missing}=")
    assert "\n" not in message
    assert err.value.exit_code == 2


def test_all_missing_are_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as err:
        credentials(WorkerOptions.from_env("f.yaml", {}))
    message = str(err.value)
    assert message.startswith("LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET are not set")
    assert "\n" not in message


def test_secret_never_shows_in_repr() -> None:
    opts = WorkerOptions.from_env("f.yaml", ENV)
    assert "secret" not in repr(opts) and "devkey" not in repr(opts)
    assert "secret" not in repr(credentials(opts))


@pytest.mark.parametrize("url", ["127.0.0.1:7880", "ftp://x", "ws://"])
def test_a_malformed_url_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="LIVEKIT_URL"):
        credentials(WorkerOptions.from_env("f.yaml", {**ENV, "LIVEKIT_URL": url}))


def test_bad_executor_is_refused() -> None:
    with pytest.raises(SettingsError, match="IVRKIT_EXECUTOR"):
        WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_EXECUTOR": "fork"})


def test_options_travel_to_job_processes() -> None:
    opts = WorkerOptions.from_env("flows", {**ENV, "IVRKIT_ROUTES": "room:a=b"})
    assert pickle.loads(pickle.dumps(opts)) == opts
    assert hash(opts) == hash(pickle.loads(pickle.dumps(opts)))


def test_dtmf_mode_comes_from_ivrkit_dtmf_and_a_bad_one_is_named() -> None:
    assert WorkerOptions.from_env("f.yaml", ENV).dtmf == "rfc4733"
    assert WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_DTMF": " Inband "}).dtmf == "inband"
    assert WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_DTMF": "inband"}, dtmf="both").dtmf == "both"
    with pytest.raises(SettingsError, match="dtmf must be one of rfc4733, inband, both, not 'tones'.*IVRKIT_DTMF"):
        WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_DTMF": "tones"})


def test_the_metrics_port_comes_from_the_environment_or_the_flag_and_is_checked() -> None:
    assert WorkerOptions.from_env("f.yaml", ENV).metrics_port is None  # off unless asked for
    assert WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_METRICS_PORT": "9100"}).metrics_port == 9100
    assert WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_METRICS_PORT": "9100"}, metrics_port=0).metrics_port == 0
    with pytest.raises(SettingsError, match="IVRKIT_METRICS_PORT='metrics' is not a port number"):
        WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_METRICS_PORT": "metrics"})
    with pytest.raises(SettingsError, match="metrics port must be 0-65535, not 70000"):
        WorkerOptions.from_env("f.yaml", ENV, metrics_port=70000)


def test_health_and_metrics_ports_bind_alike() -> None:
    assert WorkerOptions.from_env("f.yaml", ENV).bind_host == ""  # start: all interfaces, for probes
    assert WorkerOptions.from_env("f.yaml", ENV, dev=True).bind_host == "127.0.0.1"
    assert WorkerOptions.from_env("f.yaml", {**ENV, "IVRKIT_HTTP_HOST": "10.0.0.5"}).bind_host == "10.0.0.5"


def test_drain_timeout_from_env_or_flag_and_never_zero() -> None:
    assert WorkerOptions.from_env("flows", {}).drain_timeout == 1800
    assert WorkerOptions.from_env("flows", {"IVRKIT_DRAIN_TIMEOUT": "25"}).drain_timeout == 25
    assert WorkerOptions.from_env("flows", {"IVRKIT_DRAIN_TIMEOUT": "25"}, drain_timeout=5).drain_timeout == 5
    with pytest.raises(SettingsError, match=r"IVRKIT_DRAIN_TIMEOUT='0' is not a whole number >= 1"):
        WorkerOptions.from_env("flows", {"IVRKIT_DRAIN_TIMEOUT": "0"})
    with pytest.raises(SettingsError, match=r"drain timeout must be >= 1 s, not 0 \(IVRKIT_DRAIN_TIMEOUT / --drain-timeout\)"):
        WorkerOptions.from_env("flows", {}, drain_timeout=0)
