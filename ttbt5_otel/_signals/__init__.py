"""What user code calls to emit telemetry: spans, metrics, logs and error events.

``traced``/``span``, the metric helpers and ``monitor_performance``, the structured logger
and the stdlib logging bridge, ``log_calls``, ``handle_errors`` and ``Validator``. Built on
``_core`` only; nothing here installs providers.
"""
