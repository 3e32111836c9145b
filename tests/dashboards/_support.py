"""Shared helpers of the dashboard, rule and Alertmanager tests.

A missing promtool or amtool fails the tests rather than skipping them: a skipped
check would let rules, routes and dashboards drift apart unseen.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.paths import REPO

PROMETHEUS_DIR = REPO / "dashboards" / "prometheus"
ALERTMANAGER_CONFIG = REPO / "dashboards" / "alertmanager" / "alertmanager.yml"
GRAFANA_DIR = REPO / "dashboards" / "grafana"
RUNBOOKS = REPO / "docs" / "runbooks.md"


def tool(name: str, package: str) -> str:
    """Path of ``name`` on PATH; fail the test when it is missing."""
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} not found on PATH: install the Debian package {package}", pytrace=False
        )
    return found


def run(args: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run a command; fail with its output unless it exits 0."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def load_script(path: Path, name: str) -> ModuleType:
    """Import a stand-alone script of dashboards/ as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
