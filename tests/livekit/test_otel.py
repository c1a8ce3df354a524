"""ivrkit.livekit.otel: which `OTEL_*` environments give the worker a tracer, and what kind."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import Tracer, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ivrkit.livekit import otel as ivr_otel
from ivrkit.livekit.otel import tracer_from_env
from ivrkit.telemetry import export_call
from ivrkit.testing import FlowTester
from tests.call.helpers import bank

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


def _exporters(tracer: object) -> list[object]:
    assert isinstance(tracer, Tracer)
    return [p.span_exporter for p in tracer.span_processor._span_processors]  # type: ignore[attr-defined]


@pytest.mark.parametrize("env", [{}, {**ENDPOINT, "OTEL_SDK_DISABLED": "true"}, {**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"},
                                 {"OTEL_TRACES_EXPORTER": "jaeger"}])
def test_no_tracer_unless_the_environment_asks_for_one(env: dict[str, str]) -> None:
    assert tracer_from_env(env) is None


def test_an_otlp_endpoint_alone_means_the_otlp_exporter_and_service_ivrkit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    tracer = tracer_from_env(ENDPOINT)
    assert [type(e) for e in _exporters(tracer)] == [OTLPSpanExporter]
    assert isinstance(tracer, Tracer) and tracer.resource.attributes["service.name"] == "ivrkit"


def test_exporters_and_the_service_name_come_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "bank-ivr")
    tracer = tracer_from_env({**os.environ, "OTEL_TRACES_EXPORTER": "console,otlp"})
    assert [type(e) for e in _exporters(tracer)] == [ConsoleSpanExporter, OTLPSpanExporter]
    assert isinstance(tracer, Tracer) and tracer.resource.attributes["service.name"] == "bank-ivr"


async def test_a_provider_already_installed_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(ivr_otel, "otel", SimpleNamespace(get_tracer_provider=lambda: provider))
    tracer = tracer_from_env({})
    assert tracer is not None
    async with FlowTester(bank()) as t:
        await t.until_input()
    export_call(t.trace, tracer, t.machine.flow)
    assert [s.name for s in exporter.get_finished_spans()] == ["ivr.state main", "ivr.call t"]


async def test_the_worker_exports_a_finished_call_with_its_room_and_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from ivrkit.livekit import job

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(job, "worker_tracer", lambda: provider.get_tracer("ivrkit"))
    async with FlowTester(bank()) as t:
        await t.until_input()
    job._export_spans(t.call, t.machine.flow, 5 * 10**18, room="call-1", job="AJ_1")
    call = exporter.get_finished_spans()[-1]
    assert call.name == "ivr.call t" and call.start_time is not None and call.start_time >= 5 * 10**18
    assert call.attributes is not None and (call.attributes["ivr.room"], call.attributes["ivr.job"]) == ("call-1", "AJ_1")


def test_otlp_over_grpc_when_the_protocol_says_so() -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    tracer = tracer_from_env({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert [type(e) for e in _exporters(tracer)] == [GrpcExporter]
