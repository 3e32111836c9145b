"""ttbt5-otel: OpenTelemetry traces, metrics, logs and error events from one ``init()`` call.

Public API (everything else is private and may change):

* set-up: ``init``, ``shutdown``, ``force_flush``, ``Telemetry``, ``TelemetryConfig``,
  ``ConfigError``
* traces: ``traced``, ``span``
* metrics: ``monitor_performance``, ``counter``, ``up_down_counter``, ``histogram``, ``gauge``
* logs: ``get_logger``, ``StructuredLogger``, ``log_calls``
* errors: ``ApplicationError``, ``ValidationError``, ``ErrorSeverity``, ``ErrorCategory``,
  ``handle_errors``, ``Validator``, ``Ttbt5Error``
"""

from ttbt5_otel._config import TelemetryConfig
from ttbt5_otel._errors import ApplicationError, ErrorCategory, ErrorSeverity, ValidationError
from ttbt5_otel._exceptions import ConfigError, Ttbt5Error
from ttbt5_otel._handle_errors import handle_errors
from ttbt5_otel._log_calls import log_calls
from ttbt5_otel._logging import StructuredLogger, get_logger
from ttbt5_otel._metrics import counter, gauge, histogram, monitor_performance, up_down_counter
from ttbt5_otel._setup import Telemetry, force_flush, init, shutdown
from ttbt5_otel._tracing import span, traced
from ttbt5_otel._validation import Validator
from ttbt5_otel._version import __version__

__all__ = [
    "ApplicationError",
    "ConfigError",
    "ErrorCategory",
    "ErrorSeverity",
    "StructuredLogger",
    "Telemetry",
    "TelemetryConfig",
    "Ttbt5Error",
    "ValidationError",
    "Validator",
    "__version__",
    "counter",
    "force_flush",
    "gauge",
    "get_logger",
    "handle_errors",
    "histogram",
    "init",
    "log_calls",
    "monitor_performance",
    "shutdown",
    "span",
    "traced",
    "up_down_counter",
]
