"""One call = one livekit-agents job: find the caller, pick the flow, run the Call, end the job.

Why the explicit end: a livekit-agents job does not end when its entrypoint returns (one
has to call `ctx.shutdown()` when the caller leaves), so every path out of `run_call` — caller hung
up, flow hung up, transfer, error, no caller at all — ends in `ctx.shutdown(reason)`, and the
worker's "job ended" log line names that reason.

The caller is the SIP participant when there is one; otherwise the first non-agent participant
(a web dial pad or a test client), so a flow can be "called" without a phone line. Its SIP
attributes (`sip.phoneNumber`, `sip.trunkPhoneNumber`, `sip.callID`) become the call's
`CallerInfo`; the dialled number also routes the call to a flow (`ivrkit.livekit.routing`).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from livekit import api, rtc
from livekit.agents import AutoSubscribe, JobContext, JobProcess, tts

from ivrkit.call import Call
from ivrkit.clock import LoopClock
from ivrkit.flow.hook_refs import resolve_hook
from ivrkit.flow.model import Flow
from ivrkit.livekit.admission import ADMISSION
from ivrkit.livekit.attributes import progress_hooks, sensitive_states
from ivrkit.livekit.channel import SIP_CALLED_NUMBER, LiveKitChannel
from ivrkit.livekit.far_leg import RoomKeys
from ivrkit.livekit.ffi_events import narrow_room
from ivrkit.livekit.flows import BUSY_FLOW, FlowSet, LoadedFlow, flow_set, takes_speech
from ivrkit.livekit.guard import CallRegistry
from ivrkit.livekit.joining import join
from ivrkit.livekit.otel import worker_tracer
from ivrkit.livekit.plugin_stt import PluginRecognizer
from ivrkit.livekit.routing import RouteDecision
from ivrkit.livekit.settings import SettingsError, WorkerOptions, credentials
from ivrkit.livekit.sphinx import SphinxRecognizer
from ivrkit.livekit.stopping import Stopping
from ivrkit.livekit.trace import TraceCopier, TraceWriter
from ivrkit.prompts import FilledPrompt
from ivrkit.telemetry import export_call
from ivrkit.voice.audio import Pcm
from ivrkit.voice.listen import Recognizer

if TYPE_CHECKING:
    from ivrkit.metrics import CallMetrics

__all__ = ["entrypoint", "prewarm", "wait_for_caller"]

logger = logging.getLogger("ivrkit.livekit")

_SIP = rtc.ParticipantKind.PARTICIPANT_KIND_SIP
_CALLER_KINDS = (_SIP, rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD)


def prewarm(opts: WorkerOptions, proc: JobProcess) -> None:
    """livekit-agents' setup hook: build this process's flows before it is given a call.

    With the thread executor this finds the set the startup check already built (one per
    worker); with the process executor each job process compiles its own, off the call path.

    It also builds the process's TLS context for API calls (transfer, hang-up): livekit-agents
    makes one per process on first use, parsing the whole CA bundle — measured to block a new
    call's event loop for ~100 ms on a loaded 2-core machine when left to the first call.
    """
    flow_set(opts)
    try:
        from livekit.agents.utils import http_context

        http_context._create_ssl_context()  # cached per process (functools.cache) in 1.8.9
    except AttributeError:  # a livekit-agents without it: the first call pays, as before
        pass


def _pick_caller(room: rtc.Room) -> rtc.RemoteParticipant | None:
    people = [p for p in room.remote_participants.values() if p.kind in _CALLER_KINDS]
    sip = [p for p in people if p.kind == _SIP]
    chosen = sip or people
    return chosen[0] if chosen else None


async def wait_for_caller(room: rtc.Room, timeout: float,
                          give_up: asyncio.Event | None = None) -> rtc.RemoteParticipant | None:
    """The caller: a SIP participant if present, else the first standard participant to be in
    the room; None if nobody came within `timeout` seconds (or once `give_up` is set)."""
    found = _pick_caller(room)
    if found is not None:
        return found
    joined: asyncio.Future[rtc.RemoteParticipant] = asyncio.get_running_loop().create_future()

    def on_join(p: rtc.RemoteParticipant) -> None:
        if p.kind in _CALLER_KINDS and not joined.done():
            joined.set_result(p)

    room.on("participant_connected", on_join)
    waits: list[asyncio.Future[Any]] = [joined]
    if give_up is not None:
        waits.append(asyncio.ensure_future(give_up.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return joined.result() if joined.done() else None
    finally:
        room.off("participant_connected", on_join)
        for w in waits:
            w.cancel()


def tts_factory(spec: str, option: str = "--tts") -> Callable[[], Any]:
    """The `module:factory` of `--tts` (or `--stt`), imported; the worker checks it at startup so
    a typo stops the worker with one line instead of failing every call. Raises SettingsError."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        example = "livekit.plugins.deepgram:STT" if option == "--stt" else "livekit.plugins.cartesia:TTS"
        raise SettingsError(f"{option} {spec!r} is not module:factory, e.g. {example}")
    try:
        factory = getattr(importlib.import_module(module), name)
    except ImportError as e:
        raise SettingsError(f"{option} {spec!r}: cannot import {module!r} ({e}); is the plugin installed?") from None
    except AttributeError:
        raise SettingsError(f"{option} {spec!r}: module {module!r} has no {name!r}") from None
    if not callable(factory):
        raise SettingsError(f"{option} {spec!r} is a {type(factory).__name__}, not a factory")
    result: Callable[[], Any] = factory
    return result


def tts_spec(flow: Flow, worker_spec: str | None) -> str | None:
    """Which TTS speaks `flow`: its own `tts:`, else the worker's `--tts`, else None (offline)."""
    return str(flow.tts) if flow.tts is not None else worker_spec


def make_tts(flow: Flow, spec: str) -> tts.TTS[Any]:
    """A new plugin instance for `spec` (from `tts_spec`). Raises what its factory raises."""
    factory = resolve_hook(flow.tts, flow.python_path) if flow.tts is not None else tts_factory(spec)
    plugin = factory()
    if not isinstance(plugin, tts.TTS):
        raise TypeError(f"it returned a {type(plugin).__name__}, not a livekit-agents tts.TTS")
    return plugin


def _tts_plugin(flow: Flow, spec: str | None) -> tts.TTS[Any] | None:
    """The call's TTS, one per call (plugins hold HTTP sessions bound to the call's event loop),
    or None. Both references were imported and checked before the worker took calls."""
    if not spec:
        return None
    try:
        return make_tts(flow, spec)
    except Exception as e:  # a missing API key, a plugin bug: the call goes on, in the offline voice
        logger.error("TTS %s could not be created (%s: %s); this call's prompts use the offline voice",
                     spec, type(e).__name__, e)
        return None


async def entrypoint(opts: WorkerOptions, ctx: JobContext) -> None:
    """The rtc_session entrypoint (bound to `opts` with functools.partial, so it pickles)."""
    reason = "call ended"
    stopping = Stopping(ctx)  # the worker's shutdown request ends the call (ivrkit.livekit.stopping)
    try:
        reason = await run_call(opts, ctx, stopping=stopping)
    except Exception:
        logger.exception("call in room '%s' failed", ctx.job.room.name)
        reason = "call failed (see the error above)"
        await _hang_up_by_room(ctx)
    finally:
        stopping.close()
        logger.info("job %s (room %s) ended: %s", ctx.job.id, ctx.job.room.name, reason)
        ctx.shutdown(reason)


async def _hang_up_by_room(ctx: JobContext) -> None:
    """A call that failed outside the flow (no prompt track, a plugin that would not start), or
    that the worker's stop ended before its flow began, must not leave the caller in silence, or
    ringing: delete the room, which hangs up a SIP caller. Already gone (the flow hung up
    first) is fine. The name comes from the job: `ctx.room` has none until its join succeeded,
    and a failed join is one of the reasons to be here."""
    name = ctx.job.room.name
    try:
        await asyncio.wait_for(ctx.api.room.delete_room(api.DeleteRoomRequest(room=name)), 5.0)
    except api.TwirpError as e:
        if e.code != api.TwirpErrorCode.NOT_FOUND:
            logger.error("room '%s': could not hang up: %s", name, e.message)
    except Exception as e:
        logger.error("room '%s': could not hang up (%s: %s)", name, type(e).__name__, e)


#: Joining the call's room waits at most this long (its turn among the process's joins
#: included, ivrkit.livekit.joining); past it the call fails and its room is deleted, which
#: hangs the caller up instead of leaving them in silence.
CONNECT_LIMIT = 20.0


async def run_call(opts: WorkerOptions, ctx: JobContext, connect_limit: float | None = None,
                   stopping: Stopping | None = None) -> str:
    fs: FlowSet = flow_set(opts)
    connect_limit = CONNECT_LIMIT if connect_limit is None else connect_limit
    name = ctx.job.room.name  # `ctx.room` is nameless until joined
    registry = _registry(opts)
    if registry is not None:
        # From the job's start, not the flow's: a worker that dies while its calls are still
        # joining (an overload) leaves those callers in silence too; the guard hangs them up.
        registry.add(name, ctx.job.id)
    try:
        return await _join_and_serve(opts, ctx, connect_limit, stopping, fs, name)
    finally:
        if registry is not None:
            registry.remove(name, ctx.job.id)


async def _join_and_serve(opts: WorkerOptions, ctx: JobContext, connect_limit: float, stopping: Stopping | None,
                          fs: FlowSet, name: str) -> str:
    # audio is subscribed only while a flow listens to it (ivrkit.livekit.participant_audio)
    await join(lambda: ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE), limit=connect_limit,
               what=f"joining room '{name}'", on_abandoned=ctx.room.disconnect)
    narrow_room(ctx.room)  # its loop wakes for its own events only (ivrkit.livekit.ffi_events)
    room = ctx.room
    caller = await wait_for_caller(room, opts.caller_timeout, stopping.requested if stopping else None)
    if stopping is not None and stopping.reason is not None:
        if caller is not None:  # already in the room: hang up rather than leave them in silence
            await _hang_up_by_room(ctx)
        return f"{stopping.reason} before the call started"
    if caller is None:
        return f"no caller joined room '{room.name}' within {opts.caller_timeout:g} s"
    if room.local_participant.attributes.get(ADMISSION) == "busy":
        decision = RouteDecision(BUSY_FLOW, "the worker is full (--max-calls): the busy flow")
    else:
        decision = fs.router.choose(
            room=room.name,
            dialled_number=caller.attributes.get(SIP_CALLED_NUMBER) or None,
            metadata=ctx.job.metadata,
        )
    for warning in decision.warnings:
        logger.warning("room '%s': %s", room.name, warning)
    if decision.flow is None:
        logger.error("room '%s': %s; hanging up (set --default-flow or add a route)", room.name, decision.reason)
        await ctx.api.room.delete_room(api.DeleteRoomRequest(room=room.name))
        return "no flow for this call"
    loaded = fs.flows[decision.flow] if decision.flow != BUSY_FLOW else fs.busy
    return await _serve_call(opts, ctx, caller, decision, loaded, stopping)


async def _recognizer(flow: Flow, worker_stt: str | None, clock: LoopClock) -> Recognizer | None:
    """The call's recogniser: the flow's `stt:` plugin, else the worker's `--stt`, else the
    offline one, its model loaded on a thread (about 0.1 s, off the loop that serves other
    calls); None for a key-only flow — it never loads pocketsphinx nor makes a plugin."""
    if not takes_speech(flow):
        return None
    if flow.stt is not None or worker_stt is not None:
        try:
            factory = resolve_hook(flow.stt, flow.python_path) if flow.stt is not None else tts_factory(worker_stt or "", "--stt")
            return PluginRecognizer(factory(), clock)
        except Exception as e:  # keys still work: the call's listen requests then fail and are traced
            logger.error("flow %s: the STT plugin %s failed: %s: %s", flow.name, flow.stt or worker_stt, type(e).__name__, e)
            return None
    recognizer = SphinxRecognizer()
    try:
        await asyncio.to_thread(recognizer.load)
    except Exception as e:  # keys still work: the call's listen requests then fail and are traced
        logger.error("flow %s takes speech but the offline recogniser failed to load: %s", flow.name, e)
        return None
    return recognizer


def _room_keys(opts: WorkerOptions) -> RoomKeys | None:
    """The server keys a dial uses to join the dialled leg's room (None: not configured)."""
    try:
        creds = credentials(opts)
    except SettingsError:
        return None
    return RoomKeys(creds.url, creds.api_key, creds.api_secret)


def _registry(opts: WorkerOptions) -> CallRegistry | None:
    if opts.guard_dir is None:
        return None
    try:
        return CallRegistry(opts.guard_dir)
    except OSError as e:
        logger.error("cannot register calls in %s (%s): a worker death would leave this call in silence",
                     opts.guard_dir, e)
        return None


async def _serve_call(opts: WorkerOptions, ctx: JobContext, caller: rtc.RemoteParticipant,
                      decision: RouteDecision, loaded: LoadedFlow, stopping: Stopping | None = None) -> str:
    room = ctx.room
    clock = LoopClock()
    spec = tts_spec(loaded.flow, opts.tts)
    plugin = _tts_plugin(loaded.flow, spec)
    metrics = _call_metrics(opts, loaded.flow)
    synthesize: Callable[[FilledPrompt], Awaitable[Pcm]] = functools.partial(
        loaded.audio.synthesize, plugin=plugin, plugin_key=spec)
    if metrics is not None:
        synthesize = _timed(synthesize, clock, metrics.series.observe_render)
    recognizer = await _recognizer(loaded.flow, opts.stt, clock)
    channel = LiveKitChannel(
        room, caller, api=ctx.api, clock=clock, synthesize=synthesize,
        sip_trunk=opts.sip_trunk, sensitive_states=sensitive_states(loaded.flow),
        dtmf=loaded.flow.dtmf or opts.dtmf, recognizer=recognizer, room_keys=_room_keys(opts),
    )
    logger.info(
        "call in room '%s': caller '%s' (%s) -> flow '%s' (%s), version %s",
        room.name, caller.identity, "SIP" if channel.caller_is_sip else "non-SIP",
        decision.flow, decision.reason, loaded.version,
    )
    trace = TraceWriter(opts.trace_dir, room.name, ctx.job.id, start=clock.now()) if opts.trace_dir else None
    flusher: asyncio.Task[None] | None = None
    publisher: asyncio.Task[None] | None = None
    copier: TraceCopier | None = None
    if trace is not None:
        trace.write(
            "call", at=clock.now(), clock=trace.start, room=room.name, caller=caller.identity, sip=channel.caller_is_sip,
            flow=decision.flow, flow_version=loaded.version, route=decision.reason, caller_info={
                "number": channel.caller.number, "called_number": channel.caller.called_number,
                "call_id": channel.caller.call_id,
            },
        )
        channel.record.listener = lambda kind, at, fields: trace.write(kind, at=at, **fields)
    epoch_offset_ns = time.time_ns() - round(clock.now() * 1e9)  # the wall time of loop time 0, for spans
    call: Call | None = None
    stopped: str | None = None  # why the worker's shutdown ended the call
    try:
        await channel.start()
        call = Call(loaded.machine, channel, hooks=progress_hooks(loaded.flow, channel.show), metrics=metrics)
        if trace is not None:
            copier = TraceCopier(trace, call.trace)
            flusher = asyncio.get_running_loop().create_task(copier.run(), name="ivrkit-trace")
        if metrics is not None:
            publisher = asyncio.get_running_loop().create_task(_publish(metrics), name="ivrkit-metrics")
        if stopping is not None:
            stopping.follow(call.stop)
        result = await call.run()
        if result.ended_by == "stopped" and stopping is not None:
            stopped = stopping.reason
            return f"flow '{decision.flow}' ended: stopped, {stopped}"
        return f"flow '{decision.flow}' ended: {result.ended_by}"
    finally:
        if flusher is not None:
            flusher.cancel()
        if publisher is not None:
            publisher.cancel()
        if metrics is not None:
            metrics.flush()  # a call that never reached its end (cancelled) still counts what it did
        await channel.aclose()
        if plugin is not None:
            await plugin.aclose()
        if trace is not None:
            if copier is not None:
                copier.copy()
            trace.write("job_end", at=clock.now(), reason=stopped or channel.ended)
            trace.close()
        if call is not None:
            _export_spans(call, loaded.flow, epoch_offset_ns, room=room.name, job=ctx.job.id)


def _call_metrics(opts: WorkerOptions, flow: Flow) -> CallMetrics | None:
    """The call's Prometheus sink when the worker serves metrics (`--metrics-port`); in a job
    process of the process executor the series go to the multiprocess folder (ivrkit.livekit.status)."""
    if opts.metrics_port is None:
        return None
    from ivrkit.metrics import default_metrics

    return default_metrics().call(flow)


async def _publish(metrics: CallMetrics) -> None:
    """The call's counts reach /metrics every `FLUSH_SECONDS` while it runs (and at its end)."""
    from ivrkit.metrics import FLUSH_SECONDS

    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        metrics.flush()


def _timed(synthesize: Callable[[FilledPrompt], Awaitable[Pcm]], clock: LoopClock,
           observe: Callable[[float], None]) -> Callable[[FilledPrompt], Awaitable[Pcm]]:
    """`synthesize`, with each prompt's render time observed (a failed render too)."""

    async def timed(prompt: FilledPrompt) -> Pcm:
        started = clock.now()
        try:
            return await synthesize(prompt)
        finally:
            observe(clock.now() - started)

    return timed


def _export_spans(call: Call, flow: Flow, epoch_offset_ns: int, *, room: str, job: str) -> None:
    """The call's spans, when the `OTEL_*` environment asks for them (`ivrkit.livekit.otel`);
    handed to the provider's batch processor, so exporting never holds up the job's end."""
    tracer = worker_tracer()
    if tracer is None:
        return
    try:
        export_call(call.trace, tracer, flow, epoch_offset_ns=epoch_offset_ns,
                    attributes={"ivr.room": room, "ivr.job": job})
    except Exception as e:  # telemetry must not turn a finished call into a failed job
        logger.error("room '%s': could not record the call's spans (%s: %s)", room, type(e).__name__, e)
