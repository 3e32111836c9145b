"""The documents generated from the option table: ``.env.example``, README, JSON example.

The README's settings table and ``config/base.json.example`` come from it too.
``python -m ttbt5_otel._app.settings_docs --write`` rewrites them from a source checkout;
without ``--write`` (and in the test suite) it fails when one disagrees with the table. The
TTBT5 guide's names of a setting (its ``aliases``) are shown beside the native ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ttbt5_otel._app.settings import option_table
from ttbt5_otel._sdk.config_file import CONFIG_FILE_VARIABLE
from ttbt5_otel._sdk.options import Declared

README_START: Final = "<!-- settings-table:start -->"
README_END: Final = "<!-- settings-table:end -->"
_COMMENT_COLUMN: Final = 46
# Values the JSON example shows instead of the default, so it reads like a real service.
_EXAMPLE: Final[dict[str, Any]] = {
    "service_name": "orders",
    "service_version": "1.0.0",
    "service_namespace": "shop",
    "environment": "development",
    "resource_attributes": {"team": "checkout"},
    "scrub_allow": ["tokens_used"],
}


def shown(value: Any) -> str:
    """A default as a variable would spell it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def env_example() -> str:
    """The text of ``.env.example``."""
    lines = [
        "# Every ttbt5-otel setting as an environment variable, with its default.",
        "# Generated from the option table: python -m ttbt5_otel._app.settings_docs --write",
        "# Precedence: argument > TTBT5_* > standard OTEL_* > the TTBT5 guide's name",
        "# (APP_NAME, LOG_FILE, ...: 'guide:' below) > config file > default.",
        "# Copy to .env (or export the lines) and uncomment what you change.",
        "",
        "# --- config file (JSON, TOML or YAML; see config/base.json.example) ---",
        f"# {CONFIG_FILE_VARIABLE}=config/base.json",
    ]
    section = ""
    for row in option_table():
        if row.section != section:
            section = row.section
            lines += ["", f"# --- {section} ---"]
            if section == "telemetry":
                lines.append(
                    _line("OTEL_RESOURCE_ATTRIBUTES=", "resource attributes k=v,...; "
                          "service.name and friends there count for the options below")
                )  # fmt: skip
        if not row.spec.env:
            continue
        first, *others = _spelled(row)
        also = [f"also {', '.join(others)}"] if others else []
        also += [f"guide: {', '.join(row.spec.aliases)}"] if row.spec.aliases else []
        doc = row.spec.doc + (f" ({'; '.join(also)})" if also else "")
        lines.append(_line(f"{first}={shown(row.default)}", doc))
    return "\n".join(lines) + "\n"


def _spelled(row: Declared) -> list[str]:
    return [*row.spec.env, *(f"{v} in ms" for v in row.spec.millis_env)]


def _line(assignment: str, doc: str) -> str:
    return f"# {assignment}".ljust(_COMMENT_COLUMN) + f"# {doc}"


def _cell(row: Declared) -> tuple[str, str, str, str]:
    variables = ", ".join(f"`{v}`" for v in row.spec.env)
    variables += "".join(f", `{v}` (ms)" for v in row.spec.millis_env)
    variables += "".join(f", `{v}` (guide)" for v in row.spec.aliases)
    default = row.spec.shown_default or shown(row.default)
    return (f"`{row.key}`", variables or "—", f"`{default}`" if default else "unset", row.spec.doc)


def readme_table() -> str:
    """The settings table of the README, between its markers."""
    lines = ["| option | variables | default | what it sets |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(row)) + " |" for row in option_table()]
    return "\n".join(lines)


def replace_readme_table(readme: str) -> str:
    """``readme`` with the text between the markers replaced by ``readme_table()``."""
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        msg = f"README has no {README_START} ... {README_END} block"
        raise ValueError(msg)
    return f"{head}{README_START}\n{readme_table()}\n{README_END}{tail}"


def json_example() -> str:
    """The text of ``config/base.json.example``: every setting a file can hold."""
    sections: dict[str, dict[str, Any]] = {}
    for row in option_table():
        if row.name == "scrub_callback":  # a function has no JSON form
            continue
        value = _EXAMPLE.get(row.name, row.default)
        if isinstance(value, tuple):
            value = list(value)
        if row.name == "log_level":  # files spell the bridge level logging.level
            sections.setdefault("logging", {})["level"] = value
            continue
        sections.setdefault(row.section, {})[row.name] = value
    return json.dumps(sections, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write or check ``.env.example``, the README table and the JSON example."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--write", action="store_true", help="rewrite instead of checking")
    args = parser.parse_args(argv)
    wanted = {
        args.root / ".env.example": env_example(),
        args.root / "config" / "base.json.example": json_example(),
        args.root / "README.md": replace_readme_table(
            (args.root / "README.md").read_text(encoding="utf-8")
        ),
    }
    stale = []
    for path, text in wanted.items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if args.write:
            path.write_text(text, encoding="utf-8")
        else:
            stale.append(str(path))
    if stale:
        sys.stderr.write(f"out of date with the option table: {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
