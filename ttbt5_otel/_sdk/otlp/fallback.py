"""What the direct exporters do on an SDK whose exporters they do not recognise."""

from __future__ import annotations

from ttbt5_otel._core import guard as _guard


def warn_reference(kind: str) -> None:
    """Say once that ``kind`` exporters fall back to the reference encoder."""
    _guard.warn_once(
        f"otlp-encoder-{kind}",
        f"this OpenTelemetry SDK's {kind} exporter is not the one ttbt5_otel knows; "
        "it encodes with the reference encoder",
    )
