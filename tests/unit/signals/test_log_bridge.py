"""The logging bridge leaves the app's own logging as it was and exports each record once.

Each case runs a small app in a fresh interpreter twice, with and without ``init()``: its
console output (stderr) must be identical, and with ``init()`` every record at INFO and above
must be exported exactly once (the console exporter prints each exported record on stderr
as a line starting with ``[log]``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.loopback import clean_env

_CONFIGURE = {
    "none": "",
    "basicConfig": "logging.basicConfig(format='APP %(levelname)s %(message)s')",
    "basicConfig_info": "logging.basicConfig(level=logging.INFO, format='APP %(message)s')",
    "dictConfig": """
        logging.config.dictConfig({
            "version": 1,
            "formatters": {"plain": {"format": "DICT %(levelname)s %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"level": "INFO", "handlers": ["console"]},
        })""",
    "fileConfig": """
        import tempfile
        ini = tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False)
        ini.write(
            "[loggers]\\nkeys=root\\n[handlers]\\nkeys=console\\n[formatters]\\nkeys=plain\\n"
            "[logger_root]\\nlevel=INFO\\nhandlers=console\\n"
            "[handler_console]\\nclass=StreamHandler\\nformatter=plain\\nargs=(sys.stderr,)\\n"
            "[formatter_plain]\\nformat=FILE %(levelname)s %(message)s\\n"
        )
        ini.close()
        logging.config.fileConfig(ini.name)""",
    "logging_instrumentation": """
        from opentelemetry.instrumentation.logging import LoggingInstrumentor
        LoggingInstrumentor().instrument()""",
}

_APP = """
import logging, logging.config, sys
if {with_init}:
    import ttbt5_otel
    ttbt5_otel.init(service_name="log-app", exporter="console", instrument=("none",),
                    runtime_metrics=False)
{configure}
log = logging.getLogger("shop.orders")
log.debug("marker-debug")
log.info("marker-info")
log.warning("marker-warning")
logging.getLogger().error("marker-error")
"""


def _run(configure: str, *, with_init: bool) -> subprocess.CompletedProcess[str]:
    source = _APP.format(with_init=with_init, configure=textwrap.dedent(configure))
    return subprocess.run(
        [sys.executable, "-c", source],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.parametrize("configure", sorted(_CONFIGURE))
def test_console_output_unchanged_and_each_record_exported_once(configure: str) -> None:
    """Same stderr with and without init(); INFO and above exported once, DEBUG not at all."""
    without = _run(_CONFIGURE[configure], with_init=False).stderr.splitlines()
    lines = _run(_CONFIGURE[configure], with_init=True).stderr.splitlines()
    exported = [line for line in lines if line.startswith("[log] ")]
    console = [line for line in lines if not line.startswith(("[log] ", "[span] ", "[metric]"))]
    assert console == without
    if configure != "logging_instrumentation":  # its handler silences the last-resort one
        assert any("marker-warning" in line for line in without), "the console shows warnings"
    for marker in ("marker-info", "marker-warning", "marker-error"):
        assert sum(marker in line.split() for line in exported) == 1, (marker, exported)
    assert not any("marker-debug" in line for line in exported)


def test_a_console_handler_added_after_init_prints_at_its_own_level() -> None:
    """init() lowered the root for export only; the console added later is the app's own."""
    source = textwrap.dedent(
        """
        import logging
        import ttbt5_otel
        from ttbt5_otel._signals.log_bridge import add_console_handler
        ttbt5_otel.init(service_name="log-app", exporter="none", instrument=("none",),
                        runtime_metrics=False)
        add_console_handler("text", "INFO")
        logging.getLogger("shop").debug("marker-debug")
        logging.getLogger("shop").info("marker-info")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", source],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "marker-info" in result.stderr
    assert "marker-debug" not in result.stderr
