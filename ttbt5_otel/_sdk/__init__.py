"""Setting up the OpenTelemetry SDK: the option table, ``init()``, providers and exporters.

Also the console exporters, the SDK warning rate limit, runtime metrics and the entry
points of ``opentelemetry-instrument``.
"""
