"""``retry`` (on tenacity) and ``CircuitBreaker``, with their metrics and span events."""
