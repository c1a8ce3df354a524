// The caller's voice: one audio track the page publishes as its microphone, so a flow that takes
// speech (`input: [dtmf, speech]`) hears the person at the page.
//
// Why one WebAudio mix instead of publishing the microphone itself: two things speak into the
// call — the microphone, when the user turns it on, and the say box, whose words the dev server
// renders to WAV with the offline voice (POST api/say, ivrkit/dialpad/say.py). Both go into a
// MediaStreamAudioDestinationNode whose track is published once, when the call starts; it carries
// silence until one of them speaks. So the worker, which subscribes to the caller's audio only
// while a state listens, always finds the track there, and words from the say box are heard from
// their first syllable.
//
// The microphone is asked for only when the user turns it on, and released (the browser's
// recording indicator goes off) when they turn it off or the call ends.

import { LocalAudioTrack, Track } from 'livekit-client';

export class CallerVoice {
  /**
   * @param {AudioContext} context made in the click that starts the call (a user gesture)
   * @param {(state: object) => void} onChange told whenever mic, saying or level changes
   */
  constructor(context, onChange) {
    this.context = context;
    this.onChange = onChange;
    this.destination = context.createMediaStreamDestination();
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 512;
    this.samples = new Float32Array(this.analyser.fftSize);
    this.mix = context.createGain();
    this.mix.connect(this.destination);
    this.mix.connect(this.analyser);
    /** @type {'off' | 'starting' | 'on' | 'blocked'} */
    this.mic = 'off';
    this.micError = '';
    this.micStream = null;
    this.micNode = null;
    this.saying = null; // the AudioBufferSourceNode playing the say box's words
    this.said = 0; // utterances played to the end
    this.track = null;
  }

  /** Publish the mix as the participant's microphone track. */
  async publish(participant) {
    await this.context.resume();
    this.track = new LocalAudioTrack(this.destination.stream.getAudioTracks()[0], undefined, true, this.context);
    // dtx off: the quiet after the words must reach the recogniser as audio, which is how its
    // endpointer knows the caller stopped speaking.
    await participant.publishTrack(this.track, { source: Track.Source.Microphone, name: 'caller-voice', dtx: false, red: false });
  }

  state() {
    return { mic: this.mic, micError: this.micError, saying: this.saying !== null, said: this.said, level: this.level() };
  }

  /** Peak level (0-1) of what the call hears from this page right now. */
  level() {
    this.analyser.getFloatTimeDomainData(this.samples);
    let peak = 0;
    for (const s of this.samples) peak = Math.max(peak, Math.abs(s));
    return Math.min(1, peak);
  }

  async setMic(on) {
    if (!on) {
      this.micNode?.disconnect();
      for (const t of this.micStream?.getTracks() ?? []) t.stop();
      this.micNode = null;
      this.micStream = null;
      this.mic = 'off';
      this.micError = '';
      this.onChange(this.state());
      return;
    }
    if (this.mic === 'on' || this.mic === 'starting') return;
    if (!navigator.mediaDevices?.getUserMedia) {
      this.mic = 'blocked';
      this.micError = 'no microphone here: browsers give it only to https pages or to localhost / 127.0.0.1';
      this.onChange(this.state());
      return;
    }
    this.mic = 'starting';
    this.onChange(this.state());
    try {
      // Echo cancellation keeps the agent's prompts (played by this page) out of what it hears.
      this.micStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      });
      this.micNode = this.context.createMediaStreamSource(this.micStream);
      this.micNode.connect(this.mix);
      this.mic = 'on';
      this.micError = '';
    } catch (err) {
      this.mic = 'blocked';
      this.micError = err?.name === 'NotAllowedError'
        ? 'the browser blocked the microphone: allow it for this page in the site settings'
        : `no microphone: ${err?.message ?? err}`;
    }
    this.onChange(this.state());
  }

  /**
   * Say `text` into the call: the dev server renders it (POST api/say), the page plays it into
   * the published track. Resolves when the words have been played; rejects with the server's
   * reason (empty, too long, no voice). A new utterance cuts one still playing.
   */
  async say(text) {
    const response = await fetch('api/say', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error ?? `the server could not say it: HTTP ${response.status}`);
    }
    const buffer = await this.context.decodeAudioData(await response.arrayBuffer());
    await this.context.resume();
    this.saying?.stop();
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.mix);
    this.saying = source;
    this.onChange(this.state());
    await new Promise((resolve) => {
      source.onended = resolve;
      source.start();
    });
    source.disconnect();
    if (this.saying === source) {
      this.saying = null;
      this.said += 1;
    }
    this.onChange(this.state());
    return buffer.duration;
  }

  /** The call ended: release the microphone, stop the words, close the audio graph. */
  async close() {
    await this.setMic(false);
    this.saying?.stop();
    this.saying = null;
    this.track?.stop();
    await this.context.close().catch(() => undefined);
  }
}
