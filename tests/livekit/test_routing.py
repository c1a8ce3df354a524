"""Which flow a call gets (ivrkit.livekit.routing)."""

from __future__ import annotations

import json

import pytest

from ivrkit.livekit.routing import FlowRouter, Route, RoutingError, normalise_number, parse_route

FLOWS = {"bank", "support", "clinic"}


def router(default: str | None = "bank") -> FlowRouter:
    routes = [parse_route("number:+1 555 0100=support"), parse_route("number:+4420*=clinic"), parse_route("room:support-*=support")]
    return FlowRouter(FLOWS, routes, default)


def test_parse_route() -> None:
    assert parse_route("number:+15550100=bank") == Route("number", "+15550100", "bank")
    assert parse_route(" room:a=b=c ") == Route("room", "a=b", "c")


@pytest.mark.parametrize("bad", ["+15550100=bank", "number:+1555", "phone:+1=bank", "room:=x", "room:x="])
def test_parse_route_refuses_malformed_text_with_an_example(bad: str) -> None:
    with pytest.raises(RoutingError, match="KIND:PATTERN=FLOW"):
        parse_route(bad)


def test_normalise_number() -> None:
    assert normalise_number("tel:+1 (555) 010-0") == "+15550100"


def test_metadata_names_the_flow_first() -> None:
    d = router().choose(room="support-1", dialled_number="+15550100", metadata=json.dumps({"flow": "clinic"}))
    assert (d.flow, d.reason, d.warnings) == ("clinic", "dispatch metadata", ())


def test_dialled_number_beats_room_name() -> None:
    d = router().choose(room="x", dialled_number="+15550100")
    assert d.flow == "support" and "number:" in d.reason
    assert router().choose(room="x", dialled_number="+442012345").flow == "clinic"


def test_room_route_then_default() -> None:
    assert router().choose(room="support-42", dialled_number="+19999").flow == "support"
    d = router().choose(room="other")
    assert (d.flow, d.reason) == ("bank", "default flow")


@pytest.mark.parametrize("metadata", ["", "not json", "[1, 2]", '{"flow": 3}', '{"other": "x"}', "{broken"])
def test_metadata_without_a_flow_is_ignored(metadata: str) -> None:
    d = router().choose(room="other", metadata=metadata)
    assert (d.flow, d.warnings) == ("bank", ())


def test_metadata_naming_an_unknown_flow_warns_and_falls_through() -> None:
    d = router().choose(room="support-1", metadata='{"flow": "nope"}')
    assert d.flow == "support"
    assert len(d.warnings) == 1 and "'nope'" in d.warnings[0]


def test_no_default_and_no_match_gives_no_flow() -> None:
    d = router(default=None).choose(room="other")
    assert d.flow is None and "no default" in d.reason


def test_single_flow_is_the_default() -> None:
    assert FlowRouter({"only"}).choose(room="anything").flow == "only"


def test_startup_refuses_routes_to_unknown_flows() -> None:
    with pytest.raises(RoutingError, match="'nope', which is not loaded"):
        FlowRouter(FLOWS, [parse_route("room:x=nope")])
    with pytest.raises(RoutingError, match="default flow 'nope'"):
        FlowRouter(FLOWS, default="nope")
