"""Many concurrent callers of a ``cached`` function over a Redis L2, against a real Redis.

Starts its own ``redis-server`` on a free 127.0.0.1 port (stopped on exit), stores one entry
per caller, then runs ``--rounds`` bursts of ``--callers`` concurrent calls, each for a key
that is present, through a ``HierarchicalCache`` with only the Redis level (no L1, so every
call reaches Redis). A healthy Redis should answer every call: any call of the loader is a
fall-through. Printed per run: callers, fall-throughs, warnings (log records at INFO or
above from ``ttbt5_otel``), errors (the level's ``cache.result=error`` count), exceptions
raised into callers, p50/p99/max latency of one call and the wall time of the slowest burst
(of the whole run with ``--fault``).

``--fault stop`` (SIGSTOP, then SIGCONT) or ``--fault kill`` (SIGKILL, then a restart on the
same port) takes Redis away for ``--fault-seconds`` in the middle of a steady load instead,
and reports the same figures plus the slowest call and the outage log lines.

    python benchmarks/bench_redis_load.py [--callers 1000] [--rounds 5] [--timeout 0.5]
        [--pool N] [--pause 0.2] [--tags] [--fault stop|kill] [--fault-seconds 3]

Everything is bounded: Redis must answer PING within 10 s and the whole run is cancelled
after ``--budget`` seconds (default 120).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ttbt5_otel._cache import HierarchicalCache, RedisCache, cached

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", workdir]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not answers_ping(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_redis(proc)
            raise SystemExit(f"redis-server did not start on port {port}")
        time.sleep(0.02)
    return proc


def stop_redis(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class Records(logging.Handler):
    """Collects the log records of ``ttbt5_otel`` at INFO and above."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def captured_logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("ttbt5_otel")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class Load:
    """A cached function over a Redis-only cache, with what its callers saw."""

    def __init__(self, port: int, args: argparse.Namespace) -> None:
        options: dict[str, Any] = {"timeout": args.timeout}
        if args.pool is not None:
            options["pool_max_size"] = args.pool
        self.level = RedisCache(port=port, namespace="bench", **options)
        self.cache = HierarchicalCache("bench-load", l2=self.level, ttl=600, retry_interval=0.5)
        self.loads = 0
        self.exceptions = 0
        self.latencies: list[float] = []
        tags = (lambda n: [f"item:{n % 10}"]) if args.tags else ()

        @cached(self.cache, tags=tags)
        async def item(n: int) -> dict[str, int]:
            self.loads += 1
            return {"n": n}

        self.item = item

    async def call(self, n: int) -> None:
        started = time.perf_counter()
        try:
            await self.item(n)
        except Exception:
            self.exceptions += 1
        finally:
            self.latencies.append(time.perf_counter() - started)

    async def burst(self, callers: int) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(self.call(n) for n in range(callers)))
        return time.perf_counter() - started

    def reset(self) -> None:
        self.loads = self.exceptions = self.level.counts.errors = 0
        self.latencies.clear()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(label: str, load: Load, records: Records, callers: int, wall: float) -> None:
    ms = [value * 1000 for value in load.latencies]
    print(
        f"{label}: callers={callers} calls={len(ms)} fall-throughs={load.loads} "
        f"warnings={len(records.records)} "
        f"errors={load.level.counts.errors} exceptions={load.exceptions} "
        f"p50={statistics.median(ms):.1f}ms p99={percentile(ms, 0.99):.1f}ms "
        f"max={max(ms):.1f}ms wall={wall:.2f}s"
    )
    for record in records.records:
        print(f"    {record.levelname} {record.getMessage()}")


async def steady(args: argparse.Namespace, port: int, proc: list[subprocess.Popen[bytes]]) -> None:
    load = Load(port, args)
    try:
        for n in range(args.callers):  # store every entry, one at a time
            await load.item(n)
        if load.loads != args.callers or load.level.counts.errors:
            raise SystemExit("could not store the entries in Redis")
        load.reset()
        if args.fault is None:
            with captured_logs() as records:
                walls = []
                for _ in range(args.rounds):
                    walls.append(await load.burst(args.callers))
                    await asyncio.sleep(args.pause)  # spans the retry interval: flapping shows
            report("healthy", load, records, args.callers, max(walls))
            return
        with captured_logs() as records:
            started = time.perf_counter()
            fault = asyncio.create_task(inject(args, port, proc))
            while not fault.done():
                await load.burst(args.callers)
                await asyncio.sleep(0.05)
            await fault
            for _ in range(args.rounds):  # after recovery
                await asyncio.sleep(0.6)  # past the retry interval
                await load.burst(args.callers)
            wall = time.perf_counter() - started
        report(f"fault={args.fault}", load, records, args.callers, wall)
    finally:
        await load.cache.close()


async def inject(args: argparse.Namespace, port: int, proc: list[subprocess.Popen[bytes]]) -> None:
    await asyncio.sleep(0.5)
    if args.fault == "stop":
        os.kill(proc[0].pid, signal.SIGSTOP)
        await asyncio.sleep(args.fault_seconds)
        os.kill(proc[0].pid, signal.SIGCONT)
    else:
        proc[0].kill()
        proc[0].wait(timeout=5)
        await asyncio.sleep(args.fault_seconds)
        proc[0] = await asyncio.to_thread(start_redis, port, args.workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument(
        "--pool", type=int, default=None, help="pool_max_size (default: the level's)"
    )
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between bursts")
    parser.add_argument("--tags", action="store_true", help="each entry carries a tag")
    parser.add_argument("--fault", choices=("stop", "kill"), default=None)
    parser.add_argument("--fault-seconds", type=float, default=3.0)
    parser.add_argument("--budget", type=float, default=120.0)
    args = parser.parse_args()
    if not Path(REDIS_SERVER).exists():
        sys.exit("redis-server not found: install the Debian package redis-server")
    with tempfile.TemporaryDirectory() as workdir:
        args.workdir = workdir
        port = free_port()
        proc = [start_redis(port, workdir)]
        try:
            asyncio.run(asyncio.wait_for(steady(args, port, proc), args.budget))
        finally:
            stop_redis(proc[0])


if __name__ == "__main__":
    main()
