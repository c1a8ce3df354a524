"""Cross-state checks on a built Flow: the problems no single node shows.

- every state reference (options, next, goto arms, on_max_retries, on_error, error, start)
  names a state — else an error with a did-you-mean hint;
- every state is reachable from `start` (or the error state) — else a warning (not checked
  while a state has errors: where it leads is unknown);
- no cycle of states that never wait for the caller (it would spin forever) — error;
- every `{variable}` and condition name can be set by something — else a warning;
- every hook imports and is callable (switchable: `check_hooks=False` for editors/CI without
  the hook's dependencies).

All of it is linear in the size of the flow: difflib only runs for names already known to be
wrong, so a 1,000-state flow checks in milliseconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from ivrkit.errors import HookImportError
from ivrkit.flow.build_context import BuildInfo
from ivrkit.flow.hook_refs import resolve_hook
from ivrkit.flow.model import Flow
from ivrkit.flow.source import Reporter, did_you_mean


def validate(flow: Flow, info: BuildInfo, report: Reporter, *, check_hooks: bool = True) -> None:
    _unknown_states(flow, info, report)
    _unreachable(flow, info, report)
    _spin_loops(flow, info, report)
    _unset_variables(info, report)
    if check_hooks:
        _hooks(info, report)


def _unknown_states(flow: Flow, info: BuildInfo, report: Reporter) -> None:
    defined = info.state_defs
    if flow.start and flow.start not in defined and info.start_pos is not None:
        report.add(info.start_pos, "start", "unknown-state", f"start state '{flow.start}' is not defined under states:",
                   _suggest(flow.start, defined))
    for ref in info.state_refs:
        if ref.target not in defined:
            report.add(ref.pos, ref.loc, "unknown-state", f"unknown state '{ref.target}'", _suggest(ref.target, defined))


def _suggest(name: str, defined: Mapping[str, object]) -> str | None:
    """A did-you-mean, or else the list of states when it is short enough to read."""
    hint = did_you_mean(name, defined)
    if hint is None and defined:
        names = sorted(defined)
        hint = "defined states: " + ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return hint


def _unreachable(flow: Flow, info: BuildInfo, report: Reporter) -> None:
    if flow.start not in flow.states:
        return
    if set(info.state_defs) - set(flow.states):
        # A state with errors was not built, so where it leads is unknown: every state behind
        # it would be reported unreachable, a cascade of one typo. Its errors come first.
        return
    roots = [flow.start]
    if flow.error_state is not None and flow.error_state in flow.states:
        roots.append(flow.error_state)
    seen = set(roots)
    queue = deque(roots)
    while queue:
        for target in flow.states[queue.popleft()].targets():
            if target not in seen and target in flow.states:
                seen.add(target)
                queue.append(target)
    for name in flow.states:
        if name not in seen:
            pos, loc = info.state_defs[name]
            report.add(pos, loc, "unreachable-state", f"state '{name}' cannot be reached from start state '{flow.start}'",
                       "link it from a menu option, next: or goto:, or remove it", "warning")


def _spin_loops(flow: Flow, info: BuildInfo, report: Reporter) -> None:
    """Tarjan's strongly connected components over the states that do not wait (iterative).

    `on_error` edges are left out: a second error before the caller is waited on again goes to
    the built-in error state (`CallCore._fail`), so a "retry once" path through on_error ends."""
    states = flow.states
    idle = {name for name, state in states.items() if not state.waits_for_caller}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    for root in idle:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, [t for t in states[root].targets(errors=False) if t in idle])]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, succ = work[-1]
            if succ:
                nxt = succ.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, [t for t in states[nxt].targets(errors=False) if t in idle]))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in set(states[node].targets(errors=False)):
                    _report_loop(component, flow, info, report)


def _report_loop(component: list[str], flow: Flow, info: BuildInfo, report: Reporter) -> None:
    order = {name: i for i, name in enumerate(flow.states)}
    members = sorted(component, key=order.__getitem__)
    first = members[0]
    pos, loc = info.state_defs[first]
    shown = " -> ".join([*members[:6], "..." if len(members) > 6 else first])
    report.add(pos, loc, "spin-loop",
               f"states {shown} form a loop that never waits for the caller; a call would spin forever",
               "put a menu or collect in the loop, or end it with hangup: true")


def _unset_variables(info: BuildInfo, report: Reporter) -> None:
    settable = info.settable
    reported: set[tuple[str, str]] = set()
    for use in info.var_uses:
        if use.name in settable or (use.name, str(use.pos)) in reported:
            continue
        reported.add((use.name, str(use.pos)))
        hint = did_you_mean(use.name, settable) or (
            f"set it with a collect (into: {use.name}), or declare it on a hook: "
            f"run: {{hook: module:function, sets: [{use.name}]}}"
        )
        report.add(use.pos, use.loc, "unset-variable", f"variable '{use.name}' is used but nothing sets it", hint, "warning")


def _hooks(info: BuildInfo, report: Reporter) -> None:
    results: dict[str, str | None] = {}
    for use in info.hooks:
        key = str(use.ref)
        if key not in results:
            try:
                resolve_hook(use.ref, info.python_path)
                results[key] = None
            except HookImportError as exc:
                results[key] = str(exc)
            except BaseException as exc:  # SystemExit/KeyboardInterrupt from a module body
                if isinstance(exc, KeyboardInterrupt):
                    raise
                results[key] = f"importing hook {key} raised {type(exc).__name__}: {exc}"
        problem = results[key]
        if problem is not None:
            report.add(use.pos, use.loc, "bad-hook", problem,
                       "run with --no-hooks to skip importing hooks" if "cannot import" in problem else None)
