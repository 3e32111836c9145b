"""Where the repository's files are, for tests that read configs, docs and examples."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
