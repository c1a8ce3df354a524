"""The LiveKit adapter: the bundled worker and its Channel. The engine never imports this.

It depends on the engine, never the reverse (so `import ivrkit` loads no livekit code; the
dial pad, `ivrkit.dialpad`, is the other livekit user). Module by module:

- `worker`        `ivrkit start` / `ivrkit dev`: settings and flows checked, then livekit-agents'
                  `AgentServer` runs with one entrypoint
- `settings`      `WorkerOptions` and the LIVEKIT_* / IVRKIT_* environment
- `guard`         `ivrkit start`'s parent process: a dead worker's callers are hung up at once
- `status`        `--metrics-port`: Prometheus `/metrics` and the readiness probe `/ready`
- `admission`     which calls the worker takes, decided exactly at dispatch (serve, busy, refuse)
- `routing`       which flow a call gets when one worker serves a folder of flows
- `flows`         the worker's flows: loaded and checked once, compiled once per process
- `job`           one call = one job: find the caller, pick the flow, run the `Call`, end the job
- `channel`       `LiveKitChannel`, the Channel port on a room (DTMF in, audio out, SIP actions)
- `participant_audio` one participant's audio (the caller, a dialled leg), ONE subscription held only
                  while a listener (in-band DTMF, speech, `amd:`, navigate, the bridge) needs it;
                  frames to each listener as `Pcm`
- `legs`          a call's dialled legs: one room each, where the flow's keys go, the bridge
- `far_leg`       a dialled SIP leg in a room of its own (no DTMF crosstalk), joined by the agent
- `bridge`        `bridge: true`: audio both ways between the caller's and the leg's rooms, never keys
- `dtmf`          every key in or out checked against the RFC 4733 table
- `hearing`       speech input: the call's `listen` requests, the caller's audio, a recogniser
- `sphinx`        the offline recogniser: pocketsphinx, a grammar of the state's words, its VAD
- `plugin_stt`    any streaming livekit-agents STT plugin as the recogniser (`stt:` / `--stt`)
- `player`        prompt playout on the agent's own audio track; barge-in drops queued audio
- `prompt_audio`  a filled prompt → one PCM buffer (prompt cache, offline voice or a TTS plugin)
- `tts`           the offline voice as a livekit-agents TTS; Pcm → `rtc.AudioFrame` helpers
- `attributes`    where the call is (flow, state, prompt, the edge just taken) shown to the room as
                  participant attributes
- `trace`         one JSON-lines trace file per call (`--trace-dir`)
- `otel`          the OpenTelemetry tracer the standard `OTEL_*` environment asks for, if any
- `reload`        `ivrkit dev`: the worker in a child process, restarted when files change
- `dev_child`     how `ivrkit dev` and the guard pass their options to the worker child
"""
