// The flow's picture: the SVG the dev server draws with Graphviz (`api/graph`, see
// ivrkit/dialpad/picture.py), with the state the call is in lit and the edge it just took marked,
// plus the call's path as text (which also stands in for the picture when Graphviz is missing).
//
// Why the page only lights elements: the server's SVG names each node and edge by the flow
// graph's ids and answers with the maps `nodes` (state -> element id) and `edges` (edge id ->
// element id), so the page needs no layout code and no knowledge of how ids are spelled. The
// worker publishes `ivrkit.flow`, and each state with the edge that led to it (`ivrkit.state`,
// `ivrkit.edge`, ivrkit/livekit/attributes.py) — the state also a moment earlier with its prompt,
// so for one round trip a new state may show beside the previous edge. The path grows when the
// state changes: updates coalesce, so a state passed through quickly may be missing from it, and
// re-entering the same state (a self-loop) is marked on the picture but not repeated on the path.
//
// The container's data-* attributes (flow, state, edge, lit, taken) are what the e2e test reads.

export const FLOW_ATTR = 'ivrkit.flow';
export const EDGE_ATTR = 'ivrkit.edge';
const PATH_SHOWN = 12; // states shown on the path line; older ones become "…"
const BUILTIN_ERROR = '_ivrkit_error';

export class FlowPicture {
  /** @param {{picture: HTMLElement, message: HTMLElement, path: HTMLElement}} ui */
  constructor(ui) {
    this.ui = ui;
    this.reset();
  }

  /** A new call: forget the last call's flow and path. */
  reset() {
    this.flow = '';
    this.graph = null; // the api/graph answer for this.flow
    this.loading = null;
    this.path = [];
    this.last = null; // {state, edge} last shown
    this.ui.picture.replaceChildren();
    this.ui.picture.dataset.flow = '';
    this.setLit('', '', '', '');
    this.ui.message.textContent = 'The flow appears here once a call starts.';
    this.ui.path.textContent = '';
  }

  /** The agent's attributes changed: fetch the picture of a new flow, light state and edge. */
  follow(attrs, log) {
    const flow = attrs[FLOW_ATTR] ?? '';
    if (flow && flow !== this.flow) {
      this.flow = flow;
      this.graph = null;
      this.loading = this.load(flow, log).then(() => this.light());
    }
    const state = attrs['ivrkit.state'] ?? '';
    const edge = attrs[EDGE_ATTR] ?? '';
    if (state && state !== this.last?.state) {
      this.path.push(state);
      this.showPath();
    }
    if (state) this.last = { state, edge };
    this.light();
  }

  async load(flow, log) {
    this.ui.message.textContent = `drawing flow ${flow}…`;
    let body = {};
    try {
      const response = await fetch(`api/graph?${new URLSearchParams({ flow })}`);
      body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
    } catch (err) {
      if (flow !== this.flow) return;
      this.ui.message.textContent = `no picture of flow ${flow}: ${err?.message ?? err}`;
      log?.(`picture of flow ${flow} unavailable: ${err?.message ?? err}`);
      return;
    }
    if (flow !== this.flow) return; // another call's flow arrived meanwhile
    this.graph = body;
    this.ui.picture.dataset.flow = flow;
    if (!body.svg) {
      this.ui.message.textContent = body.message || 'no picture';
      return;
    }
    const doc = new DOMParser().parseFromString(body.svg, 'image/svg+xml');
    const svg = doc.documentElement;
    if (svg.nodeName !== 'svg') {
      this.ui.message.textContent = `the picture of flow ${flow} could not be read`;
      return;
    }
    this.ui.picture.replaceChildren(document.importNode(svg, true));
    this.ui.message.textContent = `flow ${flow}: the call's state is lit, the edge it took is marked`;
  }

  /** Light the current state's node and mark the last edge's element (when drawn). */
  light() {
    const { state = '', edge = '' } = this.last ?? {};
    const nodeId = this.graph?.nodes?.[state] ?? '';
    const edgeId = (edge && this.graph?.edges?.[edge]) || '';
    this.setLit(state, edge, nodeId, edgeId);
    const lit = nodeId ? this.element(nodeId) : null;
    lit?.scrollIntoView?.({ block: 'nearest', inline: 'nearest' });
  }

  setLit(state, edge, nodeId, edgeId) {
    for (const el of this.ui.picture.querySelectorAll('.lit, .taken')) el.classList.remove('lit', 'taken');
    const node = nodeId ? this.element(nodeId) : null;
    const taken = edgeId ? this.element(edgeId) : null;
    node?.classList.add('lit');
    taken?.classList.add('taken');
    Object.assign(this.ui.picture.dataset, {
      state,
      edge,
      lit: node ? nodeId : '',
      taken: taken ? edgeId : '',
    });
  }

  element(id) {
    // Ids hold ':' and flow-chosen characters: looked up by id, never through a CSS selector.
    const el = document.getElementById(id);
    return el && this.ui.picture.contains(el) ? el : null;
  }

  showPath() {
    const names = this.path.map((s) => (s === BUILTIN_ERROR ? '(error)' : s));
    const shown = names.length > PATH_SHOWN ? ['…', ...names.slice(-PATH_SHOWN)] : names;
    this.ui.path.textContent = `path: ${shown.join(' → ')}`;
    this.ui.path.dataset.states = JSON.stringify(this.path);
  }
}
