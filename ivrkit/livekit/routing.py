"""Which flow a call gets, when one worker serves a folder of flows.

Rules, most specific first (the first that names a flow wins):

1. dispatch metadata: `{"flow": "<name>"}` (JSON) on the agent dispatch — an explicit choice
   made by whoever dispatched the agent (a SIP dispatch rule's `room_config.agents[].metadata`,
   or `AgentDispatchService.create_dispatch`). Metadata that is not JSON, or has no "flow" key,
   is ignored (it may be there for something else);
2. the dialled number (`sip.trunkPhoneNumber` of the SIP caller) against `number:` routes;
3. the room name against `room:` routes;
4. the default flow.

Patterns are shell globs (`+1555*`, `support-*`). Numbers are compared without formatting
(spaces, dashes, dots, brackets). A rule that names a flow the worker does not have is caught at
startup (`FlowRouter` raises); metadata naming an unknown flow is a per-call mistake: it is
reported as a warning and the next rule decides, so the caller still gets an answer.

Pure: no LiveKit import. Unit-tested in tests/livekit/test_routing.py.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from ivrkit.errors import IvrkitError

__all__ = [
    "FlowRouter",
    "Route",
    "RouteDecision",
    "RoutingError",
    "normalise_number",
    "parse_route",
]

RouteKind = Literal["number", "room"]
_NUMBER_FORMATTING = str.maketrans("", "", " -.()/")


class RoutingError(IvrkitError):
    """A route or the default flow cannot work; raised at startup, with what to change.

    Raised by `parse_route` (a `--route`/`IVRKIT_ROUTES` entry that is not `KIND:PATTERN=FLOW`)
    and by `FlowRouter` (a route or default naming a flow that is not loaded); the worker
    prints it and exits 2.
    """


def normalise_number(number: str) -> str:
    """`+1 (555) 010-0` -> `+15550100`; a `tel:` prefix is dropped."""
    n = number.strip()
    if n.lower().startswith("tel:"):
        n = n[4:]
    return n.translate(_NUMBER_FORMATTING)


@dataclass(frozen=True, slots=True)
class Route:
    """`number:+15550100=bank` or `room:support-*=support`, parsed."""

    kind: RouteKind
    pattern: str
    flow: str

    def matches(self, value: str) -> bool:
        if self.kind == "number":
            return fnmatch.fnmatchcase(normalise_number(value), normalise_number(self.pattern))
        return fnmatch.fnmatchcase(value, self.pattern)

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}={self.flow}"


def parse_route(text: str) -> Route:
    """Parse `KIND:PATTERN=FLOW` (KIND is `number` or `room`); raises `RoutingError`."""
    kind, sep, rest = text.partition(":")
    pattern, eq, flow = rest.rpartition("=")
    kind = kind.strip().lower()
    if not sep or not eq or kind not in ("number", "room") or not pattern.strip() or not flow.strip():
        raise RoutingError(
            f"route {text!r} is not KIND:PATTERN=FLOW; write e.g. 'number:+15550100=bank' "
            "(dialled number) or 'room:support-*=support' (room name glob)"
        )
    return Route(kind=kind, pattern=pattern.strip(), flow=flow.strip())  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The flow chosen for one call, why, and anything odd seen on the way (for the log)."""

    flow: str | None
    reason: str
    warnings: tuple[str, ...] = ()


def flow_from_metadata(metadata: str | None) -> str | None:
    """The "flow" named in dispatch metadata, if the metadata is a JSON object that has one."""
    if not metadata or not metadata.strip().startswith("{"):
        return None
    try:
        data = json.loads(metadata)
    except json.JSONDecodeError:
        return None
    value = data.get("flow") if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


class FlowRouter:
    """Chooses a flow name per call. Built once at startup; raises `RoutingError` there.

    `default` may be None only when every call is expected to match a rule; a call that then
    matches nothing gets `RouteDecision(flow=None)` and the worker hangs up with an error log.
    """

    def __init__(self, flows: Collection[str], routes: Iterable[Route] = (), default: str | None = None) -> None:
        self.flows = frozenset(flows)
        self.routes = tuple(routes)
        known = ", ".join(sorted(self.flows)) or "(none)"
        for route in self.routes:
            if route.flow not in self.flows:
                raise RoutingError(f"route {route} names flow '{route.flow}', which is not loaded (flows: {known})")
        if default is None and len(self.flows) == 1:
            default = next(iter(self.flows))
        if default is not None and default not in self.flows:
            raise RoutingError(f"default flow '{default}' is not loaded (flows: {known})")
        self.default = default

    def choose(self, *, room: str, dialled_number: str | None = None, metadata: str | None = None) -> RouteDecision:
        warnings: list[str] = []
        wanted = flow_from_metadata(metadata)
        if wanted is not None:
            if wanted in self.flows:
                return RouteDecision(wanted, "dispatch metadata")
            warnings.append(
                f"dispatch metadata asks for flow '{wanted}', which this worker does not have "
                f"(flows: {', '.join(sorted(self.flows))}); using the next matching rule"
            )
        for kind, value in (("number", dialled_number), ("room", room)):
            if not value:
                continue
            for route in self.routes:
                if route.kind == kind and route.matches(value):
                    return RouteDecision(route.flow, f"route {route}", tuple(warnings))
        if self.default is not None:
            return RouteDecision(self.default, "default flow", tuple(warnings))
        return RouteDecision(None, "no route matched and there is no default flow", tuple(warnings))
