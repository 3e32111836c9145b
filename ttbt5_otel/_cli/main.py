"""The ``ttbt5-otel`` command.

Exit codes: 0 success; 1 the check or operation failed (collector not reachable, stack not
started or not healthy, trace not found, alert receiver not answering); 2 usage or
configuration error, and for ``traces`` and ``trace`` a trace or log store that cannot be
asked.

Each subcommand is registered by one ``_add_*`` function listed in ``_COMMANDS``; a new
subcommand is one more function there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

from ttbt5_otel._cli.alert_view import DEFAULT_URL as DEFAULT_ALERTS_URL
from ttbt5_otel._cli.alert_view import URL_ENV as ALERTS_ENV
from ttbt5_otel._cli.alert_view import (
    Notification,
    fetch_notifications,
    format_notification,
    printable,
    wait_for,
)
from ttbt5_otel._cli.doctor import describe_config, sampling_warning, send_test_span
from ttbt5_otel._cli.slo_profile import PROFILES, current_profile
from ttbt5_otel._cli.stack import current_topology, default_state_dir, down, status, up
from ttbt5_otel._cli.stack_ha import TOPOLOGIES
from ttbt5_otel._cli.trace_render import summary_line, trace_lines
from ttbt5_otel._cli.trace_view import (
    DEFAULT_JAEGER_URL,
    DEFAULT_LOGS_URL,
    DEFAULT_TIMEOUT,
    JAEGER_ENV,
    LOG_LIMIT,
    LOGS_ENV,
    StoreError,
    TraceNotFoundError,
    base_url,
    fetch_logs,
    fetch_trace,
    list_services,
    normalise_trace_id,
    parse_since,
    search_traces,
)
from ttbt5_otel._core.scrub import scrub_message
from ttbt5_otel._exceptions import ConfigError, StackError
from ttbt5_otel._sdk.checks import mask_url
from ttbt5_otel._sdk.config import resolve_config
from ttbt5_otel._sdk.config_file import file_telemetry
from ttbt5_otel._sdk.instrumentors import preview
from ttbt5_otel._version import __version__

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

if TYPE_CHECKING:
    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]  # noqa: SLF001
Handler: TypeAlias = Callable[[argparse.Namespace], int]


def _say(line: str) -> None:
    # Every line is masked: settings, and the SDK's and gRPC's errors quoted in verdicts.
    sys.stdout.write(scrub_message(line) + "\n")


def _err(message: str) -> None:
    sys.stderr.write(f"ttbt5-otel: {scrub_message(message)}\n")


# --- doctor


def _doctor(args: argparse.Namespace) -> int:
    try:
        # Resolved as init() resolves it, the config file included.
        config = resolve_config({}, os.environ, *file_telemetry(os.environ))
    except ConfigError as exc:
        _err(f"configuration error: {exc}")
        return EXIT_USAGE
    _say("Effective telemetry configuration:")
    for line in describe_config(config, os.environ):
        _say(line)
    warning = sampling_warning(config)
    if warning is not None:
        _say(warning)
    _say("Instrumentations init() activates (instrument, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS):")
    for item in preview(config.instrument, asyncio=config.instrument_asyncio):
        verdict = f"yes ({item.reason})" if item.status == "instrumented" else f"no: {item.reason}"
        _say(f"  {item.name:<25} {verdict}")
    where = f"collector at {mask_url(config.endpoint)} ({config.protocol})"
    if config.exporter != "otlp":
        _say(f"SKIP: exporter is {config.exporter!r}, so nothing is sent to a collector")
        return EXIT_OK
    started = time.monotonic()
    try:
        accepted, reason = send_test_span(config, args.timeout)
    except (OSError, ValueError) as exc:
        _err(f"configuration error: cannot build the OTLP exporter: {exc}")
        return EXIT_USAGE
    elapsed_ms = (time.monotonic() - started) * 1000
    if accepted:
        _say(f"OK: {where} accepted a test span ({elapsed_ms:.0f} ms)")
        return EXIT_OK
    _say(f"FAIL: {where} did not accept a test span: {reason}")
    return EXIT_FAILED


def _add_doctor(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="show the effective telemetry settings and send a test span to the collector",
        description="Resolve the settings init() would use (TTBT5_* and OTEL_* variables, "
        "secrets masked) and export one real span to the configured collector.",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        help="seconds to wait for the collector (default: 5)",
    )
    parser.set_defaults(handler=_doctor)


# --- stack


def _stack_up(args: argparse.Namespace) -> int:
    up(
        args.state_dir,
        with_redis=args.with_redis,
        prometheus_lifecycle=args.prometheus_lifecycle,
        timeout=args.timeout,
        report=_say,
        slo_profile=args.slo_profile,
        topology=args.topology,
    )
    _say(f"stack is up; state in {args.state_dir}; stop it with `ttbt5-otel stack down`")
    return EXIT_OK


def _stack_status(args: argparse.Namespace) -> int:
    found = status(args.state_dir)
    if not found:
        _say(f"no stack recorded in {args.state_dir}")
        return EXIT_FAILED
    for item in found:
        state = "running" if item.running else "gone"
        ready = "ready" if item.ready else "not ready"
        _say(f"{item.name:<16} {state:<8} {ready:<10} pid {item.record.pid}  {item.record.ready}")
        for label, url in item.record.urls.items():
            _say(f"    {label:<23} {url}")
    _say(f"topology: {current_topology(args.state_dir)} (`stack up --topology`)")
    _say(f"SLO rules: the {current_profile(args.state_dir)} profile (`stack up --slo-profile`)")
    return EXIT_OK if all(item.running and item.ready for item in found) else EXIT_FAILED


def _stack_down(args: argparse.Namespace) -> int:
    result = down(args.state_dir, timeout=args.timeout, report=_say)
    if not result:
        _say(f"nothing to stop: no stack recorded in {args.state_dir}")
    for name, stopped in result.items():
        _say(f"{name}: {'stopped' if stopped else 'was not running'}")
    return EXIT_OK


def _add_stack(subparsers: _Subparsers) -> None:
    stack = subparsers.add_parser(
        "stack",
        help="run the collector, Prometheus and Alertmanager locally (no Docker)",
        description="Start, inspect and stop a local stack on 127.0.0.1 with the configs "
        "shipped in the package. The collector is $TTBT5_COLLECTOR_BIN, a source checkout's "
        "build, or ttbt5-otelcol on PATH. Only processes recorded by `stack up` are stopped.",
    )
    actions = stack.add_subparsers(dest="action", required=True, metavar="{up,status,down}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--state-dir",
        type=lambda value: Path(value).absolute(),
        default=default_state_dir(),
        help="where pids, logs and data live (default: $TTBT5_STACK_DIR or ./.ttbt5-stack)",
    )
    start = actions.add_parser(
        "up",
        parents=[common],
        help="start what is not running and wait until it is ready",
        description="Start Jaeger, VictoriaLogs, the collector, Prometheus and Alertmanager "
        "(and Redis with "
        "--with-redis); components already running are kept.",
    )
    start.add_argument("--with-redis", action="store_true", help="also start redis-server")
    start.add_argument(
        "--prometheus-lifecycle",
        action="store_true",
        default=None,
        help="also enable Prometheus' HTTP /-/reload and /-/quit (any local web page can then "
        "stop it); without it, reload with SIGHUP",
    )
    start.add_argument(
        "--slo-profile",
        choices=PROFILES,
        help="SLO rules Prometheus evaluates: standard, or demo (every window divided by 10, "
        "so a demo incident pages within a minute); default $TTBT5_SLO_PROFILE, else the "
        "stack's last choice, else standard. A running Prometheus is switched",
    )
    start.add_argument(
        "--topology",
        choices=TOPOLOGIES,
        help="single (default: one process of each kind), or ha: 2 agents, 2 gateway "
        "collectors, 2 Prometheus with a Thanos query, 3 clustered Alertmanagers and a "
        "3-master Redis Cluster; default: the stack's last choice, else single",
    )
    start.add_argument(
        "--timeout", type=_positive_float, default=30.0, help="readiness timeout per component"
    )
    start.set_defaults(handler=_stack_up)
    show = actions.add_parser(
        "status",
        parents=[common],
        help="show whether each recorded component runs and answers",
        description="Exit 0 when every recorded component is running and ready, else 1.",
    )
    show.set_defaults(handler=_stack_status)
    stop = actions.add_parser(
        "down",
        parents=[common],
        help="stop exactly the processes `stack up` recorded",
        description="SIGTERM each recorded process, SIGKILL it after --timeout seconds.",
    )
    stop.add_argument(
        "--timeout", type=_positive_float, default=15.0, help="seconds before SIGKILL"
    )
    stop.set_defaults(handler=_stack_down)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return number


# --- demo


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the demo pulls in caching, resilience and the application context,
    # which the other commands never need.
    from ttbt5_otel._cli import demo  # noqa: PLC0415

    argv = ["--rate", str(args.rate), "--seed", str(args.seed), "--state-dir", str(args.state_dir)]
    if args.seconds is not None:
        argv += ["--seconds", str(args.seconds)]
    if args.incident:
        argv.append("--incident")
    return demo.main(argv)


def _add_demo(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the order-service demo (OTLP to the local stack if it is up, else console)",
        description="Run the order-service demo: an order flow with caching, "
        "retries, a circuit breaker, validation and a scripted incident. With --incident, "
        "against the local stack: the payment provider fails until Alertmanager delivers an "
        "error-budget page to the stack's webhook (within a minute, with the demo SLO profile "
        "it switches the stack to), and the page is shown as it arrives.",
    )
    parser.add_argument(
        "--seconds",
        type=_positive_float,
        help="length of the run (default 30; with --incident, the most it waits: 90)",
    )
    parser.add_argument("--rate", type=_positive_float, default=40.0, help="orders per second")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--incident",
        action="store_true",
        help="fail the payment provider until a burn-rate page arrives; exit 1 if none does",
    )
    parser.add_argument(
        "--state-dir",
        type=lambda value: Path(value).absolute(),
        default=default_state_dir(),
        help="the local stack's state (default: $TTBT5_STACK_DIR or ./.ttbt5-stack)",
    )
    parser.set_defaults(handler=_demo)


# --- traces and trace


def _store_url(flag: str | None, env_var: str, default: str) -> str:
    """The flag's URL, else the variable's, else ``default``; ValueError naming a bad one."""
    value = flag or os.environ.get(env_var) or default
    try:
        return base_url(value)
    except ValueError as exc:
        source = "the flag" if flag else env_var if os.environ.get(env_var) else "the default"
        raise ValueError(f"{exc} (from {source})") from None


def _traces(args: argparse.Namespace) -> int:
    try:
        jaeger = _store_url(args.jaeger_url, JAEGER_ENV, DEFAULT_JAEGER_URL)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    try:
        services = [args.service] if args.service else list_services(jaeger, args.timeout)
        if not services:
            _say(f"Jaeger at {mask_url(jaeger)} has no traces of any service yet")
            return EXIT_OK
        found = search_traces(
            jaeger,
            services=services,
            since_s=parse_since(args.since),
            limit=args.limit,
            errors_only=args.errors,
            timeout=args.timeout,
        )
    except StoreError as exc:
        _err(str(exc))
        return EXIT_USAGE
    for summary in found:
        _say(summary_line(summary))
    if not found:
        which = "traces with errors" if args.errors else "traces"
        of = args.service or ", ".join(services)
        _say(f"no {which} of {of} started in the last {args.since}")
    return EXIT_OK


def _trace(args: argparse.Namespace) -> int:
    try:
        trace_id = normalise_trace_id(args.id)
        jaeger = _store_url(args.jaeger_url, JAEGER_ENV, DEFAULT_JAEGER_URL)
        logs_url = _store_url(args.logs_url, LOGS_ENV, DEFAULT_LOGS_URL)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    try:
        trace = fetch_trace(jaeger, trace_id, args.timeout)
    except TraceNotFoundError:
        _err(f"trace {trace_id} not found in Jaeger at {mask_url(jaeger)}")
        return EXIT_FAILED
    except StoreError as exc:
        _err(str(exc))
        return EXIT_USAGE
    logs, failure = [], None
    if not args.no_logs:
        try:
            logs = fetch_logs(logs_url, trace, LOG_LIMIT, args.timeout)
        except StoreError as exc:
            # The spans are worth showing without their logs; the exit code still says.
            failure = f"{exc} (the trace is shown without its logs; --no-logs skips them)"
    for line in trace_lines(trace, logs, LOG_LIMIT if len(logs) >= LOG_LIMIT else None):
        _say(line)
    if failure:
        _err(failure)
        return EXIT_USAGE
    return EXIT_OK


def _since(value: str) -> str:
    # Checked here, converted by the handler, which also quotes it as typed.
    try:
        parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value.strip()


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return number


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jaeger-url",
        metavar="URL",
        help=f"Jaeger's query API (default: ${JAEGER_ENV} or {DEFAULT_JAEGER_URL})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds to wait for each answer (default: {DEFAULT_TIMEOUT:g})",
    )


def _add_traces(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "traces",
        help="list recent traces from Jaeger, one line each",
        description="One line per trace, newest first: start (UTC), trace id, root span "
        "(service), duration, span and error counts, and the first exception. Without "
        "--service every service Jaeger knows is searched.",
    )
    parser.add_argument("--service", help="only traces of this service.name")
    parser.add_argument(
        "--errors", action="store_true", help="only traces with a span whose status is ERROR"
    )
    parser.add_argument(
        "--since",
        type=_since,
        default="1h",
        help="how far back traces may start: 30s, 10m, 2h, 1d (default: 1h)",
    )
    parser.add_argument(
        "--limit", type=_positive_int, default=20, help="at most this many traces (default: 20)"
    )
    _store_options(parser)
    parser.set_defaults(handler=_traces)


def _add_trace(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="show one trace as a tree of spans with their exceptions and log records",
        description="Fetch the trace from Jaeger and its log records from VictoriaLogs; "
        "print the spans as a tree (children under parents, by start time) with each span's "
        "exceptions and log records. Exit 1 when Jaeger does not know the trace.",
    )
    parser.add_argument("id", metavar="ID", help="trace id: 1 to 32 hexadecimal digits")
    _store_options(parser)
    parser.add_argument(
        "--logs-url",
        metavar="URL",
        help=f"VictoriaLogs (default: ${LOGS_ENV} or {DEFAULT_LOGS_URL})",
    )
    parser.add_argument(
        "--no-logs", action="store_true", help="show the spans only; do not ask VictoriaLogs"
    )
    parser.set_defaults(handler=_trace)


# --- alerts


def _show_notification(notification: Notification, as_json: bool) -> None:
    if as_json:
        _say(json.dumps(notification))
        return
    alerts = notification.get("alerts")
    count = len(alerts) if isinstance(alerts, list) else 0
    received_at, receiver = notification.get("received_at"), notification.get("receiver")
    _say(
        f"{printable(received_at or '?')}  receiver {printable(receiver or '?')}"
        f", {count} alert{'' if count == 1 else 's'}"
    )
    for line in format_notification(notification):
        _say(f"  {line}")


def _alerts(args: argparse.Namespace) -> int:
    try:
        url = _store_url(args.url, ALERTS_ENV, DEFAULT_ALERTS_URL)
    except ValueError as exc:
        _err(str(exc))
        return EXIT_USAGE
    try:
        found = fetch_notifications(url, timeout=args.timeout)
        for notification in found:
            _show_notification(notification, args.json)
        if not found and not args.json:
            _say(f"no notifications received yet by {mask_url(url)}")
        if args.follow:
            since = found[-1].get("received_at") if found else None
            # Never matches: runs until Ctrl-C, printing each notification as it arrives.
            wait_for(
                lambda _alert, _notification: False,
                url,
                since,
                timeout=math.inf,
                poll=1.0,
                on_new=lambda notification: _show_notification(notification, args.json),
            )
    except StackError as exc:
        # main() prints it and exits 1.
        raise StackError(f"{exc} (`ttbt5-otel stack up` starts it)") from None
    return EXIT_OK


def _add_alerts(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="show the notifications Alertmanager delivered to the local stack's webhook",
        description="Print the notifications the stack's alert webhook receiver holds (the "
        "last 200, oldest first): per alert its status, severity, name, service and summary, "
        "and its runbook, traces, logs and dashboard links. Exit 1 when the receiver does "
        "not answer.",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help=f"the receiver (default: ${ALERTS_ENV} or {DEFAULT_ALERTS_URL})",
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep printing new notifications until Ctrl-C"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=2.0,
        help="seconds to wait for each answer (default: 2)",
    )
    parser.set_defaults(handler=_alerts)


_COMMANDS: Final[tuple[Callable[[_Subparsers], None], ...]] = (
    _add_doctor,
    _add_stack,
    _add_demo,
    _add_traces,
    _add_trace,
    _add_alerts,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ttbt5-otel", description="ttbt5-otel: check telemetry settings, run a local stack."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _COMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    except StackError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`ttbt5-otel traces | head`): stop quietly, and keep the
        # interpreter's final flush from raising the same error again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK
    return code
