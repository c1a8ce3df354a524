"""`ivrkit dialpad`: serve the browser dial pad and mint LiveKit join tokens for it (dev only).

Why: a flow author should be able to "call" a flow from a browser, with no SIP trunk and no
phone. The page (ivrkit/dialpad/web/) needs a join token, and a token needs the API secret, which must
never reach the browser; so this tiny aiohttp server signs tokens with `livekit.api.AccessToken`
and serves the page next to them.

It is a development tool: anyone who can reach it can join rooms on your LiveKit server. It binds
127.0.0.1 unless told otherwise, and says so loudly when told otherwise.

Routes:
  GET /               the page (ivrkit/dialpad/web/index.html), and its static files
  GET /api/config     {"room", "flow", "livekit_url", "agent_name"} (defaults for the form)
  GET /api/token      ?room=R&identity=I[&flow=F] -> {"url", "token", "room", "identity"}
  GET /api/graph      ?flow=F -> the flow's picture: {"flow", "svg" | null, "message", "nodes",
                      "edges"} (ivrkit/dialpad/picture.py), drawn from the flows in `--flows`
  POST /api/say       {"text": "billing"} -> audio/wav: the words in the offline voice, which the
                      page plays into its microphone track (ivrkit/dialpad/say.py)

When `agent_name` is set, each token carries a room configuration that dispatches that agent
to the room when the room is created (LiveKit's explicit dispatch), so the worker answers the
"call". A flow name goes into that dispatch's metadata as `{"flow": F}`, which the ivrkit worker
routes on first (ivrkit/livekit/routing.py): one worker on a folder of flows, any flow callable.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from livekit import api

from ivrkit.dialpad.bundle import BUNDLE, BundleError, page_dir
from ivrkit.dialpad.picture import FlowNotFound, find_flow, flow_picture
from ivrkit.dialpad.say import say_handler
from ivrkit.errors import GraphvizError, IvrkitError

WEB_DIR = Path(__file__).resolve().parent / "web"
DEFAULT_PORT = 8765
DEFAULT_ROOM = "ivrkit-dialpad"
TOKEN_TTL = timedelta(hours=1)
# Room names and identities end up in URLs, logs and the LiveKit API: keep them plain.
_NAME_RE = re.compile(r"^[A-Za-z0-9._:@+-]{1,128}$")
# Static files the page may load; everything else is 404 (no directory listing, no node_modules).
_STATIC_SUFFIXES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".map": "application/json"}


class DevServerError(IvrkitError, RuntimeError):
    """The dial pad server cannot start; the message says what to do.

    Raised for missing credentials or flags, an unbuilt page bundle, or a port it cannot listen
    on; `ivrkit dialpad` prints it and exits 2, `ivrkit dev` goes on without the dial pad. Also a
    `RuntimeError`, as it was before it joined the `IvrkitError` tree.
    """


@dataclass(frozen=True)
class DevServerOptions:
    """Everything `run_devserver` needs; built from CLI flags or by a test/`ivrkit dev`."""

    livekit_url: str
    api_key: str
    api_secret: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    room: str = DEFAULT_ROOM
    agent_name: str | None = None
    agent_metadata: str = ""
    flow: str | None = None  # default flow asked of the worker (dispatch metadata)
    flows: Path | None = None  # the worker's flow file or folder, for the pictures (/api/graph)
    web_dir: Path = WEB_DIR


@dataclass(frozen=True)
class TokenGrant:
    """What /api/token returns: where to connect and the signed token for one participant."""

    url: str
    token: str
    room: str
    identity: str


def mint_token(opts: DevServerOptions, room: str, identity: str, flow: str | None = None) -> TokenGrant:
    """Sign a join token for `identity` in `room`, with agent dispatch when configured.

    `flow` (default `opts.flow`) becomes the dispatch metadata `{"flow": flow}`; without a flow the
    metadata is `opts.agent_metadata` as given. Raises ValueError naming the bad field when a
    room, identity or flow is not a plain name, or a flow is asked for with no agent to dispatch.
    """
    flow = flow or opts.flow
    for what, value in (("room", room), ("identity", identity), ("flow", flow)):
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(f"bad {what} {value!r}: use 1-128 letters, digits or . _ : @ + -")
    if flow and not opts.agent_name:
        raise ValueError(f"flow {flow!r} asked for, but no agent is dispatched: start `ivrkit dialpad` with --agent-name")
    token = (
        api.AccessToken(opts.api_key, opts.api_secret)
        .with_identity(identity)
        .with_name(identity)
        .with_ttl(TOKEN_TTL)
        .with_grants(
            api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True, can_publish_data=True)
        )
    )
    if opts.agent_name:
        metadata = json.dumps({"flow": flow}) if flow else opts.agent_metadata
        token = token.with_room_config(
            api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=opts.agent_name, metadata=metadata)])
        )
    return TokenGrant(url=opts.livekit_url, token=token.to_jwt(), room=room, identity=identity)


def check_bundle(web_dir: Path) -> None:
    """Fail early, with the fix, when the page's JS bundle has not been built."""
    if not (web_dir / "index.html").is_file():
        raise DevServerError(f"dial pad page not found: {web_dir / 'index.html'} is missing")
    if not (web_dir / BUNDLE).is_file():
        raise DevServerError(
            f"dial pad bundle not built: {web_dir / BUNDLE} is missing. Build it with "
            f"`npm ci && npm run build` in {web_dir} (needs Node.js), "
            "or run `bash tests/stack/install_web.sh` from a checkout "
            "(`ivrkit dialpad` and `ivrkit dev` build it once into your cache when npm is on PATH)."
        )


def with_page(opts: DevServerOptions) -> DevServerOptions:
    """`opts` serving the page from where its bundle is, built once when needed
    (`ivrkit.dialpad.bundle.page_dir`); a bundle that cannot be had is a `DevServerError`."""
    try:
        return replace(opts, web_dir=page_dir(opts.web_dir))
    except BundleError as exc:
        raise DevServerError(str(exc)) from exc


def make_app(opts: DevServerOptions) -> web.Application:
    """The aiohttp application: page, static files, config and token endpoints."""
    web_dir = opts.web_dir.resolve()

    async def index(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(web_dir / "index.html", headers={"Cache-Control": "no-store"})

    async def static(request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        path = (web_dir / rel).resolve()
        if (
            web_dir not in path.parents
            or path.suffix not in _STATIC_SUFFIXES
            or "node_modules" in path.parts
            or not path.is_file()
        ):
            raise web.HTTPNotFound(text=f"not found: /{rel}\n")
        return web.FileResponse(
            path, headers={"Content-Type": _STATIC_SUFFIXES[path.suffix], "Cache-Control": "no-store"}
        )

    async def config(_: web.Request) -> web.Response:
        return web.json_response(
            {"room": opts.room, "flow": opts.flow, "livekit_url": opts.livekit_url, "agent_name": opts.agent_name}
        )

    async def token(request: web.Request) -> web.Response:
        room = request.query.get("room", opts.room)
        identity = request.query.get("identity", "")
        flow = request.query.get("flow") or None
        try:
            grant = mint_token(opts, room, identity, flow)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(
            {"url": grant.url, "token": grant.token, "room": grant.room, "identity": grant.identity},
            headers={"Cache-Control": "no-store"},
        )

    async def graph(request: web.Request) -> web.Response:
        name = request.query.get("flow", "")
        try:
            picture = await asyncio.to_thread(_picture, opts.flows, name)  # reads files, runs Graphviz
        except FlowNotFound as exc:
            return web.json_response({"error": str(exc)}, status=404)
        except GraphvizError as exc:
            return web.json_response({"error": f"drawing flow {name!r} failed: {exc}"}, status=500)
        return web.json_response(picture, headers={"Cache-Control": "no-store"})

    app = web.Application(middlewares=[_host_guard(opts.host)])
    app.router.add_get("/", index)
    app.router.add_get("/api/config", config)
    app.router.add_get("/api/token", token)
    app.router.add_get("/api/graph", graph)
    app.router.add_post("/api/say", say_handler)
    app.router.add_get("/{path:.+}", static)
    return app


def _picture(flows: Path | None, name: str) -> dict[str, Any]:
    return flow_picture(find_flow(flows, name))


def _host_allowed(host_header: str, bound_host: str) -> bool:
    """Only an IP literal, `localhost` or the address we were told to bind may name this server."""
    hostname = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    hostname = hostname.strip("[]").lower()
    if hostname in ("localhost", bound_host.lower()):
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def _host_guard(bound_host: str) -> Any:
    """Refuse requests whose Host is a DNS name: a web page on another site could otherwise
    rebind its own name to 127.0.0.1 and read tokens from this server (DNS rebinding)."""

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if not _host_allowed(request.host, bound_host):
            raise web.HTTPForbidden(
                text=f"Host '{request.host}' refused: open the dial pad by IP address or as localhost\n"
            )
        response: web.StreamResponse = await handler(request)
        return response

    return guard


@dataclass
class RunningDevServer:
    """A started server; `url` is where the page is, `aclose()` stops it."""

    runner: web.AppRunner
    url: str

    async def aclose(self) -> None:
        await self.runner.cleanup()


async def start_devserver(opts: DevServerOptions) -> RunningDevServer:
    """Start serving in the running event loop (for `ivrkit dev`, next to the worker).

    Port 0 picks a free port; the returned `url` has the real one.
    """
    check_bundle(opts.web_dir)
    runner = web.AppRunner(make_app(opts), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, opts.host, opts.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise DevServerError(f"cannot listen on {opts.host}:{opts.port}: {exc.strerror or exc}") from exc
    server = site._server  # aiohttp exposes no public accessor for the bound sockets
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else opts.port
    host = f"[{opts.host}]" if ":" in opts.host else opts.host
    return RunningDevServer(runner=runner, url=f"http://{host}:{port}/")


class BackgroundDevServer:
    """The dial pad served from a thread with its own event loop, for `ivrkit dev`.

    Why a thread: the dev worker runs livekit-agents' blocking runner on the main thread, so the
    dial pad cannot share its loop. `start()` returns once the server listens (or raises
    DevServerError); `stop()` closes it and joins the thread, leaving no task behind.
    """

    def __init__(self, opts: DevServerOptions) -> None:
        self.opts = opts
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._running: RunningDevServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="ivrkit-dialpad", daemon=True)

    def start(self) -> str:
        # Before the thread: a first build of the page (npm) may take longer than a start.
        self.opts = with_page(self.opts)
        self._thread.start()
        try:
            self._running = asyncio.run_coroutine_threadsafe(start_devserver(self.opts), self._loop).result(30)
        except BaseException:
            self.stop()
            raise
        self.url = self._running.url
        _warn_if_exposed(self.opts.host)
        return self.url

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        if self._running is not None and self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._running.aclose(), self._loop).result(10)
            self._running = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()


def _warn_if_exposed(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(
            f"ivrkit dialpad: WARNING: listening on {host}, not loopback: anyone who reaches it "
            "can mint tokens for your LiveKit server. Use only on a private test network.",
            file=sys.stderr,
        )


def run_devserver(opts: DevServerOptions) -> int:
    """Serve until interrupted (SIGINT/SIGTERM); print one line with the URL when ready."""

    async def main() -> None:
        running = await start_devserver(opts)
        _warn_if_exposed(opts.host)
        agent = f", dispatching agent '{opts.agent_name}'" if opts.agent_name else ""
        agent += f" for flow '{opts.flow}'" if opts.flow else ""
        agent += f", drawing flows from {opts.flows}" if opts.flows else ""
        print(
            f"ivrkit dialpad: serving {running.url} (room '{opts.room}', LiveKit {opts.livekit_url}{agent})",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await running.aclose()

    try:
        opts = with_page(opts)
        asyncio.run(main())
    except DevServerError as exc:
        print(f"ivrkit dialpad: error: {exc}", file=sys.stderr)
        return 2
    return 0


# --- command line -------------------------------------------------------------------------------


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--room", default=DEFAULT_ROOM, help=f"room the page joins by default (default {DEFAULT_ROOM})")
    parser.add_argument("--url", default=None, help="LiveKit server URL for the browser (default $LIVEKIT_URL)")
    parser.add_argument("--api-key", default=None, help="LiveKit API key (default $LIVEKIT_API_KEY)")
    parser.add_argument("--api-secret", default=None, help="LiveKit API secret (default $LIVEKIT_API_SECRET)")
    parser.add_argument(
        "--agent-name", default=None, help="agent to dispatch into the room on join (explicit dispatch); default none"
    )
    parser.add_argument("--agent-metadata", default="", help="metadata string handed to the dispatched agent")
    parser.add_argument(
        "--flow", default=None, help="flow the page asks the worker for by default (dispatch metadata {\"flow\": ...})"
    )
    parser.add_argument(
        "--flows", default=None, type=Path, metavar="PATH",
        help="the worker's flow file or folder: the page draws the flow of the call (needs Graphviz for the picture)",
    )


def options_from_args(args: argparse.Namespace) -> DevServerOptions:
    """Flags first, then the standard LIVEKIT_* environment variables; a clear error if missing."""
    url = args.url or os.environ.get("LIVEKIT_URL")
    key = args.api_key or os.environ.get("LIVEKIT_API_KEY")
    secret = args.api_secret or os.environ.get("LIVEKIT_API_SECRET")
    missing = [
        name
        for name, value in (("--url/LIVEKIT_URL", url), ("--api-key/LIVEKIT_API_KEY", key), ("--api-secret/LIVEKIT_API_SECRET", secret))
        if not value
    ]
    if missing or url is None or key is None or secret is None:
        raise DevServerError(f"missing {', '.join(missing)}: say where your LiveKit server is and its API key")
    if args.flow and not args.agent_name:
        raise DevServerError("--flow needs --agent-name: the flow is asked of the agent the token dispatches")
    if args.flows is not None and not args.flows.exists():
        raise DevServerError(f"--flows {args.flows}: no such flow file or folder")
    if not (0 <= args.port <= 65535):
        raise DevServerError(f"--port {args.port} is not a port number (0-65535)")
    return DevServerOptions(
        livekit_url=url,
        api_key=key,
        api_secret=secret,
        host=args.host,
        port=args.port,
        room=args.room,
        agent_name=args.agent_name,
        agent_metadata=args.agent_metadata,
        flow=args.flow,
        flows=args.flows,
    )


def _run_from_args(args: argparse.Namespace) -> int:
    try:
        opts = options_from_args(args)
    except DevServerError as exc:
        print(f"ivrkit dialpad: error: {exc}", file=sys.stderr)
        return 2
    return run_devserver(opts)


def add_dialpad_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `dialpad` to an argparse subparsers object; sets `func`, so the CLI does
    `return args.func(args)` (exit code 0, or 2 with one error line)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "dialpad",
        help="serve the browser dial pad: call a flow from a browser, no phone line needed",
        description="Serve the ivrkit dial pad page and mint LiveKit join tokens for it (development only).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  LIVEKIT_URL=ws://127.0.0.1:7880 LIVEKIT_API_KEY=devkey LIVEKIT_API_SECRET=secret \\\n"
               "    ivrkit dialpad --agent-name ivrkit --flows flows/   # then open the address it prints\n\n"
               "exit codes: 0 stopped, 2 cannot start (settings, port)",
    )
    _add_arguments(parser)
    parser.set_defaults(func=_run_from_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m ivrkit.dialpad ...`, the same as `ivrkit dialpad ...`."""
    parser = argparse.ArgumentParser(prog="python -m ivrkit.dialpad")
    _add_arguments(parser)
    return _run_from_args(parser.parse_args(argv))

