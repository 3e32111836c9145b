"""The ``ttbt5-otel`` command: ``doctor``, the local ``stack`` and the ``demo``."""
