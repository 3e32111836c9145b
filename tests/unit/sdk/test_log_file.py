"""The log file (``log_file``, the guide's ``LOG_FILE``): the bridge's records, as JSON lines."""

import json
import logging

import pytest

from ttbt5_otel import ConfigError
from ttbt5_otel._sdk.config import resolve_config
from ttbt5_otel._signals.log_bridge import install_bridge, installed_bridge, remove_bridge


@pytest.fixture
def bridge_slot():
    """Run with no bridge installed (one left by another test would refuse ours)."""
    previous = installed_bridge()
    remove_bridge(previous)
    yield
    remove_bridge(installed_bridge())


def test_records_at_the_bridge_level_reach_the_file(tmp_path, bridge_slot):
    path = tmp_path / "logs" / "application.log"  # the directory is created, as mkdir -p logs
    bridge = install_bridge("INFO", str(path), log_file_max_bytes=1 << 20, log_file_backups=2)
    assert bridge is not None
    logger = logging.getLogger("guide.service")
    logger.info("order placed", extra={"ttbt5_fields": {"order_id": 7}})
    logger.debug("not at the bridge level")
    remove_bridge(bridge)
    (line,) = path.read_text().splitlines()
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "INFO",
        "guide.service",
        "order placed",
    )


def test_the_file_rotates_and_keeps_its_backups(tmp_path, bridge_slot):
    path = tmp_path / "app.log"
    bridge = install_bridge("INFO", str(path), log_file_max_bytes=2000, log_file_backups=2)
    for index in range(100):
        logging.getLogger("guide.rotate").warning("line %d %s", index, "x" * 50)
    remove_bridge(bridge)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]
    assert all(p.stat().st_size <= 2200 for p in tmp_path.iterdir())


def test_an_unwritable_file_warns_and_the_bridge_still_runs(tmp_path, bridge_slot, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, "ttbt5_otel"):
        bridge = install_bridge("INFO", str(blocker / "app.log"))
    assert bridge is not None
    assert bridge.file is None
    assert "cannot open log_file" in caplog.text


def test_log_file_needs_the_bridge_and_a_regular_file(tmp_path):
    with pytest.raises(ConfigError, match="log_file: the log file gets the records"):
        resolve_config({"log_file": str(tmp_path / "a.log"), "logging_bridge": False}, {})
    with pytest.raises(ConfigError, match="is not a regular file") as info:
        resolve_config({}, {"LOG_FILE": str(tmp_path)})
    assert info.value.source == "LOG_FILE"
