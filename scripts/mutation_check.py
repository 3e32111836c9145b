"""Mutation check: do the unit tests notice when the code that carries a promise breaks?

Runs mutmut over the modules listed in ``[tool.mutmut] only_mutate`` of pyproject.toml
(scrubbing, the breaker's state machine, retry outcomes, cache and breaker counting,
cardinality limits, settings wiring, the bounded exit), within a time budget, then prints
the kill rate per module and every surviving mutant as a diff. Fails when the kill rate of
the checked mutants is under the threshold, or when the budget ran out before most mutants
were checked.

    .venv/bin/python scripts/mutation_check.py [--budget SECONDS] [--threshold 0.9]

A timeout counts as a kill (the tests did not pass); a mutant that no selected test reaches
counts as a survivor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

REPO = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
MISSED = {"survived", "no tests", "suspicious"}


def _run_mutmut(budget: float, log: Path) -> int | None:
    """Run mutmut in its own process group; its exit code, or None when the budget ran out."""
    env = {**os.environ, "TTBT5_PROPERTY_EXAMPLES": "20"}
    with (
        log.open("wb") as output,
        subprocess.Popen(
            [str(MUTMUT), "run", "--max-children", str(len(os.sched_getaffinity(0)))],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ) as process,
    ):
        try:
            return process.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return None


def _tail(log: Path, lines: int = 60) -> str:
    """The end of mutmut's output without its spinner frames."""
    text = log.read_bytes().decode("utf-8", "replace").replace("\r", "\n")
    kept = [line for line in text.splitlines()
            if line.strip() and not "\u2800" <= line[0] <= "\u28ff"]  # fmt: skip
    return "\n".join(kept[-lines:])


def _show_failing_test(log: Path) -> None:
    """Rerun the selected tests visibly: mutmut keeps a failed clean run's output to itself."""
    selection = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"
    ]
    env = {**os.environ, "MUTANT_UNDER_TEST": "stats", "PY_IGNORE_IMPORTMISMATCH": "1",
           "TTBT5_PROPERTY_EXAMPLES": "20"}  # fmt: skip
    with log.open("wb") as output:
        subprocess.run(
            [sys.executable, "-m", "pytest", "--rootdir=.", "-x", "-q", "-p", "no:randomly",
             "-p", "no:cacheprovider", "--tb=short", *selection],
            cwd=REPO / "mutants", env=env, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, timeout=900, check=False,
        )  # fmt: skip
    print(f"--- the selected tests, run as mutmut ran them:\n{_tail(log, 80)}")


def _results() -> dict[str, Counter[str]]:
    by_module: dict[str, Counter[str]] = {}
    for meta in sorted((REPO / "mutants").rglob("*.py.meta")):
        module = str(meta.relative_to(REPO / "mutants")).removesuffix(".meta")
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        statuses: Counter[str] = Counter()
        for name, code in codes.items():
            status = status_by_exit_code[code]
            statuses[status] += 1
            if status in MISSED:
                statuses[f"survivor:{name}"] += 1
        by_module[module] = statuses
    return by_module


def _show(name: str) -> str:
    shown = subprocess.run(
        [str(MUTMUT), "show", name], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout
    return "\n".join(
        line for line in shown.splitlines() if line.startswith(("-", "+")) and line[:3] not in
        ("---", "+++")
    )  # fmt: skip


def main() -> int:
    """Run the check; the exit status says whether it passed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=1500.0, help="seconds for mutmut")
    parser.add_argument("--threshold", type=float, default=0.9, help="minimum kill rate")
    args = parser.parse_args()
    log = REPO / "mutants.log"
    started = time.monotonic()
    exit_code: int | None = 0
    for attempt in (1, 2):
        shutil.rmtree(REPO / "mutants", ignore_errors=True)
        remaining = args.budget - (time.monotonic() - started)
        exit_code = _run_mutmut(remaining, log)
        if exit_code == 0 or exit_code is None:
            break
        # mutmut stops before checking any mutant when a test fails in its clean runs
        # (stats, clean tests, forced failure); show why, and try once more in case the
        # failure was a flake of a loaded machine.
        print(f"mutmut stopped with exit code {exit_code} (attempt {attempt}):\n{_tail(log)}")
        for own_log in sorted((REPO / "mutants").glob("**/*.log")):
            print(f"--- {own_log.relative_to(REPO)}\n{_tail(own_log, 40)}")
        if (REPO / "mutants" / "ttbt5_otel").is_dir():
            _show_failing_test(REPO / "mutants.pytest.log")
    finished = exit_code is not None
    elapsed = time.monotonic() - started
    modules = _results()
    total = Counter[str]()
    print(f"mutation check: {elapsed:.0f} s{'' if finished else ' (budget ran out)'}")
    print(f"{'module':<44} {'mutants':>7} {'killed':>7} {'missed':>7} {'rate':>6}")
    for module, statuses in modules.items():
        detected = sum(statuses[s] for s in DETECTED)
        missed = sum(statuses[s] for s in MISSED)
        total.update({"detected": detected, "missed": missed, "unchecked": statuses["not checked"]})
        checked = detected + missed
        rate = f"{detected / checked:.0%}" if checked else "-"
        print(f"{module:<44} {checked:>7} {detected:>7} {missed:>7} {rate:>6}")
    checked = total["detected"] + total["missed"]
    rate = total["detected"] / checked if checked else 0.0
    print(f"{'all':<44} {checked:>7} {total['detected']:>7} {total['missed']:>7} {rate:>6.0%}")
    survivors = [k.removeprefix("survivor:") for s in modules.values() for k in s
                 if k.startswith("survivor:")]  # fmt: skip
    for name in survivors:
        print(f"\nsurvived: {name}\n{_show(name)}")
    unchecked = total["unchecked"]
    if unchecked > 0.05 * (checked + unchecked):
        print(f"FAILED: {unchecked} mutants not checked within {args.budget:.0f} s")
        return 1
    if rate < args.threshold:
        print(f"FAILED: kill rate {rate:.1%} is under {args.threshold:.0%}")
        return 1
    print(f"mutation check passed: kill rate {rate:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
