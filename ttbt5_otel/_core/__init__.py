"""Foundations every other part builds on, importing nothing else of the package.

The package's tracer, meter and logger with their provider generation, the shared limits,
the guard that keeps instrumentation failures out of the host app, secret scrubbing,
attribute coercion, the one wrapper for every kind of function, and counts read at
collection time.
"""
