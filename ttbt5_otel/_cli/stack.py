"""Local stack without Docker: the stores, collector, Prometheus, Alertmanager, and Redis.

Everything listens on 127.0.0.1 with the ports the repository's configs pin (Prometheus
scrapes the collector on 8888/8889 and alerts to 9093). Each started process is recorded in
``<state dir>/stack.json`` with its pid, start time and command line; ``down``, ``reload``
and ``status`` act on those records only, and only on a process that still matches all
three, so nothing that this module did not start is ever signalled.

Loopback is not a security boundary: any local user, and any web page open in a local
browser, can send requests to 127.0.0.1. Hence:

* Prometheus runs without its lifecycle API (``POST /-/reload`` and ``/-/quit`` accept
  cross-origin requests, so a web page could stop it) unless explicitly asked for; it is
  reloaded with SIGHUP instead (``reload``).
* Redis requires a password, generated once per state directory
  (``secrets.token_urlsafe``) and kept in ``redis.password``; redis-server reads it from a
  generated ``redis.conf``, never from its command line (which any user can read in /proc).
* The state directory is 0700 and every file this module writes there is 0600.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from ttbt5_otel._cli import slo_profile as slo_profiles
from ttbt5_otel._cli import stack_ha
from ttbt5_otel._cli.processes import (
    ProcessId,
    boot_relative,
    command_line,
    ensure_ports_free,
    impostor,
    is_running,
    log_tail,
    probe,
    send_signal,
    spawn_detached,
    stop,
)
from ttbt5_otel._cli.stack_parts import (
    ALERTMANAGER_PORT,
    COLLECTOR_PORTS,
    HOST,
    INSTALL_HINT,
    PROMETHEUS_PORT,
    Component,
    alert_webhook,
    alertmanager,
    collector,
    collector_binary,
    config_file,
    find_binary,
    log_store,
    prometheus,
    trace_store,
    write_private,
)
from ttbt5_otel._exceptions import StackError

STATE_FILE: Final = "stack.json"
REDIS_PASSWORD_FILE: Final = "redis.password"  # noqa: S105 - a file name, not a password
REDIS_CONFIG_FILE: Final = "redis.conf"
REDIS_PORT: Final = 6379
LIFECYCLE_ENV: Final = "TTBT5_PROMETHEUS_LIFECYCLE"
SAMPLING_ENV: Final = "TTBT5_TRACE_SAMPLING_PERCENT"


@dataclass(frozen=True, slots=True)
class Record:
    """A started component as stored in ``stack.json``."""

    pid: int
    start_time: float
    """Seconds after boot (``processes.start_time_of``); epoch seconds in older records."""
    argv: list[str]
    log: str
    ready: str
    urls: dict[str, str]
    cmdline: list[str] | None = None
    """The command line the kernel reported for the process (records of older versions
    lack it; their ``argv`` stands in)."""

    @property
    def process(self) -> ProcessId:
        """The recorded process identity, command line included."""
        cmdline = self.cmdline if self.cmdline is not None else self.argv
        return ProcessId(self.pid, boot_relative(self.start_time), tuple(cmdline))


@dataclass(frozen=True, slots=True)
class Status:
    """What ``status`` found for one recorded component."""

    name: str
    record: Record
    running: bool
    ready: bool


def default_state_dir() -> Path:
    """``TTBT5_STACK_DIR``, else ``.ttbt5-stack`` in the current directory."""
    return Path(os.environ.get("TTBT5_STACK_DIR") or ".ttbt5-stack").absolute()


def _private_dir(path: Path) -> None:
    """Create ``path`` as 0700; an existing directory is tightened when it is a stack's own.

    A directory given by ``--state-dir`` that holds other things (say, a home directory) is
    left as it is: the files written into it are 0600 either way.
    """
    existed = path.is_dir()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    ours = (STATE_FILE, REDIS_PASSWORD_FILE, REDIS_CONFIG_FILE, "collector.log")
    if existed and (not any(path.iterdir()) or any((path / name).exists() for name in ours)):
        path.chmod(0o700)


def redis_password(state_dir: Path, *, create: bool = False) -> str | None:
    """The local Redis password of ``state_dir`` (created when ``create`` and missing)."""
    path = state_dir / REDIS_PASSWORD_FILE
    try:
        password = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        password = ""
    if password:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return password
    if not create:
        return None
    password = secrets.token_urlsafe(32)
    write_private(path, password + "\n")
    return password


def _created_redis_password(state_dir: Path) -> str:
    password = redis_password(state_dir, create=True)
    assert password is not None
    return password


def redis_url(state_dir: Path, *, db: int = 0) -> str | None:
    """``TTBT5_CACHE_REDIS_URL`` for the Redis of ``state_dir``, password included.

    The HA topology's Redis Cluster as a ``redis+cluster://`` URL (which has database 0
    only). None when that stack never started Redis. The result holds the secret: pass it
    on in the environment, never print it.
    """
    password = redis_password(state_dir)
    if password is None:
        return None
    if current_topology(state_dir) == "ha":
        return stack_ha.redis_cluster_url(state_dir, password)
    return f"redis://:{password}@{HOST}:{REDIS_PORT}/{db}"


def _conf_string(value: str) -> str:
    """A double-quoted string for redis.conf."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _write_redis_config(state_dir: Path) -> None:
    password = redis_password(state_dir, create=True)
    assert password is not None
    lines = [
        "# Written by `ttbt5-otel stack up` at every start. It holds the password: mode 0600.",
        f"bind {HOST}",
        f"port {REDIS_PORT}",
        "protected-mode yes",
        # Cache data only: nothing is persisted, so no dump appears anywhere.
        'save ""',
        "appendonly no",
        f"dir {_conf_string(str(state_dir / 'redis'))}",
        f"requirepass {_conf_string(password)}",
        # Keep the command line as started: `stack down` compares it with the record.
        "set-proc-title no",
    ]
    write_private(state_dir / REDIS_CONFIG_FILE, "\n".join(lines) + "\n")


def _sampling_overlay() -> tuple[str, ...]:
    """The tail-sampling overlay's arguments when ``TTBT5_TRACE_SAMPLING_PERCENT`` is set.

    Without it every trace goes straight to the store's persistent queue; with it, traces
    wait in the collector's memory for the sampling decision.
    """
    if not os.environ.get(SAMPLING_ENV, "").strip():
        return ()
    return ("--config", config_file("tail-sampling.yaml"))


def lifecycle_requested() -> bool:
    """True when ``TTBT5_PROMETHEUS_LIFECYCLE`` asks for Prometheus's lifecycle API."""
    return os.environ.get(LIFECYCLE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def components(
    state_dir: Path,
    *,
    with_redis: bool,
    prometheus_lifecycle: bool = False,
    slo_profile: str = "standard",
) -> list[Component]:
    """The components to run, in start order; raises ``StackError`` for missing binaries.

    ``prometheus_lifecycle`` adds ``--web.enable-lifecycle``: Prometheus then accepts
    ``POST /-/reload`` and ``/-/quit`` from anyone who can reach it, web pages included.
    ``slo_profile`` chooses the SLO rules Prometheus evaluates (``slo_profile.PROFILES``).
    """
    # Looked up first: without a collector nothing else is worth starting.
    binary = collector_binary()

    def write_configs() -> None:
        slo_profiles.write_config(state_dir, slo_profile)

    found = [
        # The stores first: the collector's exporters find them up from its start.
        trace_store(os.environ),
        log_store(state_dir, os.environ),
        collector("collector", binary, state_dir, COLLECTOR_PORTS, os.environ, _sampling_overlay()),
        prometheus(
            "prometheus",
            state_dir / slo_profiles.CONFIG_FILE,
            PROMETHEUS_PORT,
            state_dir,
            os.environ,
            lifecycle=prometheus_lifecycle,
            prepare=write_configs,
        ),
        alert_webhook(state_dir, os.environ),
        alertmanager(
            "alertmanager",
            # The shipped config, with the chosen SLO profile's timings.
            state_dir / slo_profiles.ALERTMANAGER_CONFIG_FILE,
            ALERTMANAGER_PORT,
            state_dir,
            os.environ,
            prepare=write_configs,
        ),
    ]
    if with_redis:
        apt = f"install it with `{INSTALL_HINT}`"
        password_file = state_dir / REDIS_PASSWORD_FILE
        found.append(
            Component(
                "redis",
                # Everything, the password included, comes from the generated config file.
                (
                    find_binary("TTBT5_REDIS_BIN", ("redis-server",), apt),
                    str(state_dir / REDIS_CONFIG_FILE),
                ),
                (REDIS_PORT,),
                # The probe reads the password from its file: stack.json holds no secret.
                f"redis://{HOST}:{REDIS_PORT}?"
                + urlencode({"password_file": str(password_file)}, safe="/"),
                {
                    "URL (password masked)": f"redis://:***@{HOST}:{REDIS_PORT}/0",
                    "password file": str(password_file),
                    "TTBT5_CACHE_REDIS_URL": (
                        f"redis://:$(cat {shlex.quote(str(password_file))})@{HOST}:{REDIS_PORT}/0"
                    ),
                },
                dict(os.environ),
                lambda: _write_redis_config(state_dir),
            )
        )
    return found


def load(state_dir: Path) -> dict[str, Record]:
    """The recorded components (empty when nothing is recorded)."""
    path = state_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {name: Record(**fields) for name, fields in raw["components"].items()}
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError) as exc:
        raise StackError(f"{path} is not a stack record ({exc}); remove it by hand") from None


def _save(state_dir: Path, records: Mapping[str, Record]) -> None:
    path = state_dir / STATE_FILE
    if not records:
        path.unlink(missing_ok=True)
        return
    body = {"components": {name: asdict(record) for name, record in records.items()}}
    write_private(path, json.dumps(body, indent=2) + "\n")


def _wait_ready(component: Component, proc: ProcessId, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not probe(component.ready):
        if not is_running(proc):
            problem = "exited during startup"
        elif time.monotonic() > deadline:
            problem = f"not ready after {timeout:.0f}s ({component.ready})"
        else:
            time.sleep(0.2)
            continue
        tail = log_tail(log) or "(empty)"
        raise StackError(f"{component.name} {problem}; last lines of {log}:\n{tail}")


def _settled_command_line(component: Component, proc: ProcessId) -> list[str]:
    """The command line of a component that answers its probe, to be recorded.

    Read once it is up, not at spawn: a wrapper script has exec'd its program by now, and
    the kernel may show an empty command line while an exec is still under way.
    """
    settled = command_line(proc.pid)
    if settled is None or not is_running(proc):
        raise StackError(f"{component.name} (pid {proc.pid}) exited once ready")
    return list(settled)


def _append_private(log: Path, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # logs of older versions were 0644
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _start(
    state_dir: Path,
    component: Component,
    records: dict[str, Record],
    started: list[str],
    timeout: float,
) -> ProcessId:
    """Start ``component``, record it (in ``records``, ``started`` and the state file), wait."""
    ensure_ports_free(component.name, component.ports, HOST)
    log = state_dir / f"{component.name}.log"
    # Data directory of the component (Redis refuses to start without it).
    (state_dir / component.name).mkdir(mode=0o700, exist_ok=True)
    if component.prepare is not None:
        component.prepare()
    # Logs are appended across restarts; the marker tells this run's lines apart.
    _append_private(log, f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {component.name}\n")
    proc = spawn_detached(component.argv, component.env, log)
    records[component.name] = Record(
        proc.pid,
        proc.start_time,
        list(component.argv),
        str(log),
        component.ready,
        dict(component.urls),
    )
    started.append(component.name)
    _save(state_dir, records)
    _wait_ready(component, proc, timeout, log)
    settled = _settled_command_line(component, proc)
    records[component.name] = replace(records[component.name], cmdline=settled)
    _save(state_dir, records)
    return proc


def up(
    state_dir: Path,
    *,
    with_redis: bool = False,
    prometheus_lifecycle: bool | None = None,
    timeout: float = 30.0,
    report: Callable[[str], None] = print,
    slo_profile: str | None = None,
    topology: str | None = None,
) -> dict[str, Record]:
    """Start every component that is not already running and wait until each is ready.

    Components recorded and still running are left alone, so running ``up`` again after
    one part died restarts only that part. On failure, the processes started by this call
    are stopped again and ``StackError`` quotes the failing component's log.

    ``prometheus_lifecycle`` (default: ``TTBT5_PROMETHEUS_LIFECYCLE``, else off) starts
    Prometheus with its HTTP lifecycle API; without it, ``reload`` (SIGHUP) reloads it.

    ``slo_profile`` (default: ``TTBT5_SLO_PROFILE``, else the profile the state directory
    last had, else standard) chooses the SLO rules; a running Prometheus is switched to it.

    ``topology`` (default: the one the state directory last ran, else single) is
    ``single`` or ``ha`` (``stack_ha``: every tier replicated, a Redis Cluster included).
    A running stack is never switched to the other topology: ``down`` it first.
    """
    if prometheus_lifecycle is None:
        prometheus_lifecycle = lifecycle_requested()
    requested = slo_profiles.requested_profile(slo_profile)
    _private_dir(state_dir)
    records = {n: r for n, r in load(state_dir).items() if is_running(r.process)}
    wanted = _plan(
        state_dir,
        _choose_topology(state_dir, topology, running=bool(records)),
        with_redis=with_redis,
        prometheus_lifecycle=prometheus_lifecycle,
        slo_profile=requested or slo_profiles.current_profile(state_dir),
    )
    started: list[str] = []
    try:
        for component in wanted:
            if component.name in records:
                report(f"{component.name}: already running (pid {records[component.name].pid})")
                continue
            proc = _start(state_dir, component, records, started, timeout)
            report(f"{component.name}: ready (pid {proc.pid}, log {records[component.name].log})")
        if requested is not None and set(records) - set(started):
            # Started ones read the new profile; switch (and reload) those already running.
            use_slo_profile(state_dir, requested, report)
        if current_topology(state_dir) == "ha":
            stack_ha.form_redis_cluster(
                state_dir, _created_redis_password(state_dir), report, max(timeout, 30.0)
            )
    except BaseException:
        # Started by this very call: pid and start time identify them, whatever they exec'd.
        stop([ProcessId(records[n].pid, records[n].start_time) for n in started], timeout=10.0)
        for name in started:
            del records[name]
        _save(state_dir, records)
        raise
    for name, record in records.items():
        for label, url in record.urls.items():
            report(f"  {name:<13} {label:<23} {url}")
    return records


def current_topology(state_dir: Path) -> str:
    """The topology ``state_dir`` last ran (single when it never ran one)."""
    try:
        found = (state_dir / stack_ha.TOPOLOGY_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return "single"
    return found if found in stack_ha.TOPOLOGIES else "single"


def _choose_topology(state_dir: Path, topology: str | None, *, running: bool) -> str:
    if topology is not None and topology not in stack_ha.TOPOLOGIES:
        raise StackError(
            f"--topology={topology!r}: expected one of {', '.join(stack_ha.TOPOLOGIES)}"
        )
    current = current_topology(state_dir)
    if topology is None or topology == current:
        return current
    if running:
        raise StackError(
            f"the stack in {state_dir} runs the {current} topology; `ttbt5-otel stack down` "
            f"before starting the {topology} one"
        )
    return topology


def _plan(
    state_dir: Path,
    topology: str,
    *,
    with_redis: bool,
    prometheus_lifecycle: bool,
    slo_profile: str,
) -> list[Component]:
    """The components of ``topology``, which is remembered as the state directory's."""
    if topology == "ha":
        wanted = stack_ha.components(
            state_dir,
            slo_profile=slo_profile,
            redis_password=lambda: _created_redis_password(state_dir),
            redis_password_file=state_dir / REDIS_PASSWORD_FILE,
            prometheus_lifecycle=prometheus_lifecycle,
        )
    else:
        wanted = components(
            state_dir,
            with_redis=with_redis,
            prometheus_lifecycle=prometheus_lifecycle,
            slo_profile=slo_profile,
        )
    slo_profiles.write_text_private(state_dir / stack_ha.TOPOLOGY_FILE, topology + "\n")
    return wanted


def _write_configs(state_dir: Path, profile: str) -> None:
    """Rewrite the Prometheus and Alertmanager configs of the stack's topology."""
    if current_topology(state_dir) == "ha":
        stack_ha.write_configs(state_dir, profile)
    else:
        slo_profiles.write_config(state_dir, profile)


def use_slo_profile(
    state_dir: Path, profile: str, report: Callable[[str], None] = print, timeout: float = 15.0
) -> None:
    """Make the stack's running Prometheus servers evaluate the SLO rules of ``profile``.

    Rewrites their configuration and reloads them and the Alertmanagers (SIGHUP) unless
    they already evaluate it; ``StackError`` when no Prometheus of this stack runs, or one
    that reads another file. In the HA topology, replicas that are down read the new
    configuration when they start again.
    """
    running = {name: r for name, r in load(state_dir).items() if is_running(r.process)}
    reloaded = {n: r for n, r in running.items() if n.startswith(("prometheus", "alertmanager"))}
    prometheuses = [r for n, r in reloaded.items() if n.startswith("prometheus")]
    if not prometheuses:
        raise StackError(f"no Prometheus of the stack in {state_dir} runs: `ttbt5-otel stack up`")
    if not all(
        any(arg.startswith(f"--config.file={state_dir}{os.sep}") for arg in record.argv)
        for record in reloaded.values()
    ):
        raise StackError(
            "the running Prometheus was started by an older ttbt5-otel and cannot switch SLO "
            "profiles: `ttbt5-otel stack down` and `ttbt5-otel stack up`"
        )
    urls = [r.urls["query API"].removesuffix("/api/v1/query") for r in prometheuses]
    if slo_profiles.current_profile(state_dir) == profile and all(
        slo_profiles.loaded_profile(url) == profile for url in urls
    ):
        return
    _write_configs(state_dir, profile)
    for name in reloaded:
        reload(state_dir, name)
    for url in urls:
        slo_profiles.wait_loaded(url, profile, timeout)
    windows = " (every window divided by 10)" if profile == "demo" else ""
    report(f"prometheus: now evaluates the {profile} SLO profile{windows}")


def status(state_dir: Path) -> list[Status]:
    """Running (same pid, start time and command line) and readiness of each component."""
    found = []
    for name, record in load(state_dir).items():
        running = is_running(record.process)
        found.append(Status(name, record, running, running and probe(record.ready)))
    return found


def _spare_impostors(
    records: Mapping[str, Record], report: Callable[[str], None]
) -> dict[str, Record]:
    """The records whose process is not someone else's; a message for each that is."""
    kept = {}
    for name, record in records.items():
        found = impostor(record.process)
        if found is None:
            kept[name] = record
            continue
        report(
            f"{name}: pid {record.pid} runs `{shlex.join(found)[:200]}`, not the recorded "
            f"`{shlex.join(record.process.cmdline or ())[:200]}`; not signalled, record dropped"
        )
    return kept


def down(
    state_dir: Path, *, timeout: float = 15.0, report: Callable[[str], None] = print
) -> dict[str, bool]:
    """Stop the recorded processes (SIGTERM, SIGKILL after ``timeout``); forget the record.

    A recorded pid whose process has the recorded start time but another command line is
    not the stack's (the record was edited or planted): it is spared, ``report`` says so,
    and its record is dropped with the others.

    Returns, per recorded component, whether it was still running and has been stopped.
    """
    records = load(state_dir)
    # Signalled in reverse start order, so Prometheus stops scraping first.
    ordered = dict(reversed(records.items()))
    ours = _spare_impostors(ordered, report)
    stopped = set(stop([record.process for record in ours.values()], timeout))
    _save(state_dir, {})
    return {name: record.process in stopped for name, record in ordered.items()}


def reload(state_dir: Path, name: str = "prometheus") -> None:
    """Make the recorded component ``name`` re-read its configuration (SIGHUP).

    Prometheus and Alertmanager reload on SIGHUP, which needs no HTTP lifecycle API.
    Raises ``StackError`` when ``name`` is not recorded, not running, or not the process
    that was recorded.
    """
    record = load(state_dir).get(name)
    if record is None:
        raise StackError(f"no {name} recorded in {state_dir}")
    found = impostor(record.process)
    if found is not None:
        raise StackError(
            f"{name}: pid {record.pid} runs `{shlex.join(found)[:200]}`, not the recorded "
            "command line; not signalled"
        )
    if not send_signal(record.process, signal.SIGHUP):
        raise StackError(f"{name} (pid {record.pid}) is not running")
