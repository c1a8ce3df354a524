// ivrkit dial pad: "call" a flow from a browser, without a phone line.
//
// Joins a LiveKit room with a token minted by `ivrkit dialpad` (ivrkit/dialpad/server.py), plays the
// agent's audio, sends keys as DTMF (publishDtmf with RFC 4733 codes), shows the DTMF the agent
// sends back and the agent's state as the ivrkit worker publishes it in its participant
// attributes (`ivrkit.state`, `ivrkit.prompt`; every other attribute is shown too), and the
// flow's picture with that state lit and the edge just taken marked (./picture.js).
//
// Speech (./voice.js): the page publishes one audio track as the caller's microphone, fed by
// the microphone when the user turns it on and by the say box, whose words the dev server speaks
// with the offline voice. While the agent's `ivrkit.listening` names what may be said, the page
// says that the flow listens, and what for.
//
// Keys sent while the agent says `ivrkit.sensitive` = "true" (a PIN entry) are listed masked:
// no digit or code in the text, the log or the DOM — the page shows what the worker's logs show.
//
// The DOM is the interface for people and for the end-to-end test alike: each list item carries
// data-* attributes with the exact code and digit, so the test asserts on what a person sees.

import { Room, RoomEvent, Track, ConnectionState, DisconnectReason } from 'livekit-client';
import { KEYPAD_ROWS, dtmfForKey, labelForDtmf } from './dtmf.js';
import { FlowPicture } from './picture.js';
import { CallerVoice } from './voice.js';

const STATE_ATTR = 'ivrkit.state';
const PROMPT_ATTR = 'ivrkit.prompt';
const SENSITIVE_ATTR = 'ivrkit.sensitive';
const LISTENING_ATTR = 'ivrkit.listening';
/** Shown in the panels above; the table of everyone's attributes leaves them out for it. */
const SHOWN_ATTRS = new Set([STATE_ATTR, PROMPT_ATTR, SENSITIVE_ATTR, LISTENING_ATTR]);
const MASK = '•';
const STATS_INTERVAL_MS = 250;

const $ = (id) => document.getElementById(id);

const ui = {
  form: $('join-form'),
  room: $('room'),
  identity: $('identity'),
  flow: $('flow'),
  dispatch: $('dispatch'),
  call: $('call'),
  hangup: $('hangup'),
  status: $('status'),
  keypad: $('keypad'),
  sent: $('sent'),
  received: $('received'),
  agentState: $('agent-state'),
  agentPrompt: $('agent-prompt'),
  agentIdentity: $('agent-identity'),
  attributes: $('attributes'),
  audio: $('audio'),
  audioSink: $('audio-sink'),
  listening: $('listening'),
  mic: $('mic'),
  sayForm: $('say-form'),
  sayText: $('say-text'),
  say: $('say'),
  voice: $('voice'),
  log: $('log'),
};

const picture = new FlowPicture({ picture: $('picture'), message: $('picture-message'), path: $('path') });

/** @type {Room | null} */
let room = null;
/** Sends are chained so keys leave in the order they were pressed, even if one send is slow. */
let sendChain = Promise.resolve();
let statsTimer = 0;
/** @type {CallerVoice | null} the track this page speaks into the call with */
let voice = null;

function setStatus(text, kind = text) {
  ui.status.textContent = text;
  ui.status.dataset.state = kind;
}

function log(line) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toISOString().slice(11, 23)}  ${line}`;
  ui.log.append(li);
  ui.log.scrollTop = ui.log.scrollHeight;
}

function addDtmfItem(list, { code, digit, from, ok, error, masked }) {
  const li = document.createElement('li');
  if (masked) {
    li.dataset.masked = 'true'; // no code or digit anywhere: the code alone gives the digit away
  } else {
    li.dataset.code = String(code);
    li.dataset.digit = digit;
  }
  if (from !== undefined) li.dataset.from = from;
  if (ok !== undefined) li.dataset.ok = String(ok);
  li.textContent = masked
    ? `${MASK}  (sensitive entry)`
    : `${labelForDtmf(code, digit)}  (code ${code}${from ? `, from ${from}` : ''})`;
  if (error) {
    li.classList.add('error');
    li.title = error;
    li.textContent += `  failed: ${error}`;
  }
  list.append(li);
  list.scrollTop = list.scrollHeight;
}

// --- keypad ---------------------------------------------------------------------------------

function buildKeypad() {
  for (const row of KEYPAD_ROWS) {
    for (const label of row) {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = label;
      button.dataset.key = label;
      button.disabled = true;
      button.addEventListener('click', () => pressKey(label));
      ui.keypad.append(button);
    }
  }
}

function setKeypadEnabled(enabled) {
  for (const button of ui.keypad.querySelectorAll('button')) button.disabled = !enabled;
}

function flashKey(label) {
  const button = ui.keypad.querySelector(`button[data-key="${CSS.escape(label)}"]`);
  if (!button) return;
  button.classList.add('pressed');
  setTimeout(() => button.classList.remove('pressed'), 120);
}

/** Send one key as DTMF; returns the promise of this key's send (resolved after it left). */
function pressKey(key) {
  const dtmf = dtmfForKey(key);
  if (!dtmf) return Promise.resolve();
  if (!room || room.state !== ConnectionState.Connected) {
    log(`key ${key} ignored: not in a call`);
    return Promise.resolve();
  }
  const current = room;
  // Decided when the key is pressed: the state it is pressed in is the one that takes it.
  const masked = agentIsInSensitiveEntry();
  const shown = masked ? MASK : `${labelForDtmf(dtmf.code, dtmf.digit)} (code ${dtmf.code})`;
  flashKey(key.toUpperCase());
  sendChain = sendChain.then(async () => {
    try {
      await current.localParticipant.publishDtmf(dtmf.code, dtmf.digit);
      addDtmfItem(ui.sent, { ...dtmf, ok: true, masked });
      log(`sent DTMF ${shown}`);
    } catch (err) {
      addDtmfItem(ui.sent, { ...dtmf, ok: false, error: String(err?.message ?? err), masked });
      log(`DTMF ${shown} failed: ${err?.message ?? err}`);
    }
  });
  return sendChain;
}

document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
  if (!dtmfForKey(event.key)) return;
  event.preventDefault();
  pressKey(event.key);
});

// --- agent state ----------------------------------------------------------------------------

/** The participant whose state to show: one publishing ivrkit.state, else an agent, else none. */
function pickAgent() {
  if (!room) return null;
  const remotes = [...room.remoteParticipants.values()];
  return (
    remotes.find((p) => STATE_ATTR in (p.attributes ?? {})) ??
    remotes.find((p) => p.isAgent) ??
    null
  );
}

/** The worker says the call is in a sensitive collect (a PIN entry): keys sent are masked. */
function agentIsInSensitiveEntry() {
  return pickAgent()?.attributes?.[SENSITIVE_ATTR] === 'true';
}

function renderAgent() {
  const agent = pickAgent();
  const attrs = agent?.attributes ?? {};
  ui.agentIdentity.textContent = agent ? agent.identity : '(no agent in the room)';
  ui.agentState.textContent = attrs[STATE_ATTR] ?? '-';
  ui.agentState.dataset.state = attrs[STATE_ATTR] ?? '';
  ui.agentPrompt.textContent = attrs[PROMPT_ATTR] ?? '-';
  picture.follow(attrs, log);
  renderListening(agent ? (attrs[LISTENING_ATTR] ?? '') : null);

  ui.attributes.replaceChildren();
  if (!room) return;
  for (const p of room.remoteParticipants.values()) {
    // The agent's state and prompt are in the panel above: not a second time here.
    const entries = Object.entries(p.attributes ?? {}).filter(([k]) => p !== agent || !SHOWN_ATTRS.has(k));
    const tr = document.createElement('tr');
    const who = document.createElement('th');
    who.textContent = `${p.identity}${p.isAgent ? ' (agent)' : ''}`;
    const what = document.createElement('td');
    what.textContent = entries.length ? entries.map(([k, v]) => `${k}=${v}`).join('\n') : '(no attributes)';
    tr.append(who, what);
    ui.attributes.append(tr);
  }
}

// --- speech: microphone and say box ------------------------------------------------------

/** What the flow listens for now ("" keys only, null no agent), as the worker publishes it. */
function renderListening(what) {
  ui.listening.dataset.listening = what ? 'true' : 'false';
  ui.listening.dataset.what = what ?? '';
  if (what === null) ui.listening.textContent = room ? 'Speech: waiting for the agent.' : 'Speech: not in a call.';
  else if (what) ui.listening.textContent = `Listening now: say ${what}`;
  else ui.listening.textContent = 'Not listening for speech now: keys only.';
}

const MIC_LABELS = { off: 'Microphone: off', starting: 'Microphone: starting…', on: 'Microphone: on', blocked: 'Microphone: blocked' };

function renderVoice(state) {
  const mic = state?.mic ?? 'off';
  ui.mic.textContent = MIC_LABELS[mic];
  ui.mic.dataset.mic = mic;
  ui.mic.setAttribute('aria-pressed', String(mic === 'on'));
  ui.mic.title = state?.micError || (mic === 'on' ? 'Click to stop sending your microphone' : 'Click to send your microphone into the call');
  ui.voice.dataset.mic = mic;
  ui.voice.dataset.saying = String(Boolean(state?.saying));
  ui.voice.dataset.said = String(state?.said ?? 0);
  ui.voice.dataset.level = String(state?.level ?? 0);
  if (!state) {
    ui.voice.textContent = 'your audio: none (not in a call)';
    return;
  }
  const bar = '#'.repeat(Math.round(state.level * 20)).padEnd(20, '.');
  const doing = state.saying ? ', saying…' : '';
  ui.voice.textContent = state.micError ? `your audio: ${state.micError}` : `your audio: level [${bar}]${doing}`;
}

function setVoiceEnabled(enabled) {
  ui.mic.disabled = !enabled;
  ui.sayText.disabled = !enabled;
  ui.say.disabled = !enabled;
}

async function sayWords(text) {
  const current = voice;
  if (!current) return;
  // Words typed in a PIN entry are a PIN said aloud: masked in the page as keys are.
  const shown = agentIsInSensitiveEntry() ? MASK : `"${text}"`;
  const listening = pickAgent()?.attributes?.[LISTENING_ATTR];
  log(`saying ${shown}${listening ? '' : ' (the flow is not listening for speech now)'}`);
  try {
    const seconds = await current.say(text);
    log(`said ${shown} (${seconds.toFixed(1)} s of speech)`);
  } catch (err) {
    log(`could not say ${shown}: ${err?.message ?? err}`);
    renderVoice({ ...current.state(), micError: String(err?.message ?? err) });
  }
}

ui.mic.addEventListener('click', () => {
  if (!voice) return;
  voice.setMic(voice.mic !== 'on').then(() => {
    if (voice) log(voice.mic === 'on' ? 'microphone on: the call hears you' : `microphone ${voice.mic}${voice.micError ? `: ${voice.micError}` : ''}`);
  });
});

ui.sayForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.sayText.value.trim();
  if (!text || !voice) return;
  ui.sayText.value = '';
  sayWords(text);
});

// --- agent audio ----------------------------------------------------------------------------

/** Poll inbound RTP stats of subscribed audio, so a person (and the test) sees sound arrive. */
async function updateAudioStats() {
  if (!room) return;
  let packets = 0;
  let energy = 0;
  let level = 0;
  let tracks = 0;
  for (const p of room.remoteParticipants.values()) {
    for (const pub of p.audioTrackPublications.values()) {
      const track = pub.track;
      if (!track) continue;
      tracks += 1;
      const report = await track.getRTCStatsReport();
      report?.forEach((s) => {
        if (s.type !== 'inbound-rtp' || s.kind !== 'audio') return;
        packets += s.packetsReceived ?? 0;
        energy += s.totalAudioEnergy ?? 0;
        level = Math.max(level, s.audioLevel ?? 0);
      });
    }
  }
  ui.audio.dataset.tracks = String(tracks);
  ui.audio.dataset.packets = String(packets);
  ui.audio.dataset.energy = String(energy);
  ui.audio.dataset.level = String(level);
  const bar = '#'.repeat(Math.round(level * 20)).padEnd(20, '.');
  ui.audio.textContent = tracks
    ? `agent audio: ${tracks} track(s), ${packets} packets, level [${bar}]`
    : 'agent audio: none yet';
}

// --- call -----------------------------------------------------------------------------------

async function fetchToken(roomName, identity, flow) {
  const query = new URLSearchParams({ room: roomName, identity });
  if (flow) query.set('flow', flow);
  const response = await fetch(`api/token?${query}`);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ?? `token request failed: HTTP ${response.status}`);
  return body;
}

function wireRoom(r) {
  r.on(RoomEvent.SipDTMFReceived, (dtmf, participant) => {
    const from = participant?.identity ?? 'server';
    addDtmfItem(ui.received, { code: dtmf.code, digit: dtmf.digit, from });
    log(`received DTMF ${labelForDtmf(dtmf.code, dtmf.digit)} (code ${dtmf.code}) from ${from}`);
  });
  r.on(RoomEvent.ParticipantAttributesChanged, (changed, participant) => {
    if (participant === r.localParticipant) return;
    for (const [key, value] of Object.entries(changed)) {
      if (key === PROMPT_ATTR) log(`${participant.identity} plays: ${value}`);
      else if (key !== SENSITIVE_ATTR) log(`${participant.identity}: ${key} = ${value}`);
    }
    renderAgent();
  });
  r.on(RoomEvent.ParticipantConnected, (p) => {
    log(`${p.identity} joined${p.isAgent ? ' (agent)' : ''}`);
    renderAgent();
  });
  r.on(RoomEvent.ParticipantDisconnected, (p) => {
    log(`${p.identity} left`);
    renderAgent();
  });
  r.on(RoomEvent.TrackSubscribed, (track, _pub, participant) => {
    if (track.kind !== Track.Kind.Audio) return;
    const element = track.attach();
    element.dataset.participant = participant.identity;
    ui.audioSink.append(element);
    log(`playing audio from ${participant.identity}`);
  });
  r.on(RoomEvent.TrackUnsubscribed, (track) => {
    for (const element of track.detach()) element.remove();
  });
  r.on(RoomEvent.AudioPlaybackStatusChanged, () => {
    if (!r.canPlaybackAudio) log('the browser blocked audio playback: click anywhere to allow it');
  });
  r.on(RoomEvent.Disconnected, (reason) => {
    // ROOM_DELETED is how an ivrkit flow hangs up (it deletes the room); CLIENT_INITIATED is us.
    const why = reason === undefined ? 'disconnected' : (DisconnectReason[reason] ?? String(reason));
    log(`call ended (${why})`);
    setStatus(`call ended (${why})`, 'ended');
    endCall();
  });
}

/**
 * A join error, with what to do about it when the cause is known. "could not establish pc
 * connection": the server answered (token, websocket) but no WebRTC media path came up — almost
 * always a server that advertises only 127.0.0.1, which browsers never send media to.
 */
function explainJoinError(message) {
  if (!/pc connection|peer ?connection|\bice\b/i.test(message)) return message;
  return (
    `${message}. The LiveKit server answered, but the browser could not open a media (WebRTC) ` +
    'connection to it. Browsers never send media to 127.0.0.1: the server must advertise an address ' +
    'of this machine that is not loopback (livekit-server: rtc.node_ip, rtc.use_external_ip: false). ' +
    '`ivrkit dev FLOWS --local-server` starts a server set up that way; see docs/testing.md, ' +
    '"Try a flow in the browser".'
  );
}

async function startCall() {
  const roomName = ui.room.value.trim();
  const identity = ui.identity.value.trim();
  if (!roomName || !identity) {
    setStatus('enter a room and an identity', 'error');
    return;
  }
  ui.call.disabled = true;
  setStatus('connecting', 'connecting');
  picture.reset();
  // Made in the click (a user gesture), before any await: browsers start it muted otherwise.
  const context = new AudioContext();
  try {
    const { url, token } = await fetchToken(roomName, identity, ui.flow.value.trim());
    const r = new Room({ adaptiveStream: false, dynacast: false });
    wireRoom(r);
    room = r;
    // Inside the click handler, so the browser counts it as a user gesture for audio playback.
    const audioStarted = r.startAudio();
    await r.connect(url, token, { autoSubscribe: true });
    await audioStarted.catch(() => undefined);
    setStatus(`connected to ${roomName} as ${identity}`, 'connected');
    log(`joined ${roomName} at ${url}`);
    ui.hangup.disabled = false;
    setKeypadEnabled(true);
    renderAgent();
    statsTimer = setInterval(() => {
      updateAudioStats().catch(() => undefined);
      if (voice) renderVoice(voice.state());
    }, STATS_INTERVAL_MS);
    await startVoice(r, context);
  } catch (err) {
    const why = explainJoinError(String(err?.message ?? err));
    setStatus(`error: ${why}`, 'error');
    log(`could not join: ${why}`);
    await room?.disconnect();
    endCall();
    await context.close().catch(() => undefined);
    ui.call.disabled = false;
  }
}

/** Publish the page's voice track; a failure leaves the keys working and says why. */
async function startVoice(r, context) {
  const v = new CallerVoice(context, renderVoice);
  try {
    await v.publish(r.localParticipant);
  } catch (err) {
    log(`could not publish the page's audio (speech input is off): ${err?.message ?? err}`);
    await v.close();
    return;
  }
  if (room !== r) {
    await v.close(); // the call ended while publishing
    return;
  }
  voice = v;
  setVoiceEnabled(true);
  renderVoice(v.state());
  log('publishing this page\'s audio as the caller\'s microphone (silent until the mic is on or you say something)');
}

function endCall() {
  clearInterval(statsTimer);
  statsTimer = 0;
  voice?.close();
  voice = null;
  setVoiceEnabled(false);
  renderVoice(null);
  setKeypadEnabled(false);
  ui.hangup.disabled = true;
  ui.call.disabled = false;
  ui.audioSink.replaceChildren();
  room = null;
  renderAgent();
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  startCall();
});
ui.hangup.addEventListener('click', async () => {
  await room?.disconnect();
});

// --- start ----------------------------------------------------------------------------------

async function init() {
  buildKeypad();
  setVoiceEnabled(false);
  renderVoice(null);
  renderListening(null);
  const params = new URLSearchParams(location.search);
  let defaults = { room: 'ivrkit-dialpad' };
  try {
    const response = await fetch('api/config');
    if (response.ok) defaults = await response.json();
  } catch {
    // The form still works with the built-in default room.
  }
  ui.room.value = params.get('room') ?? defaults.room;
  ui.flow.value = params.get('flow') ?? defaults.flow ?? '';
  // A flow can only be asked of an agent the token dispatches (ivrkit dialpad --agent-name).
  ui.flow.disabled = !defaults.agent_name;
  ui.dispatch.textContent = defaults.agent_name
    ? `Joining a new room calls agent "${defaults.agent_name}".`
    : 'No agent is dispatched (start ivrkit dialpad with --agent-name): the page waits for whoever joins.';
  ui.identity.value = params.get('identity') ?? `dialpad-${Math.random().toString(36).slice(2, 8)}`;
  setStatus('not in a call', 'idle');
  ui.call.disabled = false;
  document.body.dataset.ready = 'true';
}

// Exposed for the console and for tests: press keys as a person would (same code path).
window.ivrkitDialpad = { pressKey, picture, get room() { return room; }, get voice() { return voice; } };

init();
