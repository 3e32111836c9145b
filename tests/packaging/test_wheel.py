"""The built wheel, installed into a fresh virtualenv with the pip ``venv`` ships.

What users install is the wheel, not this tree: every subpackage and data file must be in
it, its dependencies must resolve with an old pip as well as a new one, and the entry
points (command, pytest plugin, distro) must work from ``site-packages``.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.loopback import clean_env, free_port
from tests.paths import REPO

pytestmark = pytest.mark.integration
SMOKE = Path(__file__).with_name("smoke_app.py")


def _env() -> dict[str, str]:
    env = clean_env()
    for leaked in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(leaked, None)
    return env


def _call(
    argv: list[str], cwd: Path, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """``argv`` in ``cwd`` with the clean environment plus ``env``; never raises on failure."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> str:
    result = _call(argv, cwd, timeout)
    assert result.returncode == 0, f"{argv} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: an in-tree build/ folder could carry stale modules into the wheel.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "ttbt5_otel", source / "ttbt5_otel", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), "."], source)
    [built] = out.glob("ttbt5_otel-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A venv made by ``python3 -m venv``, its pip left as shipped, with the wheel and extras."""
    root = tmp_path_factory.mktemp("venv")
    base = os.environ.get("TTBT5_BASE_PYTHON", sys._base_executable)
    _run([base, "-m", "venv", str(root)], root)
    python = root / "bin" / "python"
    packages = [f"{wheel}[redis,disk,yaml,flask,requests]", "pytest", "flask"]
    _run([str(python), "-m", "pip", "install", "-q", *packages], root)
    return root


def test_wheel_holds_every_subpackage(wheel: Path) -> None:
    import zipfile  # noqa: PLC0415

    names = set(zipfile.ZipFile(wheel).namelist())
    for package in sorted(REPO.joinpath("ttbt5_otel").rglob("*.py")):
        relative = package.relative_to(REPO).as_posix()
        assert relative in names, f"{relative} is missing from {wheel.name}"
    assert "ttbt5_otel/py.typed" in names


def test_installed_package_works_outside_the_tree(venv: Path, tmp_path: Path) -> None:
    output = _run([str(venv / "bin" / "python"), str(SMOKE), "--extras"], tmp_path)
    for check in ("import", "traced", "cached", "breaker", "retry", "extras", "shutdown"):
        assert f"ok {check}" in output, output
    assert "site-packages" in output
    assert "[span] add" in output  # the console exporter printed the span


def test_installed_extras_instrument_an_unmodified_flask_app(venv: Path, tmp_path: Path) -> None:
    """The [flask] and [requests] extras: init() alone gives server spans with the route."""
    app = tmp_path / "shop.py"
    app.write_text(
        "from flask import Flask\n"
        "import ttbt5_otel\n"
        "t = ttbt5_otel.init(service_name='shop', exporter='console', runtime_metrics=False)\n"
        "app = Flask(__name__)\n"
        "@app.get('/items/<item>')\n"
        "def item(item): return item\n"
        "print(sorted(i.name for i in t.instrumentations if i.status == 'instrumented'))\n"
        "print(app.test_client().get('/items/7').status_code)\n"
    )
    result = _call([str(venv / "bin" / "python"), str(app)], tmp_path)
    assert result.returncode == 0, result.stderr
    instrumented, status = result.stdout.splitlines()[-2:]
    assert instrumented == "['asyncio', 'flask', 'redis', 'requests']"
    assert status == "200"
    assert "http.route='/items/<item>'" in result.stderr


def test_installed_command_runs(venv: Path, tmp_path: Path) -> None:
    output = _run([str(venv / "bin" / "ttbt5-otel"), "--version"], tmp_path)
    assert output.strip()
    doctor = _call(
        [str(venv / "bin" / "ttbt5-otel"), "doctor", "--timeout", "1"],
        tmp_path,
        60,
        TTBT5_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
    )
    assert "service_name" in doctor.stdout + doctor.stderr


def test_installed_pytest_plugin_captures_telemetry(venv: Path, tmp_path: Path) -> None:
    tmp_path.joinpath("test_user_app.py").write_text(
        textwrap.dedent(
            """
            import ttbt5_otel

            @ttbt5_otel.traced
            def charge():
                return 1

            def test_charge(capture_telemetry):
                charge()
                assert capture_telemetry.span_names() == ["charge"]
            """
        ),
        encoding="utf-8",
    )
    output = _run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path
    )
    assert "1 passed" in output


def test_installed_stack_runs_from_the_wheel(venv: Path, tmp_path: Path) -> None:
    """``stack up`` finds its configs inside the installed package, not in a checkout."""
    command = str(venv / "bin" / "ttbt5-otel")
    state = tmp_path / "state"
    built = REPO / "collector" / "_build"
    binaries = {
        "TTBT5_COLLECTOR_BIN": str(built / "ttbt5-otelcol"),
        "TTBT5_JAEGER_BIN": str(built / "ttbt5-jaeger"),
        "TTBT5_VICTORIALOGS_BIN": str(built / "ttbt5-victoria-logs"),
    }

    def stack(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [command, "stack", *args, "--state-dir", str(state)]
        return _call(argv, tmp_path, 180, **binaries)

    try:
        up = stack("up", "--timeout", "60")
        assert up.returncode == 0, up.stdout + up.stderr
        status = stack("status")
        assert status.returncode == 0, status.stdout
        configs = json.loads((state / "stack.json").read_text())["components"]
        shipped = "site-packages/ttbt5_otel/_cli/stack_files/"
        for component in ("jaeger", "collector"):
            argv = " ".join(configs[component]["argv"])
            assert shipped in argv, argv
        # Prometheus and Alertmanager read copies written into the state directory from
        # the shipped configs, with the shipped rules of the chosen SLO profile.
        for component, written in (
            ("prometheus", "prometheus.yml"),
            ("alertmanager", "alertmanager.yml"),
        ):
            argv = " ".join(configs[component]["argv"])
            assert f"--config.file={state / written}" in argv, argv
            assert shipped in (state / written).read_text()
        rules = yaml.safe_load((state / "prometheus.yml").read_text())["rule_files"]
        assert rules
        assert all(shipped in rule and Path(rule).is_file() for rule in rules), rules
    finally:
        down = stack("down")
    assert down.returncode == 0, down.stdout + down.stderr


def test_missing_collector_is_named(venv: Path, tmp_path: Path) -> None:
    argv = [str(venv / "bin" / "ttbt5-otel"), "stack", "up", "--state-dir", str(tmp_path)]
    result = _call(argv, tmp_path, 60, PATH="/usr/bin:/bin")
    assert result.returncode == 1
    assert "ttbt5-otelcol not found on PATH" in result.stderr
    assert "TTBT5_COLLECTOR_BIN" in result.stderr


def test_missing_trace_store_is_named(venv: Path, tmp_path: Path) -> None:
    """With a collector but no Jaeger, ``stack up`` names the binary and how to build it."""
    argv = [str(venv / "bin" / "ttbt5-otel"), "stack", "up", "--state-dir", str(tmp_path)]
    collector = str(REPO / "collector/_build/ttbt5-otelcol")
    result = _call(argv, tmp_path, 60, PATH="/usr/bin:/bin", TTBT5_COLLECTOR_BIN=collector)
    assert result.returncode == 1
    assert "ttbt5-jaeger or jaeger not found on PATH" in result.stderr
    assert "collector/stores/build.sh" in result.stderr
    assert "TTBT5_JAEGER_BIN" in result.stderr
