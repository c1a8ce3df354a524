"""ivrkit.dialpad.server: the dial pad's token minting and file serving, on a real aiohttp server.

The browser side (the page joining a real livekit-server) is tests/e2e/test_dialpad.py; here we
check what that test cannot show cheaply: the grants inside a token, agent dispatch, bad input,
that nothing but the page's own files is served, and the flow's picture (/api/graph).
"""

from __future__ import annotations

import argparse
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ivrkit.dialpad.server import (
    BackgroundDevServer,
    DevServerError,
    DevServerOptions,
    add_dialpad_parser,
    check_bundle,
    make_app,
    mint_token,
    options_from_args,
    start_devserver,
)
from tests.graph.test_render import ROOT, _need_dot

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def web_dir(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>pad</title>")
    (tmp_path / "app.css").write_text("body{}")
    (tmp_path / "dist" / "app.js").write_text("export {};")
    (tmp_path / "package.json").write_text("{}")
    (tmp_path / "node_modules" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / "index.js").write_text("secret")
    return tmp_path


def _opts(web_dir: Path, **kw: object) -> DevServerOptions:
    base: dict[str, object] = dict(livekit_url="ws://10.0.0.1:7880", api_key="devkey", api_secret=SECRET,
                                   room="lobby", web_dir=web_dir)
    base.update(kw)
    return DevServerOptions(**base)  # type: ignore[arg-type]


@pytest.fixture
async def client(web_dir: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    async with TestClient(TestServer(make_app(_opts(web_dir, agent_name="ivrkit")), host="127.0.0.1")) as c:
        yield c


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return claims


def test_token_grants_join_publish_and_subscribe_in_that_room_only(web_dir: Path) -> None:
    grant = mint_token(_opts(web_dir), "room-1", "pad-1")
    claims = _claims(grant.token)
    assert claims["sub"] == "pad-1" and claims["iss"] == "devkey"
    video = claims["video"]
    assert isinstance(video, dict)
    assert video["room"] == "room-1" and video["roomJoin"] is True
    assert video["canPublish"] and video["canSubscribe"] and video["canPublishData"]
    assert "roomAdmin" not in video and "roomCreate" not in video
    assert "roomConfig" not in claims  # no agent named: no dispatch
    assert grant.url == "ws://10.0.0.1:7880"


def test_token_dispatches_the_named_agent(web_dir: Path) -> None:
    claims = _claims(mint_token(_opts(web_dir, agent_name="ivrkit", agent_metadata='{"flow":"bank"}'), "r", "p").token)
    room_config = claims["roomConfig"]
    assert isinstance(room_config, dict)
    assert room_config["agents"] == [{"agentName": "ivrkit", "metadata": '{"flow":"bank"}'}]


def test_a_flow_goes_into_the_dispatch_metadata_for_the_worker_router(web_dir: Path) -> None:
    opts = _opts(web_dir, agent_name="ivrkit", agent_metadata="ignored when a flow is named", flow="bank")
    room_config = _claims(mint_token(opts, "r", "p").token)["roomConfig"]
    assert isinstance(room_config, dict)
    assert room_config["agents"] == [{"agentName": "ivrkit", "metadata": '{"flow": "bank"}'}]
    room_config = _claims(mint_token(opts, "r", "p", flow="support").token)["roomConfig"]  # the page's choice
    assert isinstance(room_config, dict)
    assert room_config["agents"][0]["metadata"] == '{"flow": "support"}'
    with pytest.raises(ValueError, match="bad flow 'a b'"):
        mint_token(opts, "r", "p", flow="a b")
    with pytest.raises(ValueError, match="no agent is dispatched.*--agent-name"):
        mint_token(_opts(web_dir), "r", "p", flow="bank")


@pytest.mark.parametrize(("room", "identity", "field"), [("", "p", "room"), ("r", "", "identity"),
                                                          ("r", "a b", "identity"), ("x/../y", "p", "room")])
def test_bad_names_are_refused_naming_the_field(web_dir: Path, room: str, identity: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"bad {field}"):
        mint_token(_opts(web_dir), room, identity)


async def test_http_token_and_config(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/api/config")
    assert await resp.json() == {"room": "lobby", "flow": None, "livekit_url": "ws://10.0.0.1:7880",
                                 "agent_name": "ivrkit"}
    resp = await client.get("/api/token", params={"room": "r9", "identity": "web"})
    body = await resp.json()
    assert resp.status == 200 and body["room"] == "r9" and body["identity"] == "web"
    assert _claims(body["token"])["sub"] == "web"
    resp = await client.get("/api/token", params={"identity": "web"})
    assert (await resp.json())["room"] == "lobby"  # the server's default room
    resp = await client.get("/api/token", params={"room": "r9", "identity": "no spaces"})
    assert resp.status == 400 and "bad identity" in (await resp.json())["error"]
    resp = await client.get("/api/token", params={"room": "r9", "identity": "web", "flow": "bank"})
    room_config = _claims((await resp.json())["token"])["roomConfig"]
    assert isinstance(room_config, dict) and room_config["agents"][0]["metadata"] == '{"flow": "bank"}'


async def test_serves_only_the_page_files(client: TestClient) -> None:  # type: ignore[type-arg]
    for path, ctype in [("/", "text/html"), ("/app.css", "text/css"), ("/dist/app.js", "text/javascript")]:
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"].startswith(ctype)
    for path in ["/package.json", "/node_modules/x/index.js", "/%2e%2e/secret.js", "/dist/"]:
        assert (await client.get(path)).status == 404, path


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io"])
async def test_requests_naming_another_host_are_refused(client: TestClient, host: str) -> None:  # type: ignore[type-arg]
    resp = await client.get("/api/token", params={"room": "r", "identity": "p"}, headers={"Host": host})
    assert resp.status == 403 and "open the dial pad by IP address or as localhost" in await resp.text()


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "10.213.0.1", "localhost"])
async def test_requests_by_address_or_localhost_pass(client: TestClient, host: str) -> None:  # type: ignore[type-arg]
    resp = await client.get("/api/config", headers={"Host": host})
    assert resp.status == 200


def test_missing_bundle_says_how_to_build_it(web_dir: Path) -> None:
    (web_dir / "dist" / "app.js").unlink()
    with pytest.raises(DevServerError, match=r"bundle not built.*npm ci && npm run build.*install_web\.sh"):
        check_bundle(web_dir)


async def test_start_on_port_zero_reports_the_real_port(web_dir: Path) -> None:
    running = await start_devserver(_opts(web_dir, port=0))
    try:
        assert running.url.startswith("http://127.0.0.1:") and not running.url.endswith(":0/")
    finally:
        await running.aclose()


def test_cli_options_come_from_flags_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = argparse.ArgumentParser()
    add_dialpad_parser(parser.add_subparsers())
    monkeypatch.setenv("LIVEKIT_URL", "ws://env:7880")
    monkeypatch.setenv("LIVEKIT_API_KEY", "k")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s")
    opts = options_from_args(parser.parse_args(["dialpad", "--port", "0", "--agent-name", "ivrkit"]))
    assert (opts.livekit_url, opts.api_key, opts.host, opts.port, opts.agent_name) == ("ws://env:7880", "k", "127.0.0.1", 0, "ivrkit")
    assert "api_secret" not in repr(opts)  # the secret is kept out of logs and tracebacks
    with pytest.raises(DevServerError, match="--flow needs --agent-name"):
        options_from_args(parser.parse_args(["dialpad", "--flow", "bank"]))
    monkeypatch.delenv("LIVEKIT_API_SECRET")
    with pytest.raises(DevServerError, match="missing --api-secret/LIVEKIT_API_SECRET"):
        options_from_args(parser.parse_args(["dialpad"]))


def test_background_server_for_ivrkit_dev_serves_then_stops_cleanly(web_dir: Path) -> None:
    server = BackgroundDevServer(_opts(web_dir, port=0))
    url = server.start()
    try:
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open(url + "api/config", timeout=5) as resp:
            assert resp.status == 200 and b'"room": "lobby"' in resp.read()
    finally:
        server.stop()
    assert not any(t.name == "ivrkit-dialpad" for t in threading.enumerate())
    server.stop()  # idempotent


def test_background_server_reports_a_busy_port(web_dir: Path) -> None:
    first = BackgroundDevServer(_opts(web_dir, port=0))
    port = int(first.start().rsplit(":", 1)[1].rstrip("/"))
    try:
        with pytest.raises(DevServerError, match=f"cannot listen on 127.0.0.1:{port}"):
            BackgroundDevServer(_opts(web_dir, port=port)).start()
    finally:
        first.stop()


async def test_http_graph_draws_the_flow_of_a_call_by_name(web_dir: Path) -> None:
    _need_dot()
    opts = _opts(web_dir, flows=ROOT / "flows")
    async with TestClient(TestServer(make_app(opts), host="127.0.0.1")) as client:
        resp = await client.get("/api/graph", params={"flow": "acme-bank"})
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
        assert body["flow"] == "acme-bank" and body["svg"].lstrip().startswith("<?xml")
        assert 'id="node:main"' in body["svg"] and body["edges"]["main:key:1"] == "edge:main:key:1"
        resp = await client.get("/api/graph", params={"flow": "nope"})
        assert resp.status == 404 and "no flow named 'nope'" in (await resp.json())["error"]


async def test_http_graph_without_flows_says_to_give_them(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/api/graph", params={"flow": "acme-bank"})
    assert resp.status == 404 and "--flows PATH" in (await resp.json())["error"]


def test_cli_flows_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_dialpad_parser(parser.add_subparsers())
    for name, value in (("LIVEKIT_URL", "ws://env:7880"), ("LIVEKIT_API_KEY", "k"), ("LIVEKIT_API_SECRET", "s")):
        monkeypatch.setenv(name, value)
    assert options_from_args(parser.parse_args(["dialpad", "--flows", str(ROOT / "flows")])).flows == ROOT / "flows"
    with pytest.raises(DevServerError, match="--flows .*nope: no such flow file or folder"):
        options_from_args(parser.parse_args(["dialpad", "--flows", str(tmp_path / "nope")]))
