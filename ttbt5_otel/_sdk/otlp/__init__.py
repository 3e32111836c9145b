"""OTLP encoding written directly in the protobuf wire format, and the exporters using it."""
