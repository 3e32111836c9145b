"""RedisCache on a real Redis Cluster (3 masters, 3 replicas on 127.0.0.1).

The cluster is formed by the stack's own module (``ttbt5_otel._cli.redis_cluster``). The
tests cover key placement (entries spread over the masters, a namespace's tag versions on
one), the hierarchical cache's operations, tag invalidation across processes, durable
invalidation (``WAIT``), passwords kept out of reprs, errors and logs, and failover under
load: a master killed (SIGKILL) or stalled (``DEBUG SLEEP``) while two cache instances
serve concurrent callers. The failover tests print their figures (run with ``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.loopback import clean_env, free_port
from tests.paths import REPO as ROOT
from tests.redis_support import RedisCluster, running_redis_cluster
from ttbt5_otel._cache import HierarchicalCache, MemoryCache, RedisCache, cached
from ttbt5_otel._cache.redis_level import cluster_entry_key, cluster_tag_key
from ttbt5_otel._exceptions import CacheConfigError

pytestmark = pytest.mark.integration

# Fault tests need DEBUG SLEEP, which Redis 7 only accepts when enabled (here: from loopback).
DEBUG = {"enable-debug-command": "local"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One cluster for the tests that leave it healthy (each uses its own namespace)."""
    yield from running_redis_cluster(tmp_path_factory.mktemp("cluster"), extra=DEBUG)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A cluster for one test that breaks it."""
    yield from running_redis_cluster(tmp_path, extra=DEBUG)


def keys_on(cluster: RedisCluster, port: int, pattern: str) -> list[str]:
    return sorted(cluster.command(port, "KEYS", pattern))


def masters(cluster: RedisCluster) -> list[int]:
    return [shard.master[1] for shard in cluster.shards]


def test_cluster_formed_by_the_stack_module(cluster: RedisCluster) -> None:
    """3 masters with a replica each cover every slot; the password is only in 0600 files."""
    assert len(cluster.shards) == 3
    assert [len(shard.replicas) for shard in cluster.shards] == [1, 1, 1]
    ranges = [shard.slots for shard in cluster.shards]
    assert ranges[0][0] == 0
    assert ranges[-1][1] == 16383
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(ranges))
    roles = cluster.roles()
    for shard in cluster.shards:
        (replica,) = shard.replicas
        assert "slave" in roles[replica[1]][0]
        assert roles[replica[1]][1] == shard.master_id
    for node in cluster.nodes:
        assert stat.S_IMODE(node.config.stat().st_mode) == 0o600
        assert stat.S_IMODE(node.directory.stat().st_mode) == 0o700
        assert f'requirepass "{cluster.password.replace(chr(34), chr(92) + chr(34))}"' in (
            node.config.read_text()
        )
        argv = psutil.Process(cluster.procs[node.port].pid).cmdline()
        assert argv == [argv[0], str(node.config)]
        coverage = cluster.command(node.port, "CONFIG", "GET", "cluster-require-full-coverage")
        assert coverage == {"cluster-require-full-coverage": "no"}


async def test_hierarchical_cache_on_the_cluster(cluster: RedisCluster) -> None:
    """get/set/delete/tags/clear through L1 + cluster L2; entries spread, tags in one slot."""
    level = RedisCache.from_url(cluster.url, namespace="it-basic", timeout=1.0)
    cache = HierarchicalCache("cl-basic", l1=MemoryCache(4), l2=level, ttl=60)
    loads: list[int] = []

    @cached(cache, tags=lambda user: [f"user:{user['id']}", "users"])
    async def profile(user: dict[str, Any]) -> dict[str, Any]:
        loads.append(user["id"])
        return {"id": user["id"], "name": f"user {user['id']}", "nothing": None}

    try:
        for n in range(60):
            assert (await profile({"id": n}))["id"] == n
        key = profile.cache_key({"id": 7})
        assert "{" in key  # canonical JSON: a hash tag if the level did not place keys
        assert key not in cache.l1  # pushed out of the 4-entry L1
        assert await profile({"id": 7}) == {"id": 7, "name": "user 7", "nothing": None}
        assert loads == list(range(60))  # served by the cluster, not loaded again
        # Entries on every master; all tag versions of the namespace on one.
        entries = {port: keys_on(cluster, port, "it-basic:e:*") for port in masters(cluster)}
        assert all(len(found) >= 5 for found in entries.values()), entries
        await cache.invalidate_tags("user:7")
        tags = {port: keys_on(cluster, port, "it-basic:t:*") for port in masters(cluster)}
        holders = [port for port, found in tags.items() if found]
        assert len(holders) == 1, tags
        assert cluster.master_of(cluster_tag_key("it-basic", "users")) == holders[0]
        assert tags[holders[0]] == ["it-basic:t:{it-basic}:user:7"]
        assert await profile({"id": 7}) == {"id": 7, "name": "user 7", "nothing": None}
        assert loads[-1] == 7  # invalidated: loaded again
        await cache.invalidate_tags("users")
        assert len(keys_on(cluster, holders[0], "it-basic:t:*")) == 2

        await cache.set("plain", None, tags=["users"])
        assert await cache.get("plain", default="missing") is None
        assert await cache.delete("plain") is True
        assert await cache.get("plain", default="missing") == "missing"
        raw = cluster.client(cluster.master_of(cluster_entry_key("it-basic", key)))
        try:
            assert raw.exists(cluster_entry_key("it-basic", key)) == 1
        finally:
            raw.close()

        await cache.clear()
        assert all(keys_on(cluster, port, "it-basic:e:*") == [] for port in masters(cluster))
        assert len(keys_on(cluster, holders[0], "it-basic:t:*")) == 2  # versions are kept
        assert level.counts.errors == 0
    finally:
        await cache.close()


def _other_process(url: str, code: str) -> str:
    """Run ``code`` against the cluster in a new interpreter; the URL (password) via env."""
    script = textwrap.dedent(
        """
        import asyncio, os
        from ttbt5_otel._cache import HierarchicalCache, MemoryCache, RedisCache

        async def main():
            level = RedisCache.from_url(os.environ["CLUSTER_URL"], namespace="it-procs")
            cache = HierarchicalCache("other", l1=MemoryCache(10), l2=level)
            try:
        {code}
            finally:
                await cache.close()

        asyncio.run(main())
        """
    ).format(code=textwrap.indent(textwrap.dedent(code), " " * 16))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=clean_env(CLUSTER_URL=url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def test_clear_of_thousands_of_entries_stays_within_the_connection_limit(
    cluster: RedisCluster,
) -> None:
    """Entries cover most slots: clear() must not open a connection per slot at once."""
    level = RedisCache.from_url(cluster.url, namespace="it-many", timeout=2.0, pool_max_size=10)
    cache = HierarchicalCache("cl-many", l2=level, ttl=60)

    async def put(n: int) -> None:
        # This test is about clear(): a write that fails on a loaded machine (a socket
        # timeout makes redis-py re-read the slot map, which can close connections other
        # writes are using) is written again rather than failing the set-up.
        for _ in range(5):
            with contextlib.suppress(Exception):
                await level.set_raw(f"k{n}", b"1", 60)
                return
        pytest.fail(f"could not write k{n}")

    try:
        # Written no more than the pool at a time.
        for start in range(0, 5000, 10):
            await asyncio.gather(*(put(n) for n in range(start, start + 10)))
        assert sum(len(keys_on(cluster, p, "it-many:e:*")) for p in masters(cluster)) == 5000
        errors_before = level.counts.errors
        await cache.clear()
        assert all(keys_on(cluster, port, "it-many:e:*") == [] for port in masters(cluster))
        assert level.counts.errors == errors_before
    finally:
        await cache.close()


async def test_tag_invalidation_from_another_process(cluster: RedisCluster) -> None:
    """Process B invalidates a tag: process A does not serve its L1 copy any more."""
    level = RedisCache.from_url(cluster.url, namespace="it-procs")
    cache = HierarchicalCache("cl-procs", l1=MemoryCache(10), l2=level)
    loads = 0

    @cached(cache, ttl=300, tags=lambda user_id: [f"user:{user_id}"])
    async def profile(user_id: int) -> dict[str, int]:
        nonlocal loads
        loads += 1
        return {"user": user_id, "version": loads}

    try:
        assert await profile(1) == {"user": 1, "version": 1}
        key = profile.cache_key(1)
        seen = _other_process(cluster.url, f"print(await cache.get({key!r}))")
        assert seen == "{'user': 1, 'version': 1}"
        _other_process(cluster.url, "await cache.invalidate_tags('user:1')")
        assert key in cache.l1
        assert await profile(1) == {"user": 1, "version": 2}
        seen = _other_process(cluster.url, f"print(await cache.get({key!r}))")
        assert seen == "{'user': 1, 'version': 2}"
    finally:
        await cache.close()


async def test_password_stays_out_of_reprs_errors_and_logs(
    cluster: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """repr, URL errors, the outage warning and redis-py's errors never show the password."""
    caplog.set_level(logging.DEBUG)
    secret = cluster.password
    level = RedisCache.from_url(cluster.url, namespace="it-secret")
    assert secret not in repr(level)
    assert "cluster 127.0.0.1:" in repr(level)
    bad = cluster.url.replace(f":{cluster.nodes[0].port}", ":99999")
    with pytest.raises(CacheConfigError) as error:
        RedisCache.from_url(bad)
    assert "***" in str(error.value)
    assert secret not in str(error.value)
    assert "%" not in str(error.value).split("@")[0]  # nor its percent-encoded form
    # Nothing listens there, then a wrong password: both logged as outages.
    dead = RedisCache(startup_nodes=[("127.0.0.1", free_port())], password=secret, timeout=0.3)
    wrong = RedisCache(startup_nodes=cluster.startup_nodes, password=secret[::-1], timeout=0.5)
    for number, l2 in enumerate((dead, wrong, level)):
        cache = HierarchicalCache(f"cl-secret-{number}", l2=l2)
        try:
            assert await cache.get("k", default="d") == "d"
        finally:
            await cache.close()
    assert dead.counts.errors == 1
    assert wrong.counts.errors == 1
    assert level.counts.errors == 0
    assert len([r for r in caplog.records if "unavailable" in r.getMessage()]) == 2
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in logged
    assert secret[::-1] not in logged


async def test_invalidation_waits_for_a_replica(cluster: RedisCluster) -> None:
    """A tag bump returns once a replica has it; a stalled replica keeps it pending."""
    namespace = "it-wait"
    tag_key = cluster_tag_key(namespace, "x")
    master = cluster.master_of(tag_key)
    replica = cluster.replica_of(master)
    level = RedisCache.from_url(cluster.url, namespace=namespace, timeout=0.4)
    cache = HierarchicalCache("cl-wait", l2=level, retry_interval=0.1)

    def replica_version() -> int:
        client = cluster.client(replica, single_connection_client=True)
        try:
            client.execute_command("READONLY")
            return int(client.get(tag_key) or 0)
        finally:
            client.close()

    try:
        await cache.invalidate_tags("x")
        assert cache.tags.pending == {}
        assert replica_version() == 1  # WAIT returned: the replica already had it
        cluster.stall(replica, 1)
        started = time.monotonic()
        await cache.invalidate_tags("x")
        # Bounded by the level's timeout (0.4 s), with room for a loaded machine.
        assert time.monotonic() - started < 1.0
        assert "x" in cache.tags.pending  # not acknowledged: kept to be sent again
        assert level.counts.errors == 1
        await asyncio.sleep(1.2)  # the replica answers again
        deadline = time.monotonic() + 10
        while True:  # each probe after retry_interval replays the bump
            assert await cache.get("k", default="d") == "d"
            if cache.tags.pending == {} or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert cache.tags.pending == {}
        assert replica_version() == 3  # applied, then sent again: versions only grow
    finally:
        await cache.close()
        cluster.wait_healthy()


# -- failover under load --------------------------------------------------------------------
KEYS = 240
GROUPS = 8
INVALIDATED = 3
CALLERS = 8  # per instance
TIMEOUT = 0.25
RETRY = 0.2
WINDOW = 1.5
NAMESPACE = "fo"


class App:
    """One application instance: its own L1, cluster client and tag state."""

    def __init__(self, name: str, url: str, versions: list[int]) -> None:
        self.name = name
        self.level = RedisCache.from_url(url, namespace=NAMESPACE, timeout=TIMEOUT)
        self.cache = HierarchicalCache(
            name, l1=MemoryCache(16), l2=self.level, ttl=600, retry_interval=RETRY
        )
        self.loads = 0

        @cached(self.cache, tags=lambda n: [f"group:{n % GROUPS}"])
        async def item(n: int) -> dict[str, int]:
            self.loads += 1
            return {"n": n, "v": versions[n % GROUPS]}

        self.item = item

    def counts(self) -> tuple[int, int, int]:
        counts = self.level.counts
        return (counts.hits, counts.misses, counts.errors)

    def recovered(self) -> bool:
        return all(outage.down_since is None for _, outage in self.cache.remote)


@dataclass
class Load:
    apps: list[App]
    versions: list[int]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[tuple[float, int, dict[str, int]]] = field(default_factory=list)
    exceptions: list[BaseException] = field(default_factory=list)
    slowest: float = 0.0

    async def caller(self, app: App, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            n = rng.randrange(KEYS)
            started = time.monotonic()
            try:
                value = await app.item(n)
            except Exception as exc:
                self.exceptions.append(exc)
            else:
                self.calls.append((started, n, value))
            self.slowest = max(self.slowest, time.monotonic() - started)
            await asyncio.sleep(0.002)

    def totals(self) -> tuple[int, int, int]:
        hits, misses, errors = (sum(c) for c in zip(*(a.counts() for a in self.apps), strict=True))
        return (hits, misses, errors)


def ratio(before: tuple[int, int, int], after: tuple[int, int, int]) -> tuple[float, int, int]:
    """L2 hit ratio between two count snapshots, with the lookups and errors in between."""
    hits, misses, errors = (b - a for a, b in zip(before, after, strict=True))
    lookups = hits + misses + errors
    return (hits / lookups if lookups else 0.0, lookups, errors)


async def wait_for(what: str, check: Any, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def failover_under_load(cluster: RedisCluster, fault: str) -> dict[str, Any]:
    versions = [0] * GROUPS
    apps = [App("fo-a", cluster.url, versions), App("fo-b", cluster.url, versions)]
    load = Load(apps, versions)
    a, b = apps
    # The worst master to lose: the one holding the namespace's tag versions.
    master = cluster.master_of(cluster_tag_key(NAMESPACE, f"group:{INVALIDATED}"))
    replica = cluster.replica_of(master)
    witness = next(port for port in masters(cluster) if port != master)
    tasks: list[asyncio.Task[None]] = []
    try:
        for n in range(KEYS):
            await a.item(n)
        assert a.level.counts.errors == 0
        tasks = [
            asyncio.create_task(load.caller(app, seed)) for seed, app in enumerate(apps * CALLERS)
        ]
        await asyncio.sleep(0.3)
        start = load.totals()
        await asyncio.sleep(WINDOW)
        before = ratio(start, load.totals())

        faulted_at = time.monotonic()
        at_fault = load.totals()
        if fault == "kill":
            cluster.kill(master)
        else:
            cluster.stall(master, 4)
        await asyncio.sleep(0.3)
        versions[INVALIDATED] += 1  # the data changed during the failover ...
        await a.cache.invalidate_tags(f"group:{INVALIDATED}")  # ... and A says so
        assert f"group:{INVALIDATED}" in a.cache.tags.pending  # not in the store yet

        def promoted() -> bool:
            return "master" in cluster.roles(via=witness).get(replica, ("", ""))[0]

        promoted_at = await wait_for("replica promoted", promoted, 15)
        recovered_at = await wait_for(
            "both instances using the cluster again, the invalidation delivered",
            lambda: a.recovered() and b.recovered() and not a.cache.tags.pending,
            10,
        )
        during = ratio(at_fault, load.totals())
        await asyncio.sleep(0.3)
        start = load.totals()
        await asyncio.sleep(WINDOW)
        after = ratio(start, load.totals())
    finally:
        load.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for app in apps:
            await app.cache.close()

    stale_after = [
        (n, value)
        for started, n, value in load.calls
        if started >= recovered_at and value["v"] != versions[n % GROUPS]
    ]
    wrong = [(n, value) for _, n, value in load.calls if value["n"] != n]
    figures = {
        "fault": fault,
        "calls": len(load.calls),
        "exceptions": len(load.exceptions),
        "promotion_s": round(promoted_at - faulted_at, 2),
        "recovery_s": round(recovered_at - faulted_at, 2),
        "hit_ratio_before": round(before[0], 3),
        "hit_ratio_during": round(during[0], 3),
        "hit_ratio_after": round(after[0], 3),
        "l2_lookups_before_during_after": (before[1], during[1], after[1]),
        "l2_errors_during": during[2],
        "slowest_call_s": round(load.slowest, 3),
        "stale_after_recovery": len(stale_after),
        "master": master,
        "replica": replica,
    }
    print(f"\nfailover figures: {figures}")
    assert load.exceptions == [], load.exceptions[:3]
    assert wrong == []
    assert stale_after == [], stale_after[:5]
    assert before[0] >= 0.9, figures
    assert after[0] >= 0.9, figures
    assert during[2] > 0, figures  # the failover was seen, counted as errors
    # Each level operation gives up at TIMEOUT; a read-through call makes at most a few in
    # a row (tag check, read, tag snapshot for the load): the bound of the single-node
    # load test (test_cache_redis_load.py) holds here too.
    # Two operations in a row may each take the timeout; the rest is a loaded 2-core machine.
    assert load.slowest < 4 * TIMEOUT + 0.5, figures
    return figures


async def test_failover_under_load_master_killed(own_cluster: RedisCluster) -> None:
    """SIGKILL the master of the tag slot under load: no caller sees an exception, the
    replica is promoted, the L2 hit ratio recovers, a tag invalidated meanwhile is exact."""
    figures = await failover_under_load(own_cluster, "kill")
    roles = own_cluster.roles(via=figures["replica"])
    assert "fail" in roles[figures["master"]][0]
    assert "master" in roles[figures["replica"]][0]


async def test_failover_under_load_master_stalled(own_cluster: RedisCluster) -> None:
    """Same with a master that stops answering (DEBUG SLEEP 4) instead of dying: once awake
    it finds itself replaced and follows the promoted replica."""
    figures = await failover_under_load(own_cluster, "stall")
    replica_id = own_cluster.roles(via=figures["replica"])

    def demoted() -> bool:
        roles = own_cluster.roles(via=figures["replica"])
        return "slave" in roles[figures["master"]][0]

    deadline = time.monotonic() + 8
    while not demoted():
        assert time.monotonic() < deadline, replica_id
        await asyncio.sleep(0.1)


def test_url_with_a_database_is_refused(cluster: RedisCluster) -> None:
    """A cluster has database 0 only: /1 is a configuration error naming the field."""
    with pytest.raises(CacheConfigError, match="only database 0"):
        RedisCache.from_url(cluster.url.rstrip("/") + "/1")
