"""Run by the interpreter of a fresh virtualenv holding the built wheel, outside the tree.

Exercises the installed package end to end: set-up, a span, a cache, a retry, a circuit
breaker, the optional Redis and disk levels' imports. Prints one ``ok`` line per check; any
failure is an exception and a non-zero exit.
"""

import asyncio
import pathlib
import sys
import tempfile

import ttbt5_otel

installed = pathlib.Path(ttbt5_otel.__file__).resolve()
assert "site-packages" in installed.parts, f"imported from the tree: {installed}"
print("ok import", installed.parent)

telemetry = ttbt5_otel.init(service_name="wheel-smoke", exporter="console", runtime_metrics=False)


@ttbt5_otel.traced
def add(a: int, b: int) -> int:
    return a + b


assert add(2, 3) == 5
print("ok traced")

cache = ttbt5_otel.HierarchicalCache.from_levels(name="smoke", l1=ttbt5_otel.MemoryCache(10))
loads: list[str] = []


@ttbt5_otel.cached(cache, ttl=60)
async def load(key: str) -> str:
    loads.append(key)
    return key.upper()


async def use_cache() -> None:
    assert await load("a") == "A"
    assert await load("a") == "A"


asyncio.run(use_cache())
assert loads == ["a"], loads
print("ok cached")

breaker = ttbt5_otel.CircuitBreaker("smoke", failure_threshold=1)
assert breaker.call(lambda: 7) == 7
print("ok breaker")

attempts: list[int] = []


@ttbt5_otel.retry(attempts=3, wait=None)
def flaky() -> str:
    attempts.append(1)
    if len(attempts) < 2:
        raise ConnectionError("once")
    return "done"


assert flaky() == "done"
print("ok retry")

if "--extras" in sys.argv:
    with tempfile.TemporaryDirectory() as folder:
        disk = ttbt5_otel.DiskCache(folder, name="smoke-disk")
        assert disk is not None
    ttbt5_otel.RedisCache(endpoint="127.0.0.1", port=6, name="smoke-redis")  # aiocache + redis
    print("ok extras")

telemetry.shutdown()
print("ok shutdown")
