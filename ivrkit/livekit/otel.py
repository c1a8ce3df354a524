"""The worker's OpenTelemetry tracer, when the standard `OTEL_*` environment asks for one.

Why ivrkit reads the environment itself: livekit-agents installs a tracer provider only for
LiveKit Cloud's observability, and the OTel SDK configures exporters from `OTEL_*` only under
`opentelemetry-instrument` (opentelemetry-distro, not installed). So, once per process:

- `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no spans.
- A global SDK `TracerProvider` already set (by the application, or by livekit-agents for
  LiveKit Cloud): ivrkit's spans go through it, with its exporters and processors.
- Else, when `OTEL_TRACES_EXPORTER` (`otlp`, `console`, comma-separated) or an OTLP endpoint
  (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: a provider of
  ivrkit's own, with a batch processor per exporter. The OTLP exporters are the ones
  livekit-agents ships (opentelemetry-exporter-otlp): HTTP/protobuf, or gRPC when
  `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL=grpc`; each reads the other `OTEL_EXPORTER_OTLP_*`
  variables itself (headers, timeout, compression); `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` name the service
  (`ivrkit` by default).
- Otherwise: no spans, and nothing is imported or built.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping

from opentelemetry import trace as otel
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

logger = logging.getLogger("ivrkit.livekit")

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracer_from_env(environ: Mapping[str, str]) -> otel.Tracer | None:
    """The tracer `environ` asks for (see the module docstring), or None."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    if names == ["none"]:
        return None
    installed = otel.get_tracer_provider()
    if isinstance(installed, TracerProvider):
        return installed.get_tracer("ivrkit")
    if not names and any(environ.get(v) for v in _ENDPOINTS):
        names = ["otlp"]
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    exporters = [e for e in (_exporter(n, protocol) for n in names) if e is not None]
    if not exporters:
        return None
    attrs = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "ivrkit"}
    provider = TracerProvider(resource=Resource.create(attrs))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    logger.info("OpenTelemetry: a span per call, exported to %s", ", ".join(names))
    return provider.get_tracer("ivrkit")


@functools.cache
def worker_tracer() -> otel.Tracer | None:
    """This process's tracer from `os.environ`, built on its first call (one per process)."""
    return tracer_from_env(os.environ)


def _exporter(name: str, protocol: str) -> SpanExporter | None:
    if name == "otlp" and protocol.strip().lower() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter()
    if name != "none":
        logger.warning("OTEL_TRACES_EXPORTER=%s: ivrkit knows otlp and console; ignored", name)
    return None
