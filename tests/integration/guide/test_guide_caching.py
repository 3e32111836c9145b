"""The guide's caching example, unchanged but for its import prefix, exporting to OTLP.

``GUIDE_EXAMPLE`` is the "Usage Example" of section "3. Advanced Caching System" of the TTBT5
guide, copied verbatim except ``src.patterns`` -> ``ttbt5_otel.patterns``. It runs in a
child process that called ``ttbt5_otel.init()`` against a real OTLP/gRPC receiver. The
guide leaves some names undefined; the test supplies exactly these (``SUPPLIED``):

* ``DiskCacheBackend`` and ``CacheLevel``: used but missing from the guide's import line,
  imported from ``ttbt5_otel.patterns.caching``;
* ``ai_service``: a stub whose ``generate_response`` records each prompt;
* ``user_data``: a dict (used before the guide assigns it);
* ``cache_manager``: the application's own ``CacheManager``, here on the guide's disk
  directory ``./cache`` under ``cache.name=app``. Tag versions live in the shared level, so
  its ``invalidate_by_tags`` reaches the hierarchical cache's entries too, as it would from
  another process.

The example has top-level ``await``: it is compiled with ``PyCF_ALLOW_TOP_LEVEL_AWAIT``.
It only defines ``expensive_ai_operation``; the driver after it calls it twice (a miss, then
a hit), repeats the guide's tag invalidation, and calls it again (a miss again).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.loopback import clean_env
from tests.otlp_receiver import GrpcReceiver
from tests.redis_support import RedisServer
from ttbt5_otel.patterns.caching import (
    CacheLevel,
    CacheManager,
    DiskCacheBackend,
    HierarchicalCache,
    MemoryCacheBackend,
    RedisCacheBackend,
    cached,
)
from ttbt5_otel.testing import TelemetryCapture

pytestmark = pytest.mark.integration

GUIDE_EXAMPLE = """\
from ttbt5_otel.patterns.caching import (
    CacheManager, MemoryCacheBackend, HierarchicalCache, cached
)

# Setup hierarchical cache
memory_cache = CacheManager(MemoryCacheBackend(max_size=1000))
disk_cache = CacheManager(DiskCacheBackend(cache_dir="./cache"))

hierarchical = HierarchicalCache()
hierarchical.add_level(CacheLevel.L1_MEMORY, memory_cache)
hierarchical.add_level(CacheLevel.L2_DISK, disk_cache)

# Use caching decorator
@cached(ttl=300, tags={'ai_response'})
async def expensive_ai_operation(prompt: str) -> str:
    # Expensive operation that benefits from caching
    return await ai_service.generate_response(prompt)

# Manual cache operations
await cache_manager.set("user:123", user_data, ttl=3600)
user_data = await cache_manager.get("user:123")

# Cache invalidation by tags
await cache_manager.invalidate_by_tags({'ai_response'})
"""

SUPPLIED = """\
from ttbt5_otel.patterns.caching import CacheLevel, CacheManager, DiskCacheBackend


class AIService:
    def __init__(self):
        self.prompts = []

    async def generate_response(self, prompt):
        self.prompts.append(prompt)
        return f"answer to {prompt}"


def supplied():
    return {
        "DiskCacheBackend": DiskCacheBackend,
        "CacheLevel": CacheLevel,
        "ai_service": AIService(),
        "user_data": {"id": 123, "name": "Ada"},
        "cache_manager": CacheManager(DiskCacheBackend(cache_dir="./cache"), name="app"),
    }
"""

DRIVER = """\
import ast
import asyncio
import json

import ttbt5_otel

ttbt5_otel.init(service_name="guide-caching")


async def main():
    names = supplied()
    code = compile(GUIDE_EXAMPLE, "<guide>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    await eval(code, names)  # the example's top-level awaits make it a coroutine
    operation = names["expensive_ai_operation"]
    answers = [await operation("hi"), await operation("hi")]
    await names["cache_manager"].invalidate_by_tags({"ai_response"})
    answers.append(await operation("hi"))
    print(json.dumps({
        "answers": answers,
        "prompts": names["ai_service"].prompts,
        "user_data": names["user_data"],
    }))
    await names["hierarchical"].close()
    await names["cache_manager"].close()


asyncio.run(main())
ttbt5_otel.shutdown()
"""


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "guide_caching_app.py"
    script.write_text(
        f"GUIDE_EXAMPLE = {GUIDE_EXAMPLE!r}\n\n{SUPPLIED}\n\n{DRIVER}", encoding="utf-8"
    )
    return script


def _last_values(points: list[dict], name: str, outcome: str) -> dict[tuple[str, str, str], float]:
    """The last (cumulative) value of each ``cache.name``/``cache.level``/outcome series."""
    found: dict[tuple[str, str, str], float] = {}
    for point in points:
        if point["name"] == name:
            a = point["attributes"]
            found[(a["cache.name"], a["cache.level"], a[outcome])] = point["value"]
    return {key: value for key, value in found.items() if value}


def test_guide_caching_example_exports_cache_metrics(tmp_path: Path) -> None:
    """Miss, hit, and tag invalidation across memory and disk arrive as the native metrics."""
    with GrpcReceiver() as receiver:
        proc = subprocess.run(
            [sys.executable, str(_script(tmp_path))],
            env=clean_env(TTBT5_OTLP_ENDPOINT=receiver.endpoint),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        points = receiver.received.metric_points()

    assert result["answers"] == ["answer to hi"] * 3
    assert result["prompts"] == ["hi", "hi"]  # loaded, served from L1, loaded after invalidation
    assert result["user_data"] == {"id": 123, "name": "Ada"}
    assert (tmp_path / "cache").is_dir()

    assert _last_values(points, "ttbt5.cache.requests", "cache.result") == {
        ("default", "l1", "miss"): 2,
        ("default", "disk", "miss"): 2,
        ("default", "l1", "hit"): 1,
        ("app", "disk", "hit"): 1,  # cache_manager.get("user:123")
    }
    assert _last_values(points, "ttbt5.cache.evictions", "cache.eviction.reason") == {
        ("default", "l1", "invalidated"): 1,
        ("default", "disk", "invalidated"): 1,
    }
    requests = next(p for p in points if p["name"] == "ttbt5.cache.requests")
    assert requests["unit"] == "{request}"
    assert requests["resource"]["service.name"] == "guide-caching"
    entries = {
        (p["attributes"]["cache.name"], p["attributes"]["cache.level"])
        for p in points
        if p["name"] == "ttbt5.cache.entries"
    }
    assert {("default", "l1"), ("default", "disk"), ("app", "disk")} <= entries
    durations = {
        p["attributes"]["cache.operation"]
        for p in points
        if p["name"] == "ttbt5.cache.operation.duration" and p["attributes"]["cache.name"] == "app"
    }
    assert {"get", "set", "tag_bump"} <= durations


async def test_guide_distributed_levels_on_real_redis(
    redis_server: RedisServer, tmp_path: Path, capture_telemetry: TelemetryCapture
) -> None:
    """L1 memory, L2 Redis, L3 disk: back-fill, and invalidation from another manager."""
    url = f"redis://127.0.0.1:{redis_server.port}/0"
    hierarchical = HierarchicalCache("guide-redis")
    hierarchical.add_level(CacheLevel.L1_MEMORY, CacheManager(MemoryCacheBackend(max_size=10)))
    hierarchical.add_level(CacheLevel.L2_REDIS, CacheManager(RedisCacheBackend(url=url)))
    hierarchical.add_level(CacheLevel.L3_DISK, CacheManager(DiskCacheBackend(tmp_path / "c")))
    other = CacheManager(RedisCacheBackend(url=url), name="guide-redis-other")
    prompts: list[str] = []

    @cached(ttl=300, tags={"ai_response"}, cache=hierarchical)
    async def answer(prompt: str) -> str:
        prompts.append(prompt)
        return prompt[::-1]

    try:
        assert await answer("abc") == await answer("abc") == "cba"
        await other.invalidate_by_tags({"ai_response"})  # through Redis, as another process
        assert await answer("abc") == "cba"
    finally:
        await hierarchical.close()
        await other.close()
    assert prompts == ["abc", "abc"]
    stats = hierarchical.get_stats()
    assert [s.level for s in stats.values()] == ["l1", "l2", "disk"]

    def requests(level: str, result: str) -> float:
        attributes = {"cache.name": "guide-redis", "cache.level": level, "cache.result": result}
        return capture_telemetry.counter_value("ttbt5.cache.requests", attributes)

    assert (requests("l1", "miss"), requests("l1", "hit")) == (2, 1)
    assert (requests("l2", "miss"), requests("disk", "miss")) == (2, 2)
    assert requests("l2", "error") == 0
    assert stats[CacheLevel.L1_MEMORY].evictions["invalidated"] == 1
    assert stats[CacheLevel.L2_REDIS].misses == 2
