"""The baseline of row 5: a minimal hand-written livekit-agents worker doing what the ivrkit
worker does for the bench flow, and nothing else.

Same `AgentServer` (thread executor, explicit dispatch by agent name), same kind of output (its
own `rtc.AudioSource` + published track, 20 ms frames), the same tone samples pre-built in
memory. On `sip_dtmf_received` "1" from the caller it cuts the playing prompt
(`clear_queue`) and starts the other tone. No flow, no state machine, no trace, no masking.

    LIVEKIT_URL=... LIVEKIT_API_KEY=... LIVEKIT_API_SECRET=... python bench/_handwritten_agent.py [--tone-seconds S]

`--tone-seconds` sets the prompts' length (default `_tones.SECONDS`), as `write_tones` does for
the ivrkit worker's WAV files.
"""

from __future__ import annotations

import asyncio
import os
import sys

from livekit import rtc
from livekit.agents import AgentServer, AutoSubscribe, JobContext, JobExecutorType, cli

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _tones import RATE, SECONDS, TONES, tone_pcm  # noqa: E402

AGENT_NAME = "handwritten-bench"
FRAME = RATE // 50  # 20 ms


def _frames(freq: float, seconds: float) -> list[rtc.AudioFrame]:
    pcm = tone_pcm(freq, seconds)
    step = FRAME * 2
    out = []
    for i in range(0, len(pcm), step):
        chunk = pcm[i:i + step].ljust(step, b"\0")
        out.append(rtc.AudioFrame(chunk, RATE, 1, FRAME))
    return out


PROMPTS: list[list[rtc.AudioFrame]] = []


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect(auto_subscribe=AutoSubscribe.SUBSCRIBE_NONE)
    room = ctx.room
    source = rtc.AudioSource(RATE, 1, queue_size_ms=200)
    track = rtc.LocalAudioTrack.create_audio_track("prompts", source)
    await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
    state = {"prompt": 0, "task": None}
    gone = asyncio.Event()

    async def feed(frames: list[rtc.AudioFrame]) -> None:
        for f in frames:
            await source.capture_frame(f)

    def play(i: int) -> None:
        task = state["task"]
        if task is not None:
            task.cancel()
        source.clear_queue()
        state["prompt"] = i
        state["task"] = asyncio.ensure_future(feed(PROMPTS[i]))

    @room.on("sip_dtmf_received")
    def _dtmf(ev: rtc.SipDTMF) -> None:
        if ev.participant is not None and ev.digit == "1":
            play(1 - state["prompt"])

    @room.on("participant_disconnected")
    def _left(p: rtc.RemoteParticipant) -> None:
        gone.set()

    # wait for the caller, as the ivrkit worker does, then play the first prompt
    while not [p for p in room.remote_participants.values() if p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT]:
        await asyncio.sleep(0.01)
    play(0)
    await gone.wait()
    task = state["task"]
    if task is not None:
        task.cancel()
    ctx.shutdown("caller left")


def main() -> None:
    seconds = float(sys.argv[sys.argv.index("--tone-seconds") + 1]) if "--tone-seconds" in sys.argv else SECONDS
    PROMPTS.extend(_frames(f, seconds) for f in TONES)
    server = AgentServer(job_executor_type=JobExecutorType.THREAD, load_fnc=lambda s: 0.0, load_threshold=1.0,
                         port=0)
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)

    @server.on("worker_registered")
    def _registered(worker_id: str, info: object) -> None:
        print(f"handwritten worker registered agent_name={AGENT_NAME} id={worker_id}", flush=True)

    sys.argv = [sys.argv[0], "start", "--log-level", "WARN"]
    cli.run_app(server)


if __name__ == "__main__":
    main()
