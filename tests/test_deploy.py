"""The deployment files in examples/deploy/ agree with the worker they deploy.

Why: a Dockerfile, a Kubernetes manifest, a scrape config and a dashboard are copied into
production as they are; each names things the worker defines (flags, ports, probe paths, metric
names and labels), and nothing else would notice when one of those changes. So each file is
checked by the tool that would read it where one runs here (`promtool` for the scrape config and
every dashboard query, the worker's own argument parser for the container's command, ivrkit
for the build's `ivrkit` steps) and against what the worker really serves: its status server
answers the probe paths, and every metric and label a query or the autoscaler names is one the
worker exports.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ivrkit.livekit.admission import Admission
from ivrkit.livekit.settings import WorkerOptions
from ivrkit.livekit.status import Readiness, Status, WorkerSeries
from ivrkit.livekit.worker import add_worker_arguments, options_from_args
from ivrkit.metrics import IvrMetrics
from tests.test_docs import _run_ivrkit

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "examples" / "deploy"
CREDENTIALS = {"LIVEKIT_URL": "ws://127.0.0.1:7880", "LIVEKIT_API_KEY": "key", "LIVEKIT_API_SECRET": "secret"}


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) in order, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in dockerfile():
        if word == "ENV":
            for item in shlex.split(rest):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def docker_cmd() -> list[str]:
    cmds = [json.loads(rest) for word, rest in dockerfile() if word == "CMD"]
    assert len(cmds) == 1, "one CMD, in exec form"
    command: list[str] = cmds[0]
    return command


def worker_options(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> WorkerOptions:
    """What `ivrkit start` makes of the container's command and environment."""
    import argparse

    assert argv[:2] == ["ivrkit", "start"], f"the container runs `ivrkit start`, not {argv}"
    for name, value in {**env, **CREDENTIALS}.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    add_worker_arguments(parser)
    args = parser.parse_args(argv[2:])
    return options_from_args(args, dev=False)


def test_the_image_copies_what_exists_and_its_ivrkit_steps_pass(tmp_path: Path) -> None:
    """The build's `ivrkit check` and `ivrkit prompts bake` run on a copy of the flows, as the
    image's RUN step would (from WORKDIR /app); every COPY source is in the repository."""
    steps = dockerfile()
    workdir = next(rest for word, rest in steps if word == "WORKDIR")
    for word, rest in steps:
        if word == "COPY":
            *sources, _target = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile COPY {source}: not in the repository"
    shutil.copytree(ROOT / "flows", tmp_path / "flows")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    ran = []
    for word, rest in steps:
        if word != "RUN":
            continue
        for command in (part.strip() for part in rest.split("&&")):
            if command.startswith("ivrkit "):
                _run_ivrkit(command.replace(workdir + "/", "./"), tmp_path)
                ran.append(command.split()[1])
    assert ran == ["check", "prompts"]
    assert any((tmp_path / "prompt-cache").iterdir()), "prompts bake wrote nothing"


def test_the_image_command_is_one_the_worker_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    opts = worker_options(docker_cmd(), docker_env(), monkeypatch)
    exposed = {int(p) for word, rest in dockerfile() if word == "EXPOSE" for p in rest.split()}
    assert opts.metrics_port is not None and {opts.http_port or 8081, opts.metrics_port} == exposed
    assert opts.trace_dir == Path("/var/log/ivrkit/traces") and opts.guard_dir == Path("/var/lib/ivrkit/guard")
    assert opts.bind_host in ("", "0.0.0.0", None), "a probe from outside the container must reach the ports"


# --- Kubernetes -----------------------------------------------------------------------------


def manifests() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text(encoding="utf-8")) if d]
    return {d["kind"]: d for d in docs}


def test_the_deployment_runs_the_image_command_and_probes_what_the_worker_serves(
        monkeypatch: pytest.MonkeyPatch) -> None:
    m = manifests()
    assert set(m) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = m["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {**docker_env(), **{e["name"]: e["value"] for e in container["env"]}}
    opts = worker_options(container["args"], env, monkeypatch)
    assert container["args"] == docker_cmd()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": opts.http_port or 8081, "metrics": opts.metrics_port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "metrics"}
    assert pod["terminationGracePeriodSeconds"] >= 60, "SIGTERM drains calls: give them time"
    assert opts.drain_timeout < pod["terminationGracePeriodSeconds"], "the drain must end (calls stopped) before SIGKILL"
    mounts = {v["mountPath"] for v in container["volumeMounts"]}
    assert {str(opts.guard_dir), str(opts.trace_dir)} <= mounts
    service = m["Service"]["spec"]
    assert service["clusterIP"] == "None" and service["ports"][0]["targetPort"] == "metrics"
    assert service["selector"] == m["Deployment"]["spec"]["selector"]["matchLabels"]

    # the probes' paths on a real status server of these options (not ready: nothing loaded)
    status = Status(opts)
    status.serve(0)
    try:
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{status.port}/ready", timeout=5)
        assert answer.value.code == 503 and answer.value.read() == b"loading flows\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{status.port}/metrics", timeout=5) as scraped:
            assert b"ivrkit_worker_ready" in scraped.read()
    finally:
        status.close()


def test_the_autoscaler_scales_the_deployment_on_an_exported_gauge() -> None:
    m = manifests()
    hpa = m["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == m["Deployment"]["metadata"]["name"]
    (metric,) = hpa["metrics"]
    name = metric["pods"]["metric"]["name"]
    assert exported()[name] == ("gauge", {"executor"})


# --- Prometheus and Grafana -----------------------------------------------------------------


def exported() -> dict[str, tuple[str, set[str]]]:
    """Every series name the worker can export -> (type, label names): ivrkit's call series and
    the worker's gauges, as Prometheus sees them (counters end in `_total`, histograms are read
    through `_bucket`, `_sum`, `_count`)."""
    names: dict[str, tuple[str, set[str]]] = {}
    for metric in vars(IvrMetrics(CollectorRegistry())).values():
        if isinstance(metric, (Counter, Gauge, Histogram)):
            labels = set(metric._labelnames)
            if isinstance(metric, Counter):
                names[metric._name + "_total"] = ("counter", labels)
            elif isinstance(metric, Histogram):
                for suffix in ("_bucket", "_sum", "_count"):
                    names[metric._name + suffix] = ("histogram", labels | ({"le"} if suffix == "_bucket" else set()))
            else:
                names[metric._name] = ("gauge", labels)
    series = WorkerSeries("thread", Readiness(flows=True))
    series.admission = Admission(max_calls=4, busy_calls=2)
    for family in series.collect():
        names[family.name] = ("gauge", {"executor"})
    return names


def dashboard_queries() -> list[str]:
    board = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [t["expr"] for panel in board["panels"] for t in panel["targets"]]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool (Debian's prometheus package, installed by tests/stack/install.sh) is missing")
    return found


def test_the_scrape_config_is_valid_and_scrapes_the_metrics_port(monkeypatch: pytest.MonkeyPatch) -> None:
    done = subprocess.run([promtool(), "check", "config", str(DEPLOY / "prometheus.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["dns_sd_configs"][0]["port"] == int(docker_env()["IVRKIT_METRICS_PORT"])
    assert job["dns_sd_configs"][0]["names"][0].startswith(manifests()["Service"]["metadata"]["name"] + ".")


def test_every_dashboard_query_parses_and_names_only_exported_series_and_labels(tmp_path: Path) -> None:
    queries = dashboard_queries()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]}]}
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = subprocess.run([promtool(), "check", "rules", str(tmp_path / "rules.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

    names = exported()
    used: set[str] = set()
    for query in queries:
        series = set(re.findall(r"\bivrkit_[a-z_]+", query))
        assert series, f"{query!r} reads no ivrkit series"
        for name in series:
            assert name in names, f"{query!r}: the worker exports no {name}"
            used.add(name.removesuffix("_bucket"))
            _kind, labels = names[name]
            for group in re.findall(r"by \(([^)]*)\)", query):
                for label in (x.strip() for x in group.split(",")):
                    assert label in labels, f"{query!r}: {name} has no label {label!r} ({sorted(labels)})"
            for label in re.findall(r"\{(\w+)=", query):
                assert label in labels, f"{query!r}: {name} has no label {label!r}"
    # the questions the issue asks: drop-off, confusion, containment, latency, health
    for needed in ("ivrkit_caller_hangups_total", "ivrkit_no_match_total", "ivrkit_no_input_total",
                   "ivrkit_calls_ended_total", "ivrkit_key_to_prompt_seconds", "ivrkit_worker_ready"):
        assert needed in used, f"the dashboard shows nothing of {needed}"


# --- systemd --------------------------------------------------------------------------------


def unit() -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (systemd keys such as Environment repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (DEPLOY / "ivrkit.service").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_the_unit_runs_a_command_the_worker_accepts_and_lets_it_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure this guards against is quiet: under systemd's default KillMode=control-group
    the worker gets SIGTERM from systemd and again from its guard, and livekit-agents takes a
    second SIGTERM as "exit now" — every call cut instead of drained."""
    service = unit()["Service"]
    env = dict(item.split("=", 1) for item in service["Environment"])
    binary, *argv = shlex.split(service["ExecStart"][0])
    assert binary.endswith("/bin/ivrkit"), binary
    opts = worker_options(["ivrkit", *argv], env, monkeypatch)
    assert service["KillMode"] == ["mixed"] and service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) > opts.drain_timeout, "systemd would SIGKILL before the drain ends"
    assert service["UMask"] == ["0027"] and service["LogsDirectoryMode"] == ["0750"], "traces name callers"
    # The folders the worker writes are ones systemd creates for the service's user.
    assert opts.guard_dir == Path("/var/lib") / service["StateDirectory"][0]
    assert opts.trace_dir == Path("/var/log") / service["LogsDirectory"][0]
    assert opts.metrics_port == 9100


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not on this machine")
def test_systemd_reads_every_line_of_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` warns of an unknown or misspelt key but still exits 0, so its
    output must be empty. It checks that ExecStart's program exists and the user resolves: the
    copy points them at this checkout's ivrkit and the current user."""
    import getpass
    import grp
    import os
    import sys

    text = (DEPLOY / "ivrkit.service").read_text(encoding="utf-8")
    ivrkit = Path(sys.executable).parent / "ivrkit"
    assert ivrkit.exists(), ivrkit
    names = {"User": getpass.getuser(), "Group": grp.getgrgid(os.getgid()).gr_name}
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={ivrkit}", text, flags=re.M)
    text = re.sub(r"^(User|Group)=.*$", lambda m: f"{m.group(1)}={names[m.group(1)]}", text, flags=re.M)
    copy = tmp_path / "ivrkit.service"
    copy.write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60, check=False)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not said, said
