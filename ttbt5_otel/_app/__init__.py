"""The application around the telemetry: context, lifecycle, health checks, events, settings.

Loaded only when used: ``import ttbt5_otel`` does not import it (it pulls in
``http.server`` and the whole settings model).
"""
