"""Spans/s through two gateway collectors against one, and what a span costs each tier.

For N in (1, 2) gateways, runs on loopback (free ports, temp dirs, everything stopped on exit):

- a sink: a ttbt5-otelcol with an OTLP/gRPC receiver and a near-silent ``debug`` exporter,
  standing in for the trace store;
- N gateways, ``--config collector/gateway.yaml`` (tail sampling at 100 %, a 1 s decision
  wait, the persistent queue in a temp dir), exporting to the sink;
- one agent, ``--config otel-collector.yaml --config collector/agent-to-gateways.yaml``
  (masking, span metrics, ``load_balancing`` by trace id to the N gateways);
- ``--senders`` processes POSTing pre-encoded OTLP/HTTP protobuf requests (100 traces of 5
  spans each, fresh random trace ids in every request) to the agent as fast as it accepts,
  over keep-alive connections, for ``--seconds``.

Measured over the steady window (after a 3 s warm-up): spans/s the gateways accepted and the
sink received, CPU seconds of every process (hence spans per gateway CPU-second, the
capacity figure, and agent CPU per span), refused and failed spans at every tier, payload
bytes per span, and each gateway's RSS at the end of the load. After the load, what the
agent accepted is followed to the sink (up to 30 s) to show nothing was lost on the way.

    python benchmarks/bench_gateways.py [--seconds 20] [--quick] [--senders 2] [--rounds 1]
    python benchmarks/bench_gateways.py --prometheus http://127.0.0.1:9090

``--quick``: 5 s per configuration, a smoke run. ``--rounds R`` runs each configuration R
times, interleaved, and keeps the round other processes disturbed least (the CPU they used
is printed; on a shared machine it decides spans/s, not the per-CPU figures). Exits 1 if a
process died or no span reached the sink. ``--prometheus URL`` prints only a Prometheus
server's series capacity (head series, resident memory, bytes per head series, from its own
/metrics). Needs ``bash collector/build.sh``.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

REPO = Path(__file__).resolve().parents[1]
BINARY = REPO / "collector" / "_build" / "ttbt5-otelcol"
GATEWAY_CONFIG = REPO / "collector" / "gateway.yaml"
AGENT_CONFIGS = (REPO / "otel-collector.yaml", REPO / "collector" / "agent-to-gateways.yaml")

TRACES_PER_REQUEST = 100
SPANS_PER_TRACE = 5
PAYLOADS = 300
WARMUP_S = 3.0
DRAIN_S = 30.0
HEALTH_TIMEOUT_S = 30.0
BUSY = "machine busy"  # CPU seconds the whole machine spent outside idle

# Failure counters, summed over every series of the name (all tiers expose the same names).
FAILURE_METRICS = (
    "otelcol_receiver_refused_spans",
    "otelcol_receiver_failed_spans",
    "otelcol_exporter_send_failed_spans",
    "otelcol_exporter_enqueue_failed_spans",
    "otelcol_processor_refused_spans",
    "otelcol_processor_dropped_spans",
    "otelcol_processor_memory_limiter_refused_spans",
    "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early",
)

SINK_CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        max_recv_msg_size_mib: 64
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 100000
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: warn
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {telemetry}
                without_scope_info: true
                without_units: true
                without_type_suffix: true
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"""


# --- payloads ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """One encoded ExportTraceServiceRequest and where each trace's id sits in it."""

    body: bytes
    spans: int
    trace_offsets: tuple[tuple[int, ...], ...]

    def fresh(self) -> bytearray:
        """The request with a new random id for every trace (same id for its spans)."""
        buf = bytearray(self.body)
        ids = os.urandom(16 * len(self.trace_offsets))
        for n, offsets in enumerate(self.trace_offsets):
            trace_id = ids[16 * n : 16 * n + 16]
            for offset in offsets:
                buf[offset : offset + 16] = trace_id
        return buf


SERVICES = {
    "orders": ["/api/orders", "/api/orders/{id}", "/api/orders/{id}/items", "/healthz"],
    "checkout": ["/api/checkout", "/api/checkout/{id}/confirm", "/api/cart/{id}"],
    "catalog": ["/api/products", "/api/products/{id}", "/api/search", "/api/categories"],
    "accounts": ["/api/users/{id}", "/api/users/{id}/preferences", "/api/sessions"],
}
AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0",
    "python-requests/2.32.3",
    "okhttp/4.12.0",
)


def _attrs(target: Any, values: dict[str, str | int | bool]) -> None:
    for key, value in values.items():
        if isinstance(value, bool):
            target.add(key=key, value=AnyValue(bool_value=value))
        elif isinstance(value, int):
            target.add(key=key, value=AnyValue(int_value=value))
        else:
            target.add(key=key, value=AnyValue(string_value=value))


def _trace(spans: Any, rng: random.Random, service: str, trace_id: bytes, now_ns: int) -> None:
    """A request trace: server span, cache lookup, query, downstream call, rendering."""
    route = rng.choice(SERVICES[service])
    method = "GET" if rng.random() < 0.7 else rng.choice(["POST", "PUT", "DELETE"])
    failed = rng.random() < 0.02
    slow = rng.random() < 0.01
    status_code = 500 if failed else rng.choice([200, 200, 200, 200, 201, 204, 404])
    duration = rng.randint(1_200, 2_500) * 1_000_000 if slow else rng.randint(2, 180) * 1_000_000
    start = now_ns - rng.randint(0, 60_000) * 1_000_000
    ids = [rng.randbytes(8) for _ in range(SPANS_PER_TRACE)]
    path = route.replace("{id}", str(rng.randint(1, 10**6)))

    def span(n: int, name: str, kind: Span.SpanKind.ValueType, begin: int, length: int) -> Span:
        s: Span = spans.add()
        s.trace_id = trace_id
        s.span_id = ids[n]
        if n:
            s.parent_span_id = ids[0]
        s.name = name
        s.kind = kind
        s.start_time_unix_nano = begin
        s.end_time_unix_nano = begin + length
        return s

    root = span(0, f"{method} {route}", Span.SPAN_KIND_SERVER, start, duration)
    _attrs(
        root.attributes,
        {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status_code,
            "url.path": path,
            "url.scheme": "https",
            "server.address": f"{service}.internal",
            "server.port": 8080,
            "client.address": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 9)}",
            "user_agent.original": rng.choice(AGENTS),
            "network.protocol.version": "1.1",
            "ttbt5.entry": True,
        },
    )
    if failed:
        root.status.code = Status.STATUS_CODE_ERROR
        root.status.message = "upstream payment service returned 503"
    cache = span(1, "cache.get", Span.SPAN_KIND_INTERNAL, start + 200_000, 150_000)
    _attrs(
        cache.attributes,
        {"cache.name": f"{service}-l1", "cache.result": rng.choice(["hit", "miss"])},
    )
    query = span(2, f"SELECT {service}", Span.SPAN_KIND_CLIENT, start + 500_000, duration // 3)
    _attrs(
        query.attributes,
        {
            "db.system.name": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": "SELECT",
            "db.collection.name": service,
            "db.query.text": f"SELECT id, status, total, updated_at FROM {service} WHERE id = $1",
            "server.address": "db.internal",
        },
    )
    call = span(3, "POST", Span.SPAN_KIND_CLIENT, start + duration // 2, duration // 3)
    _attrs(
        call.attributes,
        {
            "http.request.method": "POST",
            "url.full": "https://payments.internal/v1/authorizations",
            "server.address": "payments.internal",
            "http.response.status_code": 503 if failed else 200,
        },
    )
    if failed:
        call.status.code = Status.STATUS_CODE_ERROR
        event = call.events.add(name="exception", time_unix_nano=start + duration - 1_000_000)
        _attrs(
            event.attributes,
            {
                "exception.type": "httpx.HTTPStatusError",
                "exception.message": "Server error '503 Service Unavailable'",
                "exception.stacktrace": 'Traceback (most recent call last):\n  File "app.py", '
                "line 42, in authorize\n    response.raise_for_status()\nhttpx.HTTPStatusError",
            },
        )
    render = span(4, "render", Span.SPAN_KIND_INTERNAL, start + duration - 900_000, 800_000)
    _attrs(render.attributes, {"template": f"{service}/detail.html", "items": rng.randint(0, 40)})


def make_payloads(count: int, seed: int = 5) -> list[Payload]:
    """``count`` distinct requests, each one service's batch of 100 five-span traces."""
    rng = random.Random(seed)
    now_ns = time.time_ns()
    found = []
    for n in range(count):
        service = list(SERVICES)[n % len(SERVICES)]
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        _attrs(
            resource_spans.resource.attributes,
            {
                "service.name": service,
                "service.namespace": "shop",
                "service.version": "2.14.1",
                "service.instance.id": str(uuid.UUID(int=rng.getrandbits(128))),
                "deployment.environment.name": "production",
                "host.name": f"node-{rng.randint(1, 40):02d}",
                "telemetry.sdk.name": "opentelemetry",
                "telemetry.sdk.language": "python",
                "telemetry.sdk.version": "1.39.1",
                "process.pid": rng.randint(100, 60_000),
            },
        )
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "ttbt5_otel"
        scope_spans.scope.version = "0.1.0"
        trace_ids = [rng.randbytes(16) for _ in range(TRACES_PER_REQUEST)]
        for trace_id in trace_ids:
            _trace(scope_spans.spans, rng, service, trace_id, now_ns)
        body = request.SerializeToString()
        offsets = []
        for trace_id in trace_ids:
            at = list(_find_all(body, trace_id))
            assert len(at) == SPANS_PER_TRACE, "a trace id is not where it should be"
            offsets.append(tuple(at))
        found.append(Payload(body, TRACES_PER_REQUEST * SPANS_PER_TRACE, tuple(offsets)))
    return found


def _find_all(body: bytes, needle: bytes) -> Iterator[int]:
    at = body.find(needle)
    while at >= 0:
        yield at
        at = body.find(needle, at + 1)


# --- senders ----------------------------------------------------------------------------

# Per sender, in a shared array: requests, spans sent, spans accepted (HTTP 200), bytes sent,
# requests answered with another status, connection errors.
FIELDS = ("requests", "spans_sent", "spans_accepted", "bytes", "non_200", "errors")


def _sender(
    index: int,
    port: int,
    payloads: Sequence[Payload],
    stop_at: float,
    counters: SynchronizedArray[Any],
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    base = index * len(FIELDS)
    headers = {"Content-Type": "application/x-protobuf"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = index * 7919
    while time.monotonic() < stop_at:
        payload = payloads[n % len(payloads)]
        n += 1
        body = payload.fresh()
        try:
            conn.request("POST", "/v1/traces", body, headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            counters[base + 5] += 1
            time.sleep(0.05)
            continue
        counters[base + 0] += 1
        counters[base + 1] += payload.spans
        counters[base + 3] += len(body)
        if response.status == 200:
            counters[base + 2] += payload.spans
        else:
            counters[base + 4] += 1
            time.sleep(0.01)  # refused: the agent is full, do not spin
    conn.close()


# --- processes --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DiedError(RuntimeError):
    """A process of the rig exited while it should have been running."""


@dataclass
class Collector:
    """One ttbt5-otelcol process of the rig."""

    name: str
    role: str  # sink, gateway, agent
    configs: list[Path]
    env: dict[str, str]
    log: Path
    health: int
    telemetry: int
    ingest: int = 0  # the agent's OTLP/HTTP port
    process: subprocess.Popen[bytes] | None = None
    ps: psutil.Process | None = None

    def start(self) -> None:
        command = [str(BINARY)]
        for config in self.configs:
            command += ["--config", str(config)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.ps = psutil.Process(self.process.pid)

    def check(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise DiedError(f"{self.name} exited with {self.process.returncode}\n{self.tail()}")

    def healthy(self) -> bool:
        self.check()
        try:
            url = f"http://127.0.0.1:{self.health}/"
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def metrics(self) -> dict[str, float]:
        return scrape(f"http://127.0.0.1:{self.telemetry}/metrics")

    def cpu(self) -> float:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def scrape(url: str) -> dict[str, float]:
    """A Prometheus text page, each metric name summed over its series."""
    with urllib.request.urlopen(url, timeout=5) as response:
        page = response.read().decode()
    sums: dict[str, float] = {}
    for line in page.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        try:
            value = float(line.rsplit(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        sums[name] = sums.get(name, 0.0) + value
    return sums


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TTBT5_", "OTEL_"))}
    env.update(extra)
    return env


def build_rig(gateways: int, work: Path) -> tuple[Collector, list[Collector], Collector]:
    """The sink, the gateways and the agent (not started), each on free ports."""
    sink_grpc = free_port()
    sink_dir = work / "sink"
    sink_dir.mkdir()
    sink_health, sink_telemetry = free_port(), free_port()
    config = sink_dir / "sink.yaml"
    config.write_text(
        SINK_CONFIG.format(grpc=sink_grpc, health=sink_health, telemetry=sink_telemetry)
    )
    sink = Collector(
        "sink", "sink", [config], _clean_env(), sink_dir / "log", sink_health, sink_telemetry
    )
    found = []
    endpoints = []
    for n in range(gateways):
        grpc, health, telemetry = free_port(), free_port(), free_port()
        directory = work / f"gateway-{n + 1}"
        directory.mkdir()
        env = _clean_env(
            TTBT5_GATEWAY_HOST="127.0.0.1",
            TTBT5_GATEWAY_OTLP_GRPC_PORT=str(grpc),
            TTBT5_GATEWAY_HEALTH_PORT=str(health),
            TTBT5_GATEWAY_TELEMETRY_PORT=str(telemetry),
            TTBT5_GATEWAY_QUEUE_DIR=str(directory / "queue"),
            TTBT5_TRACES_BACKEND_ENDPOINT=f"127.0.0.1:{sink_grpc}",
            TTBT5_LOGS_BACKEND_ENDPOINT=f"http://127.0.0.1:{free_port()}",
            TTBT5_TRACE_SAMPLING_PERCENT="100",
            TTBT5_TRACE_SAMPLING_DECISION_WAIT="1s",
        )
        found.append(
            Collector(
                f"gateway-{n + 1}",
                "gateway",
                [GATEWAY_CONFIG],
                env,
                directory / "log",
                health,
                telemetry,
            )
        )
        endpoints.append(f"127.0.0.1:{grpc}")
    directory = work / "agent"
    directory.mkdir()
    ports = {k: free_port() for k in ("grpc", "http", "prometheus", "telemetry", "health")}
    env = _clean_env(
        TTBT5_COLLECTOR_HOST="127.0.0.1",
        TTBT5_COLLECTOR_OTLP_GRPC_PORT=str(ports["grpc"]),
        TTBT5_COLLECTOR_OTLP_HTTP_PORT=str(ports["http"]),
        TTBT5_COLLECTOR_PROMETHEUS_PORT=str(ports["prometheus"]),
        TTBT5_COLLECTOR_TELEMETRY_PORT=str(ports["telemetry"]),
        TTBT5_COLLECTOR_HEALTH_PORT=str(ports["health"]),
        TTBT5_COLLECTOR_QUEUE_DIR=str(directory / "queue"),
        TTBT5_TRACES_BACKEND_ENDPOINT=f"127.0.0.1:{free_port()}",
        TTBT5_LOGS_BACKEND_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        TTBT5_GATEWAY_ENDPOINTS="[" + ", ".join(endpoints) + "]",
    )
    agent = Collector(
        "agent",
        "agent",
        list(AGENT_CONFIGS),
        env,
        directory / "log",
        ports["health"],
        ports["telemetry"],
        ingest=ports["http"],
    )
    return sink, found, agent


@contextmanager
def running(collectors: list[Collector]) -> Iterator[None]:
    """Start ``collectors`` in order, each healthy before the next; stop them all on exit."""
    try:
        for collector in collectors:
            collector.start()
            deadline = time.monotonic() + HEALTH_TIMEOUT_S
            while not collector.healthy():
                if time.monotonic() > deadline:
                    raise DiedError(f"{collector.name} not healthy after {HEALTH_TIMEOUT_S:.0f} s")
                time.sleep(0.1)
        yield
    finally:
        stop([c.process for c in collectors if c.process is not None])


def stop(
    processes: Sequence[subprocess.Popen[bytes] | multiprocessing.process.BaseProcess],
) -> None:
    """SIGTERM every process still running, then wait; SIGKILL those alive after 15 s."""
    for process in processes:
        if _alive(process):
            process.terminate()
    deadline = time.monotonic() + 15
    for process in processes:
        remaining = max(0.1, deadline - time.monotonic())
        if isinstance(process, subprocess.Popen):
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        else:
            process.join(remaining)
            if process.is_alive():
                process.kill()
                process.join(10)


def _alive(process: subprocess.Popen[bytes] | multiprocessing.process.BaseProcess) -> bool:
    if isinstance(process, subprocess.Popen):
        return process.poll() is None
    return process.is_alive()


# --- one configuration ------------------------------------------------------------------


@dataclass
class Snapshot:
    """Counters of every process at one moment."""

    at: float
    metrics: dict[str, dict[str, float]]
    cpu: dict[str, float]
    senders: list[float]


def snapshot(
    collectors: list[Collector],
    senders: list[multiprocessing.process.BaseProcess],
    counters: SynchronizedArray[Any],
) -> Snapshot:
    at = time.monotonic()
    cpu = {c.name: c.cpu() for c in collectors}
    sender_cpu = 0.0
    for process in senders:
        try:
            times = psutil.Process(process.pid).cpu_times()
            sender_cpu += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    cpu["senders"] = sender_cpu
    own = psutil.Process().cpu_times()
    cpu["this script"] = own.user + own.system
    everything = psutil.cpu_times()
    # Steal counts as busy: time the hypervisor gave to another machine is not ours either.
    cpu[BUSY] = sum(
        getattr(everything, name, 0.0)
        for name in ("user", "nice", "system", "irq", "softirq", "steal")
    )
    values = list(counters[:])
    metrics = {c.name: c.metrics() for c in collectors}
    return Snapshot((at + time.monotonic()) / 2, metrics, cpu, values)


@dataclass
class Result:
    """What one configuration measured."""

    gateways: int
    window_s: float
    gateway_spans_s: float
    sink_spans_s: float
    agent_spans_s: float
    sender_spans_s: float
    gateway_cpu_s: float
    agent_cpu_s: float
    cpu_cores: dict[str, float]
    gateway_rss: list[int]
    sender_totals: dict[str, float]
    failures: dict[str, dict[str, float]]
    agent_accepted_total: float
    sink_total: float
    share: list[float] = field(default_factory=list)


def _sum(snap: Snapshot, role_names: list[str], metric: str) -> float:
    return sum(snap.metrics[name].get(metric, 0.0) for name in role_names)


def run(gateways: int, seconds: float, senders: int, payloads: list[Payload]) -> Result:
    """One configuration: start the rig, load it, measure the steady window, drain."""
    with tempfile.TemporaryDirectory(prefix="bench-gateways-") as tmp:
        sink, gws, agent = build_rig(gateways, Path(tmp))
        collectors = [sink, *gws, agent]
        names = [g.name for g in gws]
        context = multiprocessing.get_context("fork")  # payloads are shared copy-on-write
        counters = context.Array("d", senders * len(FIELDS), lock=False)
        with running(collectors):
            workers: list[multiprocessing.process.BaseProcess] = []
            try:
                started = time.monotonic()
                stop_at = started + seconds
                for index in range(senders):
                    worker: multiprocessing.process.BaseProcess = context.Process(
                        target=_sender,
                        args=(index, agent.ingest, payloads, stop_at, counters),
                        daemon=True,
                    )
                    worker.start()
                    workers.append(worker)
                _watch(collectors, workers, started + min(WARMUP_S, seconds / 2))
                first = snapshot(collectors, workers, counters)
                _watch(collectors, workers, stop_at - 0.25)
                last = snapshot(collectors, workers, counters)
                rss = [g.rss() for g in gws]
                for worker in workers:
                    worker.join(35)
                    if worker.exitcode != 0:
                        raise DiedError(f"sender {worker.name} exited with {worker.exitcode}")
                settled = _drain(collectors, sink, agent)
                for collector in collectors:
                    collector.check()
            finally:
                stop(workers)  # before the collectors: running() stops those on leaving
    window = last.at - first.at

    def rate(roles: list[str], metric: str) -> float:
        return (_sum(last, roles, metric) - _sum(first, roles, metric)) / window

    accepted = "otelcol_receiver_accepted_spans"
    gateway_cpu = sum(last.cpu[n] - first.cpu[n] for n in names)
    per_field = [
        sum(last.senders[i * len(FIELDS) + f] for i in range(senders)) for f in range(len(FIELDS))
    ]
    spans_field = FIELDS.index("spans_accepted")
    sender_rate = (
        sum(
            last.senders[i * len(FIELDS) + spans_field]
            - first.senders[i * len(FIELDS) + spans_field]
            for i in range(senders)
        )
        / window
    )
    return Result(
        gateways=gateways,
        window_s=window,
        gateway_spans_s=rate(names, accepted),
        sink_spans_s=rate(["sink"], accepted),
        agent_spans_s=rate(["agent"], accepted),
        sender_spans_s=sender_rate,
        gateway_cpu_s=gateway_cpu,
        agent_cpu_s=last.cpu["agent"] - first.cpu["agent"],
        cpu_cores=_cores(first, last, window),
        gateway_rss=rss,
        sender_totals=dict(zip(FIELDS, per_field, strict=True)),
        failures={
            name: {m: v for m in FAILURE_METRICS if (v := metrics.get(m, 0.0))}
            for name, metrics in settled.metrics.items()
        },
        agent_accepted_total=settled.metrics["agent"].get(accepted, 0.0),
        sink_total=settled.metrics["sink"].get(accepted, 0.0),
        share=[
            last.metrics[n].get(accepted, 0.0) - first.metrics[n].get(accepted, 0.0) for n in names
        ],
    )


def _cores(first: Snapshot, last: Snapshot, window: float) -> dict[str, float]:
    """CPU cores used in the window by each process of the rig, and by everything else."""
    cores = {k: (last.cpu[k] - first.cpu[k]) / window for k in last.cpu if k != BUSY}
    busy = (last.cpu[BUSY] - first.cpu[BUSY]) / window
    cores["other processes"] = max(0.0, busy - sum(cores.values()))
    return cores


def _watch(
    collectors: list[Collector], workers: list[multiprocessing.process.BaseProcess], until: float
) -> None:
    """Sleep until ``until``, checking every process stays up."""
    while (left := until - time.monotonic()) > 0:
        for collector in collectors:
            collector.check()
        for worker in workers:
            if not worker.is_alive() and worker.exitcode != 0:
                raise DiedError(f"sender {worker.name} exited with {worker.exitcode}")
        time.sleep(min(0.5, left))


def _drain(collectors: list[Collector], sink: Collector, agent: Collector) -> Snapshot:
    """Wait until the sink holds every span the agent accepted (or stops gaining), then read."""
    deadline = time.monotonic() + DRAIN_S
    accepted = "otelcol_receiver_accepted_spans"
    last_seen, still_since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        for collector in collectors:
            collector.check()
        got, want = sink.metrics().get(accepted, 0.0), agent.metrics().get(accepted, 0.0)
        if got >= want:
            break
        if got > last_seen:
            last_seen, still_since = got, time.monotonic()
        elif time.monotonic() - still_since > 5:
            break
        time.sleep(0.5)
    return Snapshot(time.monotonic(), {c.name: c.metrics() for c in collectors}, {}, [])


# --- report -----------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        version = subprocess.run(
            [str(BINARY), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except OSError:
        version = "?"
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}; {version}"
    )


def _failures(result: Result) -> str:
    agent = sum(result.failures.get("agent", {}).values())
    gateways = sum(
        v for name, f in result.failures.items() if name.startswith("gateway") for v in f.values()
    )
    sink = sum(result.failures.get("sink", {}).values())
    refused_requests = result.sender_totals["non_200"] + result.sender_totals["errors"]
    return (
        f"{agent:.0f} / {gateways:.0f} / {sink:.0f} (HTTP refused/errors: {refused_requests:.0f})"
    )


def print_table(results: list[Result], bytes_per_span: float) -> None:
    print(
        "| N gateways | spans/s through gateways | spans per gateway CPU-second "
        "| gateway CPU cores used | agent CPU µs/span | bytes/span | gateway RSS MiB (each) "
        "| refused/failed spans agent / gateways / sink |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        per_cpu = r.gateway_spans_s * r.window_s / r.gateway_cpu_s if r.gateway_cpu_s else 0.0
        agent_us = r.agent_cpu_s / (r.agent_spans_s * r.window_s) * 1e6 if r.agent_spans_s else 0
        gateway_cores = r.gateway_cpu_s / r.window_s
        rss = ", ".join(f"{b / 2**20:.0f}" for b in r.gateway_rss)
        print(
            f"| {r.gateways} | {r.gateway_spans_s:,.0f} | {per_cpu:,.0f} | {gateway_cores:.2f} "
            f"| {agent_us:.1f} | {bytes_per_span:.0f} | {rss} | {_failures(r)} |"
        )
    if len(results) == 2 and results[0].gateway_spans_s:
        ratio = results[1].gateway_spans_s / results[0].gateway_spans_s
        print(f"\nspans/s through 2 gateways / through 1: {ratio:.2f}")
    for r in results:
        cores = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_cores.items())
        share = "/".join(f"{s / sum(r.share):.0%}" for s in r.share) if sum(r.share) else "-"
        print(
            f"N={r.gateways}, steady window {r.window_s:.1f} s: senders accepted "
            f"{r.sender_spans_s:,.0f} spans/s, agent accepted "
            f"{r.agent_spans_s:,.0f}, gateways {r.gateway_spans_s:,.0f} (split {share}), "
            f"sink {r.sink_spans_s:,.0f}; CPU cores: {cores}"
        )
        lost = r.agent_accepted_total - r.sink_total
        print(
            f"      whole run: agent accepted {r.agent_accepted_total:,.0f} spans, sink received "
            f"{r.sink_total:,.0f} after draining (missing {lost:,.0f}); sender requests "
            f"{r.sender_totals['requests']:,.0f}, non-200 {r.sender_totals['non_200']:,.0f}, "
            f"connection errors {r.sender_totals['errors']:,.0f}"
        )
        for name, found in r.failures.items():
            if found:
                print(f"      {name}: " + ", ".join(f"{k}={v:,.0f}" for k, v in found.items()))
        if r.cpu_cores["other processes"] > 0.2:
            print(
                f"      WARNING: other processes used {r.cpu_cores['other processes']:.2f} cores "
                "during the window; spans/s are lower than on an idle machine"
            )


# --- Prometheus ---------------------------------------------------------------------------


def prometheus_capacity(url: str) -> float:
    """Print a Prometheus server's head series, its RSS and bytes per series; return the last."""
    metrics = scrape(url.rstrip("/") + "/metrics")
    series = metrics.get("prometheus_tsdb_head_series", 0.0)
    rss = metrics.get("process_resident_memory_bytes", 0.0)
    per_series = rss / series if series else 0.0
    print(
        f"Prometheus {url}: {series:,.0f} head series, resident memory {rss / 2**20:,.0f} MiB, "
        f"{per_series:,.0f} bytes per head series (RSS / head series: includes the fixed cost, "
        "so it overstates the per-series cost of a small instance)"
    )
    return per_series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load per configuration")
    parser.add_argument("--quick", action="store_true", help="5 s per configuration")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--gateways", type=int, nargs="+", default=[1, 2], help="N to run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every N this many times, interleaved; keep the round least disturbed by "
        "other processes (for shared machines)",
    )
    parser.add_argument(
        "--prometheus", metavar="URL", help="only print this Prometheus server's series capacity"
    )
    args = parser.parse_args()
    if args.prometheus:
        prometheus_capacity(args.prometheus)
        return 0
    if not BINARY.exists():
        sys.exit(f"{BINARY} not found: run bash collector/build.sh")
    seconds = 5.0 if args.quick else args.seconds
    payloads = make_payloads(PAYLOADS)
    bytes_per_span = sum(len(p.body) for p in payloads) / sum(p.spans for p in payloads)
    print(f"# gateways benchmark: {machine()}")
    print(
        f"# load: {args.senders} sender processes, OTLP/HTTP protobuf, {TRACES_PER_REQUEST} "
        f"traces x {SPANS_PER_TRACE} spans per request, {seconds:.0f} s per configuration\n"
        f"# On this {os.cpu_count()}-core machine the senders, the agent, the gateways and the "
        "sink share the cores:\n# spans per gateway CPU-second is the capacity figure; the 2/1 "
        "ratio is bounded by the cores.\n"
    )
    runs: dict[int, list[Result]] = {n: [] for n in args.gateways}
    try:
        for _ in range(args.rounds):
            for n in args.gateways:
                runs[n].append(run(n, seconds, args.senders, payloads))
    except DiedError as error:
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    results = [min(runs[n], key=lambda r: r.cpu_cores["other processes"]) for n in runs]
    print_table(results, bytes_per_span)
    if args.rounds > 1:
        print("\nrounds (spans/s through gateways, other processes' CPU cores); kept the least")
        for n, found in runs.items():
            rounds = ", ".join(
                f"{r.gateway_spans_s:,.0f} ({r.cpu_cores['other processes']:.2f})" for r in found
            )
            print(f"N={n}: {rounds}")
    if any(r.sink_total == 0 for found in runs.values() for r in found):
        print("FAILED: no span reached the sink", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
