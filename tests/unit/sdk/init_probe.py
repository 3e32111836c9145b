"""Run ``init(**json.loads(argv[1]))`` in a fresh process and print what it set up, as JSON.

Every option of the table must change something here: the test compares each option's run
with a run on the defaults.
"""

import json
import logging
import os
import sys
from typing import Any

from opentelemetry.instrumentation.asyncio import AsyncioInstrumentor

import ttbt5_otel
from ttbt5_otel._core.limits import cardinality_limit
from ttbt5_otel._core.otel import meter
from ttbt5_otel._core.scrub import active_scrubber
from ttbt5_otel._sdk.quiet import RateLimitFilter
from ttbt5_otel._signals.log_bridge import installed_bridge

URL = "postgres://app:hunter2@db.internal:5432/orders"


def _span_exporter(telemetry: Any) -> dict[str, Any]:
    inner = telemetry._span_exporter.inner if telemetry._span_exporter else None
    facts: dict[str, Any] = {}
    spool = getattr(inner, "spool", None)
    if spool is not None:
        facts["spool_dir"] = str(spool.directory.path)
        facts["spool_max_bytes"] = spool.directory.max_bytes
        inner = inner.inner
    facts["class"] = f"{type(inner).__module__}.{type(inner).__qualname__}"
    client = getattr(inner, "_client", None)
    for name in ("_endpoint", "_headers", "_timeout", "_insecure", "_credentials"):
        for owner in (inner, client):
            if owner is not None and hasattr(owner, name):
                value = getattr(owner, name)
                facts[name] = (
                    value
                    if isinstance(value, str | int | float | bool)
                    else repr(value if name != "_credentials" else value is not None)
                )
    session = getattr(getattr(client, "_transport", None), "_session", None)
    if session is not None:
        facts["verify"] = session.verify
    return facts


def _batch_settings(batch_vars: dict[str, Any]) -> dict[str, Any]:
    return {
        k: batch_vars.get(k)
        for k in ("_max_queue_size", "_max_export_batch_size", "_schedule_delay")
    }


def probe(telemetry: Any) -> dict[str, Any]:
    providers = telemetry.providers
    tracer_provider = providers.tracer_provider
    batch = [
        vars(getattr(p, "_batch_processor", p))
        for p in tracer_provider._active_span_processor._span_processors
    ]
    log_batch = [
        vars(p._batch_processor)
        for p in providers.logger_provider._multi_log_record_processor._log_record_processors
        if hasattr(p, "_batch_processor")
    ]
    readers = list(providers.meter_provider._metric_readers)
    bridge = installed_bridge()
    flushed: list[int] = []

    def recording_flush(timeout_millis: int = 30000) -> bool:
        flushed.append(timeout_millis)
        return True

    for provider in (tracer_provider, providers.meter_provider, providers.logger_provider):
        provider.force_flush = recording_flush
    telemetry.force_flush()
    return {
        "resource": {k: str(v) for k, v in providers.resource.attributes.items()
                     if not k.startswith(("process.", "host.", "telemetry.", "service.instance"))},
        "span_exporter": _span_exporter(telemetry),
        "processors": [_batch_settings(batch_vars) for batch_vars in batch],
        "log_processors": [_batch_settings(batch_vars) for batch_vars in log_batch],
        "sdk_warning_filters": sorted(
            name for name in ("opentelemetry.exporter.otlp.proto.grpc.exporter",
                              "opentelemetry.sdk._shared_internal")
            if any(isinstance(f, RateLimitFilter) for f in logging.getLogger(name).filters)
        ),
        "sampler": tracer_provider.sampler.get_description(),
        "metric_interval_ms": [getattr(r, "_export_interval_millis", None) for r in readers],
        "asyncio": AsyncioInstrumentor().is_instrumented_by_opentelemetry,
        "instrumented": sorted(
            r.name for r in telemetry.instrumentations if r.status == "instrumented"
        ),
        "runtime_metrics": sorted(
            key.split(",")[0] for key in meter()._instrument_id_instrument  # type: ignore[attr-defined]
            if key.startswith(("process.", "ttbt5.process."))
        ),
        "bridge_levels": [] if bridge is None else [bridge.level],
        "log_file": None if bridge is None or bridge.file is None else {
            "path": bridge.file.baseFilename,
            "max_bytes": bridge.file.maxBytes,
            "backups": bridge.file.backupCount,
        },
        "flush_budget_ms": round(max(flushed) / 100) * 100 if flushed else None,
        "secret_custom_name": active_scrubber().is_secret("order_cvv"),
        "url_password_scrubbed": "hunter2" not in str(active_scrubber().text(URL, "span.name")),
        "secret_tokens_used": active_scrubber().is_secret("tokens_used"),
        "cardinality_limit": cardinality_limit(),
    }  # fmt: skip


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    for key, value in list(options.items()):
        if isinstance(value, list):
            options[key] = tuple(value)
    if options.get("scrub_callback") == "keep_everything":
        options["scrub_callback"] = lambda match: ttbt5_otel.ScrubAction.KEEP
    telemetry = ttbt5_otel.init(**options)
    sys.stdout.write(json.dumps(probe(telemetry), sort_keys=True, default=repr) + "\n")
    sys.stdout.flush()
    # No exit flush: nothing listens at the endpoint, and the facts are all printed.
    os._exit(0)
