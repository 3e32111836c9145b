"""RedisCache with a Redis Cluster, without a server: the URL, key placement, client settings.

Slots are computed with redis-py's own ``key_slot`` (CRC16 of the hash tag, as the server
does), so "same slot" here is what the cluster would decide.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from ttbt5_otel._cache import HierarchicalCache, RedisCache
from ttbt5_otel._cache.keys import key_from_arguments
from ttbt5_otel._cache.redis_level import (
    ClusterBackend,
    cluster_entry_key,
    cluster_tag_key,
    cluster_url,
    cluster_url_options,
    redact,
    url_options,
)
from ttbt5_otel._exceptions import CacheConfigError

SECRET = "s3:cr/et@x y"
QUOTED = "s3%3Acr%2Fet%40x%20y"


def slot(key: str) -> int:
    return key_slot(key.encode())


# -- URL ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis+cluster://10.0.0.5:7000/", [("10.0.0.5", 7000)]),
        ("redis+cluster://10.0.0.5", [("10.0.0.5", 6379)]),
        (
            "redis+cluster://a:7000,b:7001,c/0",
            [("a", 7000), ("b", 7001), ("c", 6379)],
        ),
        ("redis+cluster://[::1]:7000,[fe80::2]/", [("::1", 7000), ("fe80::2", 6379)]),
    ],
)
def test_cluster_url_lists_startup_nodes(url: str, nodes: list[tuple[str, int]]) -> None:
    assert cluster_url_options(url) == {"startup_nodes": nodes, "password": None}


def test_cluster_url_password_is_percent_decoded_and_round_trips() -> None:
    url = f"redis+cluster://:{QUOTED}@h1:7000,h2:7001/"
    assert cluster_url_options(url)["password"] == SECRET
    assert cluster_url_options(f"redis+cluster://default:{QUOTED}@h1:7000/")["password"] == SECRET
    assert cluster_url([("h1", 7000), ("h2", 7001)], SECRET) == url
    assert cluster_url([("::1", 7000)]) == "redis+cluster://[::1]:7000/"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"redis+cluster://:{QUOTED}@h1:7000/1", "only database 0"),
        (f"redis+cluster://:{QUOTED}@h1:notaport/", "bad port"),
        (f"redis+cluster://:{QUOTED}@h1:70000/", "bad port"),
        (f"redis+cluster://:{QUOTED}@h1:7000,:7001/", "without a host"),
        (f"redis+cluster://:{QUOTED}@/", "no node"),
        (f"redis+cluster://app:{QUOTED}@h1:7000/", "user names are not supported"),
        (f"redis+cluster://:{QUOTED}@h1:7000/?ssl=true", "options are not supported"),
        (f"redis+cluster://:{QUOTED}@[::1:7000/", "bad node"),
        (f"rediss://:{QUOTED}@h1:7000/", "expected redis://"),
    ],
)
def test_bad_urls_name_the_problem_but_never_the_password(url: str, message: str) -> None:
    with pytest.raises(CacheConfigError, match=message) as error:
        RedisCache.from_url(url)
    shown = str(error.value)
    assert SECRET not in shown
    assert QUOTED not in shown


def test_redact_hides_everything_before_the_host() -> None:
    assert redact(f"redis://user:{QUOTED}@h:1/0") == "redis://***@h:1/0"
    assert redact("redis://h:1/0") == "redis://h:1/0"
    assert redact(f"redis+cluster://:{QUOTED}@a:1,b:2/") == "redis+cluster://***@a:1,b:2/"
    # A password without its colon, or holding "/" or "?", is still a password.
    assert redact("redis://s3cretpw@h:1/0") == "redis://***@h:1/0"


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://:pa/ss3cret@h1:7000/5",
        "redis+cluster://:pa?ss3cret@h1:7000/x",
        "redis+cluster://ss3cret@h1:7000/",
        "redis+cluster://:ss3cret@h1:70x0/",
    ],
)
def test_cluster_url_errors_never_quote_any_part_of_the_password(url: str) -> None:
    with pytest.raises(CacheConfigError) as error:
        RedisCache.from_url(url)
    assert "ss3cret" not in str(error.value)


def test_single_node_urls_are_unchanged() -> None:
    assert url_options(f"redis://:{QUOTED}@10.0.0.5:6380/2") == {
        "endpoint": "10.0.0.5",
        "port": 6380,
        "db": 2,
        "password": SECRET,
    }


# -- the level ---------------------------------------------------------------------------------
async def test_from_url_builds_a_cluster_level_with_bounded_timeouts() -> None:
    """redis-py's own timeouts fire within the level's; one retry; no full coverage needed."""
    level = RedisCache.from_url(
        f"redis+cluster://:{QUOTED}@h1:7000,h2:7001/", timeout=0.4, pool_max_size=9
    )
    try:
        backend = level.backend
        assert isinstance(backend, ClusterBackend)
        client = backend.client
        assert isinstance(client, RedisCluster)
        assert [(n.host, n.port) for n in client.startup_nodes] == [("h1", 7000), ("h2", 7001)]
        kwargs = client.connection_kwargs
        assert kwargs["socket_timeout"] == pytest.approx(0.2)
        assert kwargs["socket_connect_timeout"] == pytest.approx(0.2)
        assert kwargs["max_connections"] == 9
        assert kwargs["password"] == SECRET
        assert client.retry.get_retries() == 1
        assert client.nodes_manager.require_full_coverage is False
        assert backend.wait_replicas == 1
        assert backend.wait_ms == 100  # a quarter of the timeout: before the socket timeout
        shown = repr(level)
        assert shown == "RedisCache(name='default', namespace='ttbt5', cluster h1:7000,h2:7001)"
        assert SECRET not in shown
        assert QUOTED not in shown
    finally:
        await level.close()


def test_from_levels_accepts_a_cluster_url() -> None:
    cache = HierarchicalCache.from_levels(name="u-cluster", l2="redis+cluster://h1:7000/")
    ((level, _),) = cache.remote
    assert isinstance(level, RedisCache)
    assert isinstance(level.backend, ClusterBackend)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"startup_nodes": []}, "at least one"),
        ({"startup_nodes": [("h", 0)]}, "bad node"),
        ({"startup_nodes": [("", 7000)]}, "bad node"),
        ({"startup_nodes": [("h", 7000)], "db": 1}, "only database 0"),
        ({"startup_nodes": [("h", 7000)], "backend": object()}, "backend"),
        ({"startup_nodes": [("h", 7000)], "namespace": "a{b}"}, "namespace"),
        ({"startup_nodes": [("h", 7000)], "invalidation_replicas": -1}, "invalidation_replicas"),
    ],
)
def test_bad_cluster_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(CacheConfigError, match=message):
        RedisCache(**options)


def test_single_node_repr_has_no_password() -> None:
    level = RedisCache(endpoint="10.0.0.5", port=6380, db=2, password=SECRET, namespace="n")
    assert repr(level) == "RedisCache(name='default', namespace='n', 10.0.0.5:6380/2)"


# -- key placement -------------------------------------------------------------------------
def test_all_tag_versions_of_a_namespace_share_one_slot() -> None:
    """MGET of an entry's tag versions and the INCRBY pipeline stay in one slot."""
    tags = ["users", "user:1", "user:{2}", "a}b{c", "", "é", *(f"t{n}" for n in range(500))]
    assert len({slot(cluster_tag_key("catalog", tag)) for tag in tags}) == 1
    assert slot(cluster_tag_key("catalog", "x")) == slot("{catalog}")


def test_namespaces_have_their_own_tag_slot() -> None:
    slots = {slot(cluster_tag_key(f"ns{n}", "t")) for n in range(50)}
    assert len(slots) > 40  # spread, not one hot slot for every namespace


def test_entries_spread_whatever_braces_their_keys_hold() -> None:
    """Canonical JSON keys hold braces; the level's own hash tag decides the slot."""
    arguments = [{"filter": {"active": True}, "page": n} for n in range(3000)]
    keys = [key_from_arguments("app.search", call) for call in arguments]
    assert keys[7] == 'app.search:{"filter":{"active":true},"page":7}'
    # Without placement Redis would hash only '"filter":{"active":true': one slot for all.
    assert len({slot(f"ns:e:{key}") for key in keys}) == 1
    slots = Counter(slot(cluster_entry_key("ns", key)) for key in keys)
    assert len(slots) > 2500  # about 2,750 expected for 3,000 keys over 16,384 slots
    assert max(slots.values()) <= 4
    # Three masters with 5,461 slots each get about a third each.
    thirds = Counter(s * 3 // 16384 for s in slots.elements())
    assert all(900 < count < 1100 for count in thirds.values()), thirds


def test_entry_key_keeps_the_key_readable_and_its_slot_stable() -> None:
    key = key_from_arguments("app.f", {"n": 1})
    placed = cluster_entry_key("ns", key)
    assert placed.startswith("ns:e:{")
    assert placed.endswith("}:" + key)
    assert slot(placed) == slot(cluster_entry_key("other-ns", key))  # a function of the key
    assert slot(placed) != slot(cluster_entry_key("ns", key_from_arguments("app.f", {"n": 2})))


def test_backend_maps_the_level_keys() -> None:
    level = RedisCache(startup_nodes=[("h", 7000)], namespace="ns")
    backend = level.backend
    assert isinstance(backend, ClusterBackend)
    assert backend.build_key("e:a:{b}") == cluster_entry_key("ns", "a:{b}")
    assert backend.build_key("t:user:1") == cluster_tag_key("ns", "user:1")
    with pytest.raises(ValueError, match="not a cache key"):
        backend.build_key("x:1")


async def test_an_unreachable_cluster_is_an_error_not_an_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nothing listens: the cache answers from the loader side, counts, logs once, no secret."""
    caplog.set_level(logging.WARNING, "ttbt5_otel.cache")
    level = RedisCache(startup_nodes=[("127.0.0.1", 1)], password=SECRET, timeout=0.2)
    cache = HierarchicalCache("u-cluster-down", l2=level, retry_interval=60)
    try:
        assert await cache.get("k", default="d") == "d"
        await cache.set("k", {"v": 1}, tags=["t"])
        await cache.invalidate_tags("t")
        assert cache.tags.pending == {"t": 1}
    finally:
        await cache.close()
    assert level.counts.errors == 1
    [record] = caplog.records
    assert "unavailable" in record.getMessage()
    assert SECRET not in json.dumps([r.getMessage() for r in caplog.records])
