"""The voice: how a filled-in prompt becomes sound, offline and engine-side.

Imports nothing from LiveKit and never reads the clock, so the console, the tests and the
worker share it; the worker's LiveKit side (`ivrkit.livekit.prompt_audio`, `tts`) builds on it.
One concept per module:

- `audio`   `Pcm`, the immutable buffer a prompt is played from, and the few operations an IVR
            needs on it (WAV in/out, resampling, tones, framing)
- `speech`  the offline default voice: eSpeak NG through ctypes (`EspeakVoice.synthesize`), and
            digits spelt out key by key (`spoken_digits`)
- `dtmf_tones` in-band DTMF: `DtmfDetector` hears key presses as tones in the caller's audio
            (ITU-T Q.24 receiver rules, Goertzel terms, pure numpy); `dtmf_tone` makes them
- `listen`  the recognition port: a `Recognizer` turns the caller's frames into `SpeechStarted` /
            `Speech` for the call's `Listen` request (adapters: `ivrkit.livekit.sphinx`, `plugin_stt`)
- `cache`   the prompt cache: a folder of WAV files keyed by text and voice, filled ahead of
            time by `ivrkit prompts bake` and read at call time (`PromptCache`, `prompt_pcm`)
- `amd`     answering-machine detection on the far end's first seconds: Asterisk's AMD()
            energy rules (`AnsweringMachineDetector`) -> human | machine | silence | unsure
- `beep`    the voicemail beep: a steady 400-2000 Hz tone (`BeepDetector`)
- `framing` packets of any size cut into the whole frames `amd` and `beep` judge (`FrameCutter`)
"""
