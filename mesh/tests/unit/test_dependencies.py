"""The Envoy API (xds-protos) and OpenTelemetry's OTLP protos share one package folder."""

from __future__ import annotations

import importlib


def test_the_envoy_api_leaves_the_otlp_protos_that_span_export_needs() -> None:
    # xds-protos carries an older copy of opentelemetry/proto (no ScopeSpans); `make install`
    # puts the pinned opentelemetry-proto back over it. Both must import side by side.
    trace = importlib.import_module("opentelemetry.proto.trace.v1.trace_pb2")
    envoy_otel = importlib.import_module("envoy.config.trace.v3.opentelemetry_pb2")

    assert hasattr(trace, "ScopeSpans")
    assert hasattr(envoy_otel, "OpenTelemetryConfig")
