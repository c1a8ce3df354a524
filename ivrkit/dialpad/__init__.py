"""`ivrkit dialpad`: call a flow from a browser — a development tool, no SIP trunk or phone.

An adapter-side tool like `ivrkit.livekit` (it imports livekit; the engine never imports it):

- `server`   the aiohttp server: mints LiveKit join tokens (the API secret never reaches the
             browser) and serves the page; `add_dialpad_parser` / `run_devserver` are the command,
             `BackgroundDevServer` runs it next to the worker in `ivrkit dev`
- `say`      `POST /api/say`: words typed on the page, spoken by the offline voice as WAV, which the
             page plays into the track it publishes as the caller's microphone
- `picture`  the flow's picture for the page (`/api/graph`): Graphviz SVG whose elements carry
             the graph's ids, so the page lights the call's state and the edge it just took
- `web/`     the page itself (index.html, app.css, src/*.js), bundled by npm into
             `web/dist/app.js` (tests/stack/install_web.sh builds it; see web/README.md)

`python -m ivrkit.dialpad ...` runs the command without the main CLI.
"""
