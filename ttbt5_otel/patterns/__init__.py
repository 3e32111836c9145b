"""The TTBT5 guide's pattern APIs, as thin adapters over this package's OpenTelemetry core.

Code written against the guide moves over by changing its ``src.patterns`` import prefix to
``ttbt5_otel.patterns``: the module names (``application_context``,
``dependency_injection``, ``error_handling``, ``caching``, ``logging_monitoring``) and the
names in them are the guide's. Each name delegates to the native API (``ttbt5_otel``), so
spans, metrics and log records are the same as the native code's; where the guide's
behaviour has no counterpart here, the adapter's docstring says what to use instead.
``docs/migration.md`` maps every guide name to its native one.
"""
