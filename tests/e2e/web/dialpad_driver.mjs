// Drive the ivrkit dial pad page in Debian's headless Chromium with playwright-core, over JSON
// lines, for tests/e2e/test_dialpad.py.
//
// Why JSON lines on stdin/stdout: the browser runs inside the test's network namespace as a
// separate process (like the Python and Go test callers), and the test interleaves browser
// actions with what other participants do; one request -> one reply keeps that ordering explicit.
//
// Usage: node dialpad_driver.mjs --chromium /usr/bin/chromium [--artifacts DIR] [--fake-audio WAV]
//        (the microphone is Chromium's fake device: its beeps, or the WAV file given, looped)
// stdin  {"id": 1, "cmd": "open", "url": "http://127.0.0.1:8765/?room=r&identity=web"}
//        {"cmd": "press", "keys": "12#", "via": "click" | "keyboard"}   waits until each key is sent
//        {"cmd": "wait_received", "count": 3}    {"cmd": "wait_state", "state": "main"}
//        {"cmd": "wait_picture", "state": "sales", "edge": "main:key:1"}   the flow's picture drawn
//          (or its fallback line shown) with that state lit and that edge marked
//        {"cmd": "wait_audio", "min_packets": 50, "min_energy": 0.001}   {"cmd": "wait_ended"}
//        "open" takes "expect": "error" to check that the page refuses to join and says why
//        {"cmd": "say", "text": "billing"}   types into the say box, waits until the words have played
//        {"cmd": "mic", "on": true}   clicks the mic switch, waits until it shows on (off)
//        {"cmd": "wait_listening", "listening": true, "what": "billing"}   the page says the flow
//          listens (for words containing "what"), or does not
//        {"cmd": "wait_voice_level", "min_level": 0.05}   the call hears sound from this page
//        {"cmd": "snapshot"}  {"cmd": "screenshot", "name": "x"[, "path": "/tmp/x.png"]}
//        {"cmd": "hangup"}  {"cmd": "quit"}
//        every wait takes "timeout_ms" (default 15000)
// stdout {"id": 1, "ok": true, "reply": "open", "page": {...snapshot...}}
//        {"id": 1, "ok": false, "error": "...", "page": {...}}   also {"event": "console", ...}
// What the page shows is what the test asserts on: the snapshot reads the DOM a person sees.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

// Flags from the machine notes: without the background-networking ones Chromium keeps dialing
// Google hosts this closed network refuses. The mDNS one keeps real host ICE candidates (the
// namespace's test address) instead of random .local names the server cannot resolve.
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  // A microphone with no person and no dialog: Chromium's fake capture device, allowed at once.
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

function parseArgs(argv) {
  const args = { chromium: '/usr/bin/chromium', artifacts: null, fakeAudio: null };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--chromium') args.chromium = argv[++i];
    else if (argv[i] === '--artifacts') args.artifacts = argv[++i];
    else if (argv[i] === '--fake-audio') args.fakeAudio = argv[++i];
    else throw new Error(`unknown argument ${argv[i]} (known: --chromium PATH, --artifacts DIR, --fake-audio WAV)`);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const userDataDir = mkdtempSync(join(tmpdir(), 'ivrkit-dialpad-chromium-'));
let context = null;
let page = null;
let shots = 0;

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function ensurePage() {
  if (page) return page;
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: args.chromium,
    headless: true,
    args: args.fakeAudio ? [...CHROMIUM_FLAGS, `--use-file-for-fake-audio-capture=${args.fakeAudio}`] : CHROMIUM_FLAGS,
    viewport: { width: 1100, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') emit({ event: 'console', level: msg.type(), text: msg.text() });
  });
  page.on('pageerror', (err) => emit({ event: 'pageerror', text: String(err) }));
  return page;
}

/** Everything the page shows that a test may assert on, read from the DOM. */
async function snapshot() {
  if (!page) return null;
  return page.evaluate(() => {
    const items = (id) =>
      [...document.querySelectorAll(`#${id} > li`)].map((li) => ({
        digit: li.dataset.digit,
        code: Number(li.dataset.code),
        from: li.dataset.from ?? null,
        ok: li.dataset.ok === undefined ? null : li.dataset.ok === 'true',
        masked: li.dataset.masked === 'true',
        text: li.textContent,
      }));
    const audio = document.getElementById('audio').dataset;
    const voice = document.getElementById('voice').dataset;
    const listening = document.getElementById('listening');
    return {
      status: document.getElementById('status').dataset.state,
      status_text: document.getElementById('status').textContent,
      agent: document.getElementById('agent-identity').textContent,
      state: document.getElementById('agent-state').dataset.state,
      prompt: document.getElementById('agent-prompt').textContent,
      attributes: document.getElementById('attributes').innerText,
      page_text: document.body.innerText,
      sensitive: (() => {
        const agent = window.ivrkitDialpad?.room
          ? [...window.ivrkitDialpad.room.remoteParticipants.values()].find((p) => 'ivrkit.state' in (p.attributes ?? {}))
          : undefined;
        return agent?.attributes?.['ivrkit.sensitive'] ?? null;
      })(),
      sent: items('sent'),
      received: items('received'),
      audio: {
        tracks: Number(audio.tracks),
        packets: Number(audio.packets),
        energy: Number(audio.energy),
        level: Number(audio.level),
        text: document.getElementById('audio').textContent,
      },
      listening: { on: listening.dataset.listening === 'true', what: listening.dataset.what, text: listening.textContent },
      voice: {
        mic: voice.mic,
        mic_button: document.getElementById('mic').textContent,
        saying: voice.saying === 'true',
        said: Number(voice.said),
        level: Number(voice.level),
        text: document.getElementById('voice').textContent,
        enabled: !document.getElementById('say').disabled && !document.getElementById('mic').disabled,
      },
      keypad: [...document.querySelectorAll('#keypad button')].map((b) => (b.disabled ? 'disabled' : 'enabled')),
      picture: (() => {
        const el = document.getElementById('picture');
        return {
          ...el.dataset,
          svg: el.querySelector('svg') !== null,
          lit_elements: [...el.querySelectorAll('.lit')].map((e) => e.id),
          taken_elements: [...el.querySelectorAll('.taken')].map((e) => e.id),
          message: document.getElementById('picture-message').textContent,
          path: document.getElementById('path').textContent,
        };
      })(),
      log: [...document.querySelectorAll('#log > li')].map((li) => li.textContent),
    };
  });
}

async function screenshot(name, where = null) {
  if (!page || !(args.artifacts || where)) return null;
  shots += 1;
  const path = where ?? join(args.artifacts, `dialpad-${String(shots).padStart(2, '0')}-${name}.png`);
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  return path;
}

const timeoutOf = (cmd) => Number(cmd.timeout_ms ?? 15000);

async function open(cmd) {
  const p = await ensurePage();
  await p.goto(cmd.url, { waitUntil: 'load', timeout: timeoutOf(cmd) });
  await p.waitForSelector('body[data-ready="true"]', { timeout: timeoutOf(cmd) });
  await p.click('#call');
  await p.waitForFunction(
    () => ['connected', 'error'].includes(document.getElementById('status').dataset.state),
    null,
    { timeout: timeoutOf(cmd) },
  );
  const status = await p.$eval('#status', (el) => el.textContent);
  // With "expect": "error" the test checks that the page says why it could not join.
  if (cmd.expect === 'error') {
    if (!status.startsWith('error')) throw new Error(`expected the page to refuse, but it shows: ${status}`);
  } else if (!status.startsWith('connected')) {
    throw new Error(`page did not join: ${status}`);
  }
}

async function press(cmd) {
  const p = await ensurePage();
  const via = cmd.via ?? 'click';
  if (!['click', 'keyboard'].includes(via)) throw new Error(`via must be "click" or "keyboard", not ${via}`);
  for (const key of String(cmd.keys)) {
    const before = await p.$$eval('#sent > li', (lis) => lis.length);
    if (via === 'click') await p.click(`#keypad button[data-key="${key.toUpperCase()}"]`);
    else await p.keyboard.press(key);
    // One key at a time: the next press only after the page shows this one as sent.
    await p.waitForFunction((n) => document.querySelectorAll('#sent > li').length > n, before, {
      timeout: timeoutOf(cmd),
    });
    if (cmd.interval_ms) await p.waitForTimeout(Number(cmd.interval_ms));
  }
}

async function say(cmd) {
  const before = await page.$eval('#voice', (el) => Number(el.dataset.said));
  await page.fill('#say-text', String(cmd.text));
  await page.click('#say');
  await page.waitForFunction((n) => Number(document.getElementById('voice').dataset.said) > n, before, {
    timeout: timeoutOf(cmd),
  });
}

async function mic(cmd) {
  const want = cmd.on === false ? 'off' : 'on';
  if ((await page.$eval('#mic', (el) => el.dataset.mic)) !== want) await page.click('#mic');
  await page.waitForFunction((m) => document.getElementById('mic').dataset.mic === m, want, { timeout: timeoutOf(cmd) });
}

async function waitListening(cmd) {
  await page.waitForFunction(
    ([on, what]) => {
      const d = document.getElementById('listening').dataset;
      return d.listening === String(on) && d.what.includes(what);
    },
    [cmd.listening !== false, String(cmd.what ?? '')],
    { timeout: timeoutOf(cmd) },
  );
}

async function waitVoiceLevel(cmd) {
  await page.waitForFunction((min) => Number(document.getElementById('voice').dataset.level) >= min,
    Number(cmd.min_level ?? 0.01), { timeout: timeoutOf(cmd) });
}

async function waitReceived(cmd) {
  await page.waitForFunction((n) => document.querySelectorAll('#received > li').length >= n, Number(cmd.count), {
    timeout: timeoutOf(cmd),
  });
}

async function waitState(cmd) {
  await page.waitForFunction((s) => document.getElementById('agent-state').dataset.state === s, String(cmd.state), {
    timeout: timeoutOf(cmd),
  });
}

async function waitPicture(cmd) {
  // The picture has loaded (or said why not) and lights this state (and marks this edge).
  await page.waitForFunction(
    ([state, edge]) => {
      const d = document.getElementById('picture').dataset;
      const drawn = document.querySelector('#picture svg') !== null;
      const lit = drawn ? d.lit !== '' && (!edge || d.taken !== '') : d.flow !== '';
      return d.state === state && (!edge || d.edge === edge) && lit;
    },
    [String(cmd.state), cmd.edge ? String(cmd.edge) : ''],
    { timeout: timeoutOf(cmd) },
  );
}

async function waitAudio(cmd) {
  await page.waitForFunction(
    ([packets, energy]) => {
      const d = document.getElementById('audio').dataset;
      return Number(d.packets) >= packets && Number(d.energy) >= energy;
    },
    [Number(cmd.min_packets ?? 1), Number(cmd.min_energy ?? 0)],
    { timeout: timeoutOf(cmd) },
  );
}

async function waitEnded(cmd) {
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'ended', null, {
    timeout: timeoutOf(cmd),
  });
}

async function hangup() {
  await page.click('#hangup');
  await page.waitForFunction(() => document.getElementById('status').dataset.state !== 'connected', null, {
    timeout: 10000,
  });
}

const HANDLERS = {
  open,
  press,
  wait_received: waitReceived,
  wait_state: waitState,
  wait_picture: waitPicture,
  wait_audio: waitAudio,
  wait_ended: waitEnded,
  say,
  mic,
  wait_listening: waitListening,
  wait_voice_level: waitVoiceLevel,
  hangup,
  snapshot: async () => {},
  screenshot: async (cmd) => ({ path: await screenshot(cmd.name ?? 'shot', cmd.path ?? null) }),
};

async function shutdown(code) {
  try {
    await context?.close();
  } catch {
    // The browser may already be gone; the profile dir is removed regardless.
  }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

process.on('SIGTERM', () => shutdown(143));

async function handle(cmd) {
  const reply = { id: cmd.id ?? null, reply: cmd.cmd };
  if (cmd.cmd === 'quit') {
    emit({ ...reply, ok: true });
    await shutdown(0);
  }
  const handler = HANDLERS[cmd.cmd];
  if (!handler) {
    emit({ ...reply, ok: false, error: `unknown command ${cmd.cmd} (known: ${Object.keys(HANDLERS).join(', ')}, quit)` });
    return;
  }
  try {
    const extra = (await handler(cmd)) ?? {};
    emit({ ...reply, ok: true, ...extra, page: await snapshot() });
  } catch (err) {
    let shot = null;
    try {
      shot = await screenshot(`failed-${cmd.cmd}`);
    } catch {
      // A screenshot is a diagnostic; failing to take one must not hide the real error.
    }
    emit({ ...reply, ok: false, error: String(err?.message ?? err), screenshot: shot, page: await snapshot().catch(() => null) });
  }
}

// Commands run strictly one after another, in arrival order.
let chain = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (err) {
    emit({ ok: false, error: `bad command line ${JSON.stringify(line)}: ${err.message}` });
    return;
  }
  chain = chain.then(() => handle(cmd));
});
lines.on('close', () => {
  chain = chain.then(() => shutdown(0));
});
emit({ event: 'ready', chromium: args.chromium, user_data_dir: userDataDir });
