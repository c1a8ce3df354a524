"""`ivrkit dialpad`: call a flow from a browser — a development tool, no SIP trunk or phone.

An adapter-side tool like `ivrkit.livekit` (it imports livekit; the engine never imports it):

- `server`   the aiohttp server: mints LiveKit join tokens (the API secret never reaches the
             browser) and serves the page; `add_dialpad_parser` / `run_devserver` are the command,
             `BackgroundDevServer` runs it next to the worker in `ivrkit dev`
- `picture`  the flow's picture for the page (`/api/graph`): Graphviz SVG whose elements carry
             the graph's ids, so the page lights the call's state and the edge it just took
- `web/`     the page itself (index.html, app.css, src/*.js), bundled by npm into
             `web/dist/app.js` (tests/stack/install_web.sh builds it; see web/README.md)

`python -m ivrkit.dialpad ...` runs the command without the main CLI.
"""
