"""docs/migration.md names every name the guide uses, and maps the guide's settings.

Names come from the guide itself (its code blocks and config blocks, verbatim in
``tests/unit/app/guide_blocks.py``): what its Python imports from ``src.patterns``, the
classes and functions it calls, the methods it calls on them, their keyword arguments and
enum members, its environment variables and its ``config/base.json`` keys.
"""

import json
import re

from tests.paths import REPO
from tests.unit.app.guide_blocks import GUIDE_BASE_JSON, GUIDE_ENV, GUIDE_PYTHON_BLOCKS, parse_env
from ttbt5_otel._app.settings import option_table

DOC = REPO / "docs" / "migration.md"
# The guide's example code of its own (the app's functions and objects, stdlib calls, the
# fields it logs): not API, nothing to migrate.
NOT_API = {
    "run",  # asyncio.run
    "check_db_connection",
    "check_cache_health",
    "generate_response",  # ai_service.generate_response
    "user_id",
    "session_id",
    "operation",
}
MODULES = (
    "application_context",
    "dependency_injection",
    "error_handling",
    "caching",
    "logging_monitoring",
)


def guide_python_names() -> set[str]:
    """Every API name the guide's Python blocks use."""
    code = "\n".join(GUIDE_PYTHON_BLOCKS)
    names: set[str] = set()
    for module, imported in re.findall(
        r"from src\.patterns\.(\w+) import \(?([\w\s,]+?)\)?\s*$", code, re.MULTILINE
    ):
        names.add(module)
        names.update(name.strip() for name in imported.split(",") if name.strip())
    names.update(re.findall(r"\b([A-Z]\w*)\(", code))  # classes instantiated
    names.update(re.findall(r"\.(\w+)\(", code))  # methods called
    names.update(re.findall(r"@(\w+)", code))  # decorators
    names.update(re.findall(r"[(,]\s*(\w+)=", code))  # keyword arguments
    names.update(f"{a}.{b}" for a, b in re.findall(r"\b([A-Z]\w+)\.([A-Z][A-Z_0-9]+)\b", code))
    names.update(re.findall(r"\bmonitoring\.(logger)\b", code))
    return names - NOT_API


def guide_config_names() -> set[str]:
    """The guide's variables and ``section.key`` names of its config/base.json."""
    keys = {f"{s}.{k}" for s, table in json.loads(GUIDE_BASE_JSON).items() for k in table}
    return set(parse_env(GUIDE_ENV)) | keys


def test_the_extraction_finds_the_guide_api():
    """Guard against a regex that silently finds nothing."""
    names = guide_python_names()
    assert {"ErrorManager", "RetryErrorHandler", "MonitoringSystem", "DIContainer"} <= names
    assert {"add_lifecycle_hook", "invalidate_by_tags", "start_monitoring"} <= names
    assert {"CacheLevel.L1_MEMORY", "ErrorSeverity.HIGH", "max_retries", "tags"} <= names
    assert set(MODULES) <= names


def test_every_guide_name_is_in_the_migration_doc():
    text = DOC.read_text(encoding="utf-8")
    missing = sorted(
        name for name in guide_python_names() | guide_config_names() if f"`{name}" not in text
    )
    assert not missing, f"docs/migration.md does not mention: {missing}"


def test_every_pattern_module_and_the_migration_steps_have_a_section():
    text = DOC.read_text(encoding="utf-8")
    for module in MODULES:
        assert f"\n### {module}\n" in text, module
    steps = ("Backup", "Update dependencies", "Update configuration", "Gradual", "Testing")
    for number, step in enumerate((*steps, "Monitoring"), start=1):
        assert re.search(rf"^{number}\. \*\*{step}", text, re.MULTILINE), step


def test_every_guide_variable_row_names_its_native_option():
    """The table row of each alias names the option the settings table declares it on."""
    text = DOC.read_text(encoding="utf-8")
    for row in option_table():
        for alias in row.spec.aliases:
            line = next(line for line in text.splitlines() if line.startswith(f"| `{alias}` |"))
            assert f"`{row.key}`" in line, (alias, row.key)
