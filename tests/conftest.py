"""Every test starts without the guide's variable names in its environment.

The settings read ``LOG_LEVEL``, ``APP_NAME`` and the guide's other names as aliases; a
machine may have them set for other software, and a test must see only what it sets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.loopback import GUIDE_VARIABLES


@pytest.fixture(autouse=True)
def _without_guide_variables() -> Iterator[None]:
    # Not through monkeypatch: requesting it here would set it up before the tests' own
    # fixtures and so undo their settings after their teardown has run.
    saved = {name: os.environ.pop(name) for name in GUIDE_VARIABLES if name in os.environ}
    yield
    os.environ.update(saved)
