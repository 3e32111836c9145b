"""An app that puts every secret of the corpus in every place telemetry can carry one.

Run with the OTLP endpoint in the environment; prints how many secrets it planted. The
test then looks for each secret's needle in everything the receiver (or collector) got.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import ttbt5_otel
from tests.secret_corpus import SECRETS

TEXTS = [text for _, text, _ in SECRETS]


@ttbt5_otel.traced(capture_args=True, record_return=True)
def connect(dsn: str, pw: str, options: dict[str, Any]) -> dict[str, str]:
    return {"token": pw, "dsn": dsn, "options": json.dumps(options)}


def plant_in_spans(index: int, text: str) -> None:
    tracer = trace.get_tracer("leaky")
    with ttbt5_otel.span(f"GET /reset {text}", detail=text, listed=[text, "ok"]) as scope:
        scope.add_event("retry", {"target": text})
        connect(text, text, {"nested": {"password": text}, "url": text})
    with tracer.start_as_current_span(f"raw {index}") as raw:
        raw.set_attribute("http.request.header.x_auth", [text])
        raw.set_status(Status(StatusCode.ERROR, text))
        raw.add_link(trace.get_current_span().get_span_context(), {"why": text})
    try:
        with ttbt5_otel.span(f"failing {index}"):
            raise ValueError(text)
    except ValueError:
        pass
    with ttbt5_otel.handle_errors(reraise=False):
        raise ttbt5_otel.ApplicationError(text)


def plant_in_logs(text: str) -> None:
    plain = logging.getLogger("leaky")
    plain.warning("login failed for %s", text)
    plain.warning(text)
    plain.info("with extra", extra={"detail": text, "headers": {"Authorization": text}})
    try:
        raise RuntimeError(text)
    except RuntimeError:
        plain.exception("while connecting")
    structured = ttbt5_otel.get_logger("leaky.structured")
    structured.info("structured %s", text, detail=text, headers={"Cookie": text})


def plant_in_metrics(text: str) -> None:
    ttbt5_otel.counter("leaky.requests").add(1, {"target": text})
    metrics.get_meter("leaky.raw").create_counter("leaky.raw.requests").add(1, {"url": text})


def main() -> None:
    telemetry = ttbt5_otel.init(
        service_name="leaky",
        resource_attributes={
            "db.password": "ResDbPassw0rd42",
            "deploy.token": "ResDeployTok3n42",
            "deploy.source": "https://ci:ResUrlPassw0rd42@git.example.com/app.git",
        },
        schedule_delay=0.2,
        metric_export_interval=0.5,
        instrument=("none",),
    )
    logging.getLogger().setLevel(logging.INFO)
    for index, text in enumerate(TEXTS):
        plant_in_spans(index, text)
        plant_in_logs(text)
        plant_in_metrics(text)
    telemetry.shutdown()
    sys.stdout.write(json.dumps({"planted": len(TEXTS)}) + "\n")


if __name__ == "__main__":
    main()
