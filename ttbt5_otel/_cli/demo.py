"""An order service that uses every ttbt5_otel pattern, with a scripted incident.

    ttbt5-otel demo [--seconds 30] [--rate 40] [--seed 7]

It uses only the public API (``from ttbt5_otel import ...``), as an application would.

What it does: orders arrive at ``--rate`` per second for ``--seconds``. Each one is
validated, its product is read through a two-level cache (memory, plus Redis when one
answers on ``TTBT5_CACHE_REDIS_URL``; unset, the Redis of ``ttbt5-otel stack up
--with-redis``, with the password kept in its state directory) with a skewed product
popularity, stock is reserved and the card is charged through a retry around a circuit
breaker. The run follows a script:

* 0-25 %    normal traffic; a few payments fail once and succeed on retry;
* 25-55 %   the payment provider is down: calls fail, the breaker opens and rejects;
* 55-75 %   the provider is back: the breaker probes, then closes;
* 75-100 %  a catalogue re-index: product entries are invalidated over and over and traffic
            spreads over the whole catalogue, so the cache hit ratio collapses.

Telemetry goes over OTLP to the configured endpoint (``TTBT5_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``, 127.0.0.1:4317 by default) when a collector listens there
(``ttbt5-otel stack up``), else readable lines on standard error (console mode);
``TTBT5_EXPORTER`` overrides the choice. A progress line runs while it works and a summary
with where to look comes at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from ttbt5_otel import (
    ApplicationError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ErrorCategory,
    ErrorSeverity,
    HierarchicalCache,
    LifecycleHook,
    MemoryCache,
    RedisCache,
    ValidationError,
    Validator,
    application_lifecycle,
    cached,
    get_application_context,
    get_logger,
    handle_errors,
    log_calls,
    monitor_performance,
    retry,
    span,
    traced,
)
from ttbt5_otel._cache.redis_level import CLUSTER_SCHEME, cluster_url_options
from ttbt5_otel._cli.demo_incident import LEAD_S, LIMIT_S, RECOVERY_S, PageWatch
from ttbt5_otel._cli.demo_incident import prepare as prepare_incident
from ttbt5_otel._cli.stack import default_state_dir, redis_url
from ttbt5_otel._exceptions import StackError
from ttbt5_otel._sdk.checks import mask_url
from ttbt5_otel._sdk.config import resolve_config

SERVICE = "orders-demo"
PRODUCTS = 2_000
log = get_logger("orders")


def listening(host: str, port: int) -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------- the world
@dataclass
class World:
    """The simulated dependencies and what the run has seen so far."""

    rng: random.Random
    started: float = field(default_factory=time.monotonic)
    duration: float = 30.0
    stock: dict[int, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    product_calls: int = 0
    product_loads: int = 0
    transitions: list[str] = field(default_factory=list)
    watch: PageWatch | None = None
    """Set in incident mode: the outage lasts until it has seen a page."""

    def progress(self) -> float:
        return min(1.0, (time.monotonic() - self.started) / self.duration)

    def paged_for(self) -> float | None:
        """Seconds since the incident's page arrived (None before it, or without one)."""
        page = self.watch.page if self.watch is not None else None
        return None if page is None else time.monotonic() - page.at

    def finished(self) -> bool:
        paged_for = self.paged_for()
        return paged_for is not None and paged_for >= RECOVERY_S

    def phase(self) -> str:
        if self.watch is not None:
            if time.monotonic() - self.started < LEAD_S:
                return "normal"
            return "payment outage" if self.paged_for() is None else "recovery"
        share = self.progress()
        if share < 0.25:
            return "normal"
        if share < 0.55:
            return "payment outage"
        if share < 0.75:
            return "recovery"
        return "catalogue re-index"


world = World(rng=random.Random(7))


class CatalogueDatabase(LifecycleHook):
    """Opens and closes the (simulated) catalogue database."""

    name = "catalogue-db"

    async def on_startup(self) -> None:
        await asyncio.sleep(0.01)
        world.stock = dict.fromkeys(range(PRODUCTS), 1_000)
        log.info("catalogue database connected", products=PRODUCTS)

    async def on_shutdown(self) -> None:
        log.info("catalogue database closed")


def on_breaker_change(breaker: CircuitBreaker, old: CircuitState, new: CircuitState) -> None:
    world.transitions.append(f"{old.value}->{new.value}")
    del breaker


payments = CircuitBreaker(
    "payments", failure_threshold=5, recovery_timeout=2.0, on_state_change=on_breaker_change
)


# --------------------------------------------------------------------------- the service
def _first_node(url: str) -> tuple[str, int]:
    """Where to look for Redis: the server of a redis:// URL, a cluster's first node."""
    if urlsplit(url).scheme == CLUSTER_SCHEME:
        host, port = cluster_url_options(url)["startup_nodes"][0]
        return str(host), int(port)
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def build_cache() -> tuple[HierarchicalCache, str]:
    url = (
        os.environ.get("TTBT5_CACHE_REDIS_URL")
        # The local stack's Redis requires the password `stack up` generated.
        or redis_url(default_state_dir())
        or "redis://127.0.0.1:6379/0"
    )
    l1 = MemoryCache(300, strategy="lru")
    if listening(*_first_node(url)):
        l2 = RedisCache.from_url(url, namespace="orders-demo", timeout=0.2)
        return HierarchicalCache.from_levels(name="products", l1=l1, l2=l2, ttl=30), "memory+redis"
    return HierarchicalCache.from_levels(name="products", l1=l1, ttl=30), "memory"


products, cache_levels = build_cache()


@cached(products, ttl=30, tags=["catalogue"])
async def product(product_id: int) -> dict[str, Any]:
    """Read a product from the (slow) catalogue database."""
    world.product_loads += 1
    await asyncio.sleep(0.002)
    return {"id": product_id, "price": round(5 + (product_id % 97) * 0.5, 2)}


@retry(name="charge-card", attempts=3, backoff=(0.01, 0.05), on=ConnectionError)
@payments
@traced(name="payments.charge")
async def charge(order_id: str, amount: float) -> str:
    """Charge the card through the payment provider."""
    log.debug("charging card", order_id=order_id, amount=amount)
    await asyncio.sleep(0.001)
    phase = world.phase()
    if phase == "payment outage" or (phase == "normal" and world.rng.random() < 0.05):
        raise ConnectionError("payment provider unreachable")
    return f"pay-{order_id}"


class OutOfStockError(ApplicationError):
    """The product cannot be reserved: a business answer, not a failure of the service."""


@log_calls
def reserve(product_id: int, quantity: int) -> None:
    """Take ``quantity`` items of a product out of stock."""
    if world.rng.random() < 0.03:
        raise OutOfStockError(
            "product out of stock",
            severity=ErrorSeverity.MEDIUM,
            category=ErrorCategory.BUSINESS_LOGIC,
            context={"product_id": product_id},
            recovery_suggestions=["Offer a similar product", "Back-order the item"],
        )
    world.stock[product_id] -= quantity


def pick_product() -> int:
    if world.phase() == "catalogue re-index":
        return world.rng.randrange(PRODUCTS)
    # Popularity follows a power law: a few products get most of the traffic.
    return min(int(world.rng.paretovariate(1.2)) - 1, PRODUCTS - 1)


# Two kinds of "no": an order refused for a reason the customer is told (invalid quantity,
# out of stock) is a good answer, recorded on the span but not failing it; an order that
# cannot be served (the payment provider is down) fails its span, and counts against the
# service's availability SLO (dashboards/slos.yaml).
@handle_errors(fallback="failed")
@traced(name="place_order")
@monitor_performance(name="place_order")
@handle_errors(errors=(ValidationError, OutOfStockError), fallback="rejected")
async def place_order(order_id: str, product_id: int, quantity: int) -> str:
    """Validate, price, reserve and charge one order."""
    with log.contextualize(order_id=order_id):
        Validator.validate_range(quantity, min_value=1, max_value=10, field="quantity")
        world.product_calls += 1
        item = await product(product_id)
        with span("inventory.reserve", product_id=product_id):
            reserve(product_id, quantity)
        payment = await charge(order_id, item["price"] * quantity)
        log.info("order placed", payment=payment, amount=item["price"] * quantity)
        return "placed"


async def reindex_catalogue() -> None:
    """During the re-index phase, invalidate every catalogue entry twice a second."""
    while True:
        await asyncio.sleep(0.5)
        if world.phase() == "catalogue re-index":
            await products.invalidate_tags("catalogue")


# --------------------------------------------------------------------------- the run
def progress_line(elapsed: float) -> str:
    total = sum(world.outcomes.values())
    ratio = world.outcomes["failed"] / total if total else 0.0
    hits = 1 - world.product_loads / world.product_calls if world.product_calls else 0.0
    return (
        f"[{elapsed:5.1f}s] {world.phase():<19} orders {total:5d}  failed {ratio:6.1%}"
        f"  cache hit {hits:6.1%}  breaker {payments.state.value}"
    )


async def one_order(sequence: int) -> None:
    quantity = 0 if world.rng.random() < 0.04 else world.rng.randint(1, 3)
    outcome = await place_order(f"o-{sequence}", pick_product(), quantity)
    world.outcomes[outcome] += 1


async def run(seconds: float, rate: float) -> None:
    world.duration = seconds
    world.started = time.monotonic()
    reindex = asyncio.create_task(reindex_catalogue())
    in_flight: set[asyncio.Task[None]] = set()
    sequence = 0
    next_progress = 0.0
    interactive = sys.stdout.isatty()
    while (elapsed := time.monotonic() - world.started) < seconds and not world.finished():
        task = asyncio.create_task(one_order(sequence))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        sequence += 1
        if elapsed >= next_progress:
            line = progress_line(elapsed)
            print(f"\r{line}" if interactive else line, end="" if interactive else "\n", flush=True)
            next_progress += 1.0
        await asyncio.sleep(1.0 / rate)
    await asyncio.gather(*in_flight)
    reindex.cancel()
    if interactive:
        print()


def summary(seconds: float, exporter: str) -> dict[str, Any]:
    total = sum(world.outcomes.values())
    failed = world.outcomes["failed"]
    return {
        "service": SERVICE,
        "seconds": round(seconds, 1),
        "orders": total,
        "placed": world.outcomes["placed"],
        "rejected": world.outcomes["rejected"],
        "failed": failed,
        "error_ratio": round(failed / total, 4) if total else 0.0,
        "cache_hit_ratio": round(1 - world.product_loads / world.product_calls, 4)
        if world.product_calls
        else 0.0,
        "cache_levels": cache_levels,
        "breaker_transitions": world.transitions,
        "exporter": exporter,
    }


def print_summary(result: dict[str, Any]) -> None:
    print()
    print(f"Demo summary ({result['seconds']} s, service {result['service']})")
    print(f"  orders            {result['orders']} (placed {result['placed']}, "
          f"rejected {result['rejected']})")  # fmt: skip
    print(f"  error ratio       {result['error_ratio']:.1%}")
    print(f"  cache hit ratio   {result['cache_hit_ratio']:.1%} ({result['cache_levels']})")
    transitions = ", ".join(result["breaker_transitions"]) or "none"
    print(f"  breaker payments  {transitions}")
    if "page" in result:
        page = result["page"]
        print(
            f"  page              {page['alertname']} ({page['service']}, {page['slo']} SLO) "
            f"delivered {page['after_seconds']} s after the start; `ttbt5-otel alerts` lists it"
            if page
            else "  page              none arrived: see http://127.0.0.1:9090/classic/alerts"
        )
    if result["exporter"] == "otlp":
        print(f"  telemetry         OTLP to {result['endpoint']}")
        print("  look at           Prometheus   http://127.0.0.1:9090/classic/graph")
        print("                    alerts       http://127.0.0.1:9090/classic/alerts")
        print("                    Alertmanager http://127.0.0.1:9093")
        print(f"                    failed requests: ttbt5-otel traces --service "
              f"{result['service']} --errors --since 10m")  # fmt: skip
        print("                    one of them:     ttbt5-otel trace <trace id>")
        print("                    traces       http://127.0.0.1:16686/api/traces"
              f"?service={result['service']}")  # fmt: skip
        print("                    logs         http://127.0.0.1:9428/select/vmui/")
        print("                    Grafana      http://localhost:3000 (with docker compose)")
    else:
        print(f"  telemetry         {result['exporter']} (start the local stack with "
              "'ttbt5-otel stack up' to send it to Prometheus)")  # fmt: skip
    print("SUMMARY " + json.dumps(result))


def choose_exporter(endpoint: str) -> Literal["otlp", "console", "none"]:
    """``TTBT5_EXPORTER`` if set, else OTLP when ``endpoint`` listens, else the console."""
    chosen = os.environ.get("TTBT5_EXPORTER", "").strip().lower()
    if chosen in ("otlp", "console", "none"):
        return cast('Literal["otlp", "console", "none"]', chosen)
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return "otlp" if listening(parts.hostname or "127.0.0.1", port) else "console"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"length of the run (default 30; with --incident the most it waits for the page, "
        f"default {LIMIT_S:.0f})",
    )
    parser.add_argument("--rate", type=float, default=40.0, help="orders per second")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--incident",
        action="store_true",
        help="against the local stack: switch it to the demo SLO profile, fail the payment "
        f"provider after {LEAD_S:.0f} s until a burn-rate page arrives at the stack's webhook, "
        "and show it; exit 1 when none arrives",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="the local stack's state (default: $TTBT5_STACK_DIR or ./.ttbt5-stack)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    seconds = args.seconds or (LIMIT_S if args.incident else 30.0)
    world.rng.seed(args.seed)
    # The endpoint init() will use: TTBT5_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, the
    # config file or the default, as for any app.
    endpoint = resolve_config({}).endpoint
    exporter = choose_exporter(endpoint)
    if args.incident:
        if exporter != "otlp":
            print(f"--incident needs the local stack (nothing listens on {mask_url(endpoint)}): "
                  "run `ttbt5-otel stack up` first", file=sys.stderr)  # fmt: skip
            return 1
        try:
            since, earlier_pages = prepare_incident(args.state_dir, SERVICE, print)
        except StackError as exc:
            print(f"--incident: {exc}", file=sys.stderr)
            return 1
        started = time.monotonic()  # a wait for an earlier run's page is not part of the run
        print(f"incident: normal traffic for {LEAD_S:.0f} s, then the payment provider fails "
              f"until a page arrives (at most {seconds:.0f} s)")  # fmt: skip
        world.watch = PageWatch(
            SERVICE, since, started, lambda line: print(line, flush=True), earlier_pages
        )
    # The terminal is for the progress line and the summary: log records (every one from INFO
    # up, failed orders included) go out as OTel logs, or as console-exporter lines.
    console = logging.StreamHandler()
    console.setLevel(logging.CRITICAL)
    logging.getLogger().addHandler(console)
    logging.getLogger().setLevel(logging.INFO)

    context = get_application_context()
    context.add_lifecycle_hook(CatalogueDatabase())
    context.add_health_check("catalogue-db", lambda: bool(world.stock))
    context.add_health_check("payments", lambda: payments.state is not CircuitState.OPEN)

    @application_lifecycle(
        service_name=SERVICE, exporter=exporter, metric_export_interval=2.0, service_version="1.0"
    )
    async def service() -> None:
        await run(seconds, args.rate)
        await context.health.run_once()

    asyncio.run(service())
    ran = time.monotonic() - world.started
    result = {**summary(ran, exporter), "endpoint": mask_url(endpoint)}
    if world.watch is not None:
        world.watch.stop()
        result["page"] = world.watch.page.summary() if world.watch.page else None
    print_summary(result)
    return 1 if world.watch is not None and world.watch.page is None else 0


# CircuitOpenError is named for readers following the flow: a rejected charge raises it
# inside place_order, where handle_errors turns it into a "rejected" order.
__all__ = ["CircuitOpenError", "main"]
