"""The shared level: Redis through aiocache's Redis backend, or a Redis Cluster.

Entries live under ``<namespace>:e:<key>`` and tag versions under ``<namespace>:t:<tag>``,
so ``clear()`` can drop entries without resetting tag versions (a reset could make an old
entry elsewhere look current again). Values are encoded by this package's serializer and
handed to aiocache as bytes (aiocache's ``NullSerializer`` without decoding), so the
serializer choice is explicit: strict JSON unless ``PickleSerializer`` is asked for.

Under load the level is bounded: at most ``pool_max_size`` operations hold a connection at
once, and the others queue for one (see ``RedisCache._run`` for how that wait shares the
operation's ``timeout``) instead of failing with ``MaxConnectionsError``.

Redis Cluster
-------------

``RedisCache.from_url("redis+cluster://[:password@]host[:port][,host[:port]...]/")`` or
``RedisCache(startup_nodes=[(host, port), ...])`` talks to a cluster through redis-py's
``redis.asyncio.cluster.RedisCluster`` (aiocache 0.12 has no cluster backend; the level keeps
aiocache's conventions: the same operations, serializer and timeouts). The nodes listed are
only where the client starts: it learns the others and the slot map from them.

Key placement. A cluster hashes each key to one of 16,384 slots, or, when the key holds a
``{...}`` hash tag, only the text between the first ``{`` and the next ``}``. Cache keys are
canonical JSON and often contain braces, so without care ``f:{"n":1}`` would hash ``"n":1``
and every function called with ``n=1`` would share a slot. Keys are therefore placed
explicitly:

* an entry is ``<namespace>:e:{<8 hex digits of BLAKE2b(key)>}:<key>``: its slot is a hash
  of the whole key, so entries spread evenly over the masters whatever braces the key holds;
* a tag version is ``<namespace>:t:{<namespace>}:<tag>``: all tag versions of a namespace
  share one slot.

Every multi-key operation is then single-slot: the ``MGET`` of an entry's tag versions
(one round trip, as on a single node), the pipeline of ``INCRBY`` that invalidates tags,
and the per-slot ``DEL`` batches of ``clear()``. An entry and its tag versions are in
different slots, but nothing reads or writes them in one command: a read is ``GET`` then
``MGET``, two round trips as on a single Redis. The trade-off of one tag slot per namespace:
every read of a tagged entry of that namespace (L1 hits included, unless
``tag_version_ttl`` allows reusing versions) asks that slot's master, so one master carries
the tag checks of the whole namespace while entries spread over all of them. Spreading tag
versions instead would turn each check into one round trip per slot involved; when one
namespace's tag checks are too hot for one master, split it into several namespaces (each
has its own tag slot) or set ``tag_version_ttl``. Namespaces may not contain ``{`` or ``}``.

Invalidation survives a failover. Redis replicates asynchronously: an ``INCRBY``
acknowledged by a master that dies before its replica received it would be undone by the
promotion, and entries invalidated by it would look current again. So in a cluster the tag
bump is sent, with ``WAIT <invalidation_replicas> <timeout/4 in ms>``, on one connection to
the master of the tag slot; an invalidation that no replica acknowledged in time fails like
an unreachable Redis (the process skips the level for ``retry_interval``): it is kept in
the process (local epochs) and sent again later (see ``tags``), so its effect cannot be
lost. When ``WAIT`` falls short because the master has no
replica connected (``ROLE``), the invalidation stands: a replica that connects later copies
the master's data, this write included. Such a master (a replica-less cluster, or one whose
replica is down) makes each invalidation wait ``timeout/4``: set
``invalidation_replicas=0`` for clusters without replicas. Losing a shard entirely (master
and replicas, without persistence) resets its tag versions, as restarting a single Redis
without persistence does.

Failover. When a master dies or stalls, operations on its slots fail (refused, or no answer
within half of ``timeout``); the level counts the errors and the cache falls through to the
loader, skipping the level for ``retry_interval`` (``outage``). redis-py marks its slot map
stale on every connection error or timeout and reads it again (``CLUSTER SLOTS``) before the
next command, and follows ``MOVED`` replies, so once a replica is promoted the next probe
finds it: the level recovers by itself. Each socket read and connect may take at most half
of ``timeout``: redis-py's own timeout then fires inside the operation's budget (so it
refreshes the map and retries once, on the new owner if there is one, instead of the call
being cut off before redis-py noticed anything), and no level operation lasts longer than
``timeout`` (a read-through call makes at most a few in a row: tag check, read, the tag
snapshot of its load).
Nodes should run with ``cluster-require-full-coverage no`` so the other masters keep
serving their slots while one slot range moves (``ttbt5_otel._cli.redis_cluster`` writes
it).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlsplit

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.outage import Busy
from ttbt5_otel._cache.serialization import Serializer
from ttbt5_otel._cache.store import RemoteLevel, as_int
from ttbt5_otel._exceptions import CacheConfigError

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

_MIN_TTL_MS = 1
_T = TypeVar("_T")

DEFAULT_POOL_MAX_SIZE: Final = 50
"""Connections per level. One event loop cannot use many: on loopback a single connection
served 1,000 concurrent callers within 0.3 s (benchmarks/bench_redis_load.py), and 50
covers a remote Redis with a millisecond of round trip (50,000 operations/s, more than one
loop issues) while staying far below Redis's ``maxclients`` (10,000) with many processes."""

_FAIR_SHARE: Final = 0.5
"""A timed-out command counts as Redis failing only if it had this share of ``timeout``."""

CLUSTER_SCHEME: Final = "redis+cluster"
"""URL scheme of a Redis Cluster: ``redis+cluster://[:password@]host[:port][,host[:port]...]/``."""

_CLUSTER_SOCKET_SHARE: Final = 0.5
"""Share of ``timeout`` each socket read or connect may take in a cluster (module docstring)."""

_CLUSTER_RETRIES: Final = 1
"""Times redis-py's cluster client retries a command after a connection error or timeout,
having re-read the slot map: once is enough to reach a newly promoted master."""

_CLEAR_CONCURRENCY: Final = 8
"""``DEL`` batches ``clear()`` keeps in flight: well under the per-node connection limit."""

_WAIT_SHARE: Final = 0.25
"""Share of ``timeout`` a tag invalidation waits for replicas: less than the socket timeout,
so ``WAIT`` answers before redis-py gives up on the connection, leaving time for ``ROLE``."""

_DIGEST_BYTES: Final = 4
"""Bytes of the key digest used as an entry's hash tag: 2**32 values spread 16,384 slots."""

_GLOB_SPECIAL: Final = re.compile(r"([\\*?\[\]])")


class RedisCache(RemoteLevel):
    """A Redis cache level (L2), shared by every process using the same Redis and namespace.

    Args:
        endpoint: Redis host.
        port: Redis port.
        db: database number (0 in a cluster, the only one there is).
        password: Redis password, if any.
        startup_nodes: ``(host, port)`` of one or more nodes of a Redis Cluster: the level
            then uses the cluster (``endpoint`` and ``port`` are ignored), see the module
            docstring for the key placement and the failover behaviour.
        invalidation_replicas: in a cluster, how many replicas must acknowledge a tag
            invalidation (``WAIT``) before it counts as done, so that a failover cannot undo
            it (default 1; 0 does not wait).
        namespace: prefix of every key this level writes.
        timeout: seconds each operation may take, from the call to the answer, including
            any wait for a free connection, before it counts as failed and the caller falls
            through (also the socket timeout; half of it in a cluster).
        connect_timeout: seconds to establish a connection (default ``timeout``; the
            operation's ``timeout`` still bounds the whole call).
        pool_max_size: most connections to Redis (default 50), so most operations of
            this level in flight at once. More concurrent callers queue for a connection
            within their ``timeout``; one that gets none in time falls through to the
            loader, counted as an error but not taken as Redis being down.
        serializer: ``JsonSerializer()`` (default) or ``PickleSerializer()`` (see its
            warning).
        name: the ``cache.name`` attribute; a ``HierarchicalCache`` names unnamed levels.
        backend: an existing ``aiocache.RedisCache`` to use instead of creating one; its
            serializer must pass bytes through (``NullSerializer(encoding=None)``);
            its own timeout is replaced by this level's.

    The password never appears in the level's ``repr``, in its errors or in its logs.
    """

    level: ClassVar[CacheLevel] = CacheLevel.L2

    def __init__(
        self,
        *,
        endpoint: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
        startup_nodes: Sequence[tuple[str, int]] | None = None,
        invalidation_replicas: int = 1,
        namespace: str = "ttbt5",
        timeout: float = 0.5,
        connect_timeout: float | None = None,
        pool_max_size: int = DEFAULT_POOL_MAX_SIZE,
        serializer: Serializer | None = None,
        name: str | None = None,
        backend: Any = None,
    ) -> None:
        """Configure the connection; nothing connects until the first operation."""
        if timeout <= 0:
            raise CacheConfigError(f"timeout: must be positive, got {timeout}")
        if not isinstance(pool_max_size, int) or pool_max_size < 1:
            raise CacheConfigError(f"pool_max_size: must be a positive int, got {pool_max_size!r}")
        nodes = None
        if startup_nodes is not None:
            if backend is not None:
                raise CacheConfigError("backend: cannot be combined with startup_nodes")
            if db:
                raise CacheConfigError(f"db: a Redis Cluster has only database 0, got {db}")
            if not isinstance(invalidation_replicas, int) or invalidation_replicas < 0:
                raise CacheConfigError(
                    f"invalidation_replicas: must be an int >= 0, got {invalidation_replicas!r}"
                )
            nodes = cluster_nodes(startup_nodes)
            check_cluster_namespace(namespace)
        super().__init__(name, serializer)
        self.namespace = namespace
        self.timeout = timeout
        self.pool_max_size = pool_max_size
        # One slot per connection: holding a slot guarantees the pool has a connection for
        # the operation, so the wait for one happens here, where its time is known.
        self._slots = asyncio.Semaphore(pool_max_size)
        self._where = f"{endpoint}:{port}/{db}"
        if nodes is not None:
            self._where = "cluster " + ",".join(f"{host}:{port}" for host, port in nodes)
            backend = ClusterBackend(
                _cluster_client(nodes, password, timeout, connect_timeout, pool_max_size),
                namespace,
                invalidation_replicas,
                max(1, int(timeout * 1000 * _WAIT_SHARE)),
            )
        if backend is None:
            # Imported on use: aiocache pulls in the redis client, which costs tens of
            # milliseconds at start-up for applications that never use this level.
            import aiocache  # noqa: PLC0415
            from aiocache.serializers import NullSerializer  # noqa: PLC0415
            from redis.asyncio import BlockingConnectionPool  # noqa: PLC0415 - optional extra
            from redis.asyncio.retry import Retry  # noqa: PLC0415
            from redis.backoff import NoBackoff  # noqa: PLC0415

            backend = aiocache.RedisCache(
                serializer=NullSerializer(encoding=None),
                namespace=namespace,
                timeout=timeout,
                endpoint=endpoint,
                port=port,
                db=db,
                password=password,
                pool_max_size=pool_max_size,
                create_connection_timeout=connect_timeout or timeout,
                # A blocking pool waits for a free connection instead of raising
                # MaxConnectionsError; the slots make that wait never happen, but an
                # operation that ever needed a second connection would queue, not fail.
                connection_pool_class=BlockingConnectionPool,
                # The per-operation timeout bounds each call; client-side retries with
                # backoff would only turn a refused connection into a slow one.
                connection_pool_kwargs={
                    "timeout": timeout,
                    "socket_timeout": timeout,
                    "retry": Retry(NoBackoff(), 0),
                },
            )
        self.backend = backend

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCache:
        """A level for a URL; ``options`` as for the class.

        ``redis://[:password@]host[:port][/db]`` is one Redis server;
        ``redis+cluster://[:password@]host[:port][,host[:port]...][/]`` is a Redis Cluster
        reached through the nodes listed (any one that answers is enough). Special
        characters of a password are percent-encoded, as in any URL.
        """
        if url.partition("://")[0] == CLUSTER_SCHEME:
            return cls(**cluster_url_options(url), **options)
        return cls(**url_options(url), **options)

    def __repr__(self) -> str:
        """Name, namespace and where Redis is; never the password."""
        return f"RedisCache(name={self.name!r}, namespace={self.namespace!r}, {self._where})"

    async def _run(self, call: Callable[[], Awaitable[_T]]) -> _T:
        """Await ``call()`` holding a connection slot, all within ``timeout`` of now.

        The caller's budget is one ``timeout`` for the whole operation: the wait for a free
        connection is not given a budget of its own, because a caller that waited
        ``timeout`` for a connection and then ``timeout`` for Redis would have been better
        served by the loader long before. So the command gets what the wait left.

        How a timeout is reported decides whether the level is taken as down (``Outage``):

        * no slot before the deadline raises ``Busy``: every connection was in use by this
          process, which says nothing about Redis;
        * a command that times out after the wait left it less than half of ``timeout``
          raises ``Busy`` too: Redis had no fair chance to answer, and one burst of callers
          must not flip a healthy level to "down" (and skip it for ``retry_interval``);
        * a command that had at least half of ``timeout`` and still got no answer raises
          ``TimeoutError``, and connection errors pass through: Redis is failing. A frozen
          Redis keeps every slot busy with such commands, so an outage is still detected
          within about one ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        slots = self._slots
        if slots.locked():  # all connections in use: queue for one, within the budget
            try:
                async with asyncio.timeout_at(deadline):
                    await slots.acquire()
            except TimeoutError:
                raise Busy(
                    f"no free connection to Redis within {self.timeout:.3g}s "
                    f"(pool_max_size={self.pool_max_size})"
                ) from None
        else:
            await slots.acquire()  # returns at once: skip the cost of arming a timer
        try:
            given = deadline - loop.time()
            try:
                # redis-py's socket timeout (``timeout``, armed later) cannot fire before
                # this deadline: a Redis that does not answer always ends up here.
                async with asyncio.timeout_at(deadline):
                    return await call()
            except TimeoutError:
                if given < self.timeout * _FAIR_SHARE:
                    raise Busy(
                        f"Redis did not answer in the {max(given, 0):.3g}s left after waiting "
                        f"for a free connection (pool_max_size={self.pool_max_size})"
                    ) from None
                raise TimeoutError(f"no answer from Redis within {given:.3g}s") from None
        finally:
            slots.release()

    # aiocache's own timeout is off (timeout=0) in every call: ``_run`` bounds the whole
    # operation, and aiocache's ``wait_for`` would cost a task per call on the hot path.
    async def _get(self, key: str) -> bytes | None:
        data = await self._run(lambda: self.backend.get("e:" + key, timeout=0))
        return None if data is None else bytes(data)

    async def _set(self, key: str, data: bytes, ttl: float | None) -> None:
        # aiocache sends float TTLs as milliseconds; keep at least one.
        keep = None if ttl is None else max(float(ttl), _MIN_TTL_MS / 1000)
        await self._run(lambda: self.backend.set("e:" + key, data, ttl=keep, timeout=0))

    async def _delete(self, key: str) -> bool:
        return bool(await self._run(lambda: self.backend.delete("e:" + key, timeout=0)))

    async def _clear(self) -> None:
        await self._run(lambda: self.backend.clear(namespace=f"{self.namespace}:e", timeout=0))

    async def _versions(self, tags: Sequence[str]) -> dict[str, int]:
        keys = ["t:" + tag for tag in tags]
        values = await self._run(lambda: self.backend.multi_get(keys, timeout=0))
        return {tag: as_int(value) for tag, value in zip(tags, values, strict=True)}

    async def _bump(self, tags: Sequence[str]) -> None:
        backend = self.backend
        if isinstance(backend, ClusterBackend):
            await self._run(lambda: backend.bump(["t:" + tag for tag in tags]))
            return

        async def bump_all() -> None:
            for tag in tags:
                await self.backend.increment("t:" + tag, 1, timeout=0)

        await self._run(bump_all)

    async def close(self) -> None:
        """Close the connection pool."""
        if isinstance(self.backend, ClusterBackend):
            await self.backend.close()
            return
        client = getattr(self.backend, "client", None)
        if client is not None and hasattr(client, "aclose"):
            # aiocache's close() calls redis-py's deprecated close().
            await client.aclose()
        else:
            await self.backend.close()


def url_options(url: str) -> dict[str, Any]:
    """``endpoint``, ``port``, ``db`` and ``password`` of ``redis://[:password@]host[:port][/db]``."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise CacheConfigError(f"url: expected redis://host:port/db, got {redact(url)!r}")
    path = parts.path.strip("/")
    return {
        "endpoint": parts.hostname or "127.0.0.1",
        "port": parts.port or 6379,
        "db": int(path) if path else 0,
        "password": unquote(parts.password) if parts.password else None,
    }


def redact(url: str) -> str:
    """``url`` with everything before its last ``@`` (user and password) replaced by ``***``.

    A password without the leading colon, or one holding ``/`` or ``?``, is masked all the
    same: whatever precedes the host is treated as secret.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    _, at, hosts = rest.rpartition("@")
    if not at:
        return url
    return f"{scheme}://***@{hosts}"


def _node(text: str, url: str) -> tuple[str, int]:
    """``(host, port)`` of ``host[:port]`` or ``[v6]:port`` in a cluster URL."""
    host, port = text, ""
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            raise CacheConfigError(f"url: bad node {text!r} in {redact(url)!r}")
        port = port[1:]
    elif ":" in text:
        host, _, port = text.rpartition(":")
    if not host:
        raise CacheConfigError(f"url: a node without a host in {redact(url)!r}")
    if not port:
        return host, 6379
    if not port.isdigit() or not 0 < int(port) < 65536:  # noqa: PLR2004 - TCP port range
        raise CacheConfigError(f"url: bad port {port!r} of node {host!r} in {redact(url)!r}")
    return host, int(port)


def cluster_url_options(url: str) -> dict[str, Any]:
    """``startup_nodes`` and ``password`` of a ``redis+cluster://`` URL.

    The form is ``redis+cluster://[:password@]host[:port][,host[:port]...][/]`` (port 6379
    when left out; IPv6 hosts in brackets; ``/0`` is accepted, other databases do not exist
    in a cluster). A user name other than ``default`` is refused: the level authenticates
    with a password only, like ``redis://``. Errors never show the password.
    """
    scheme, sep, rest = url.partition("://")
    if scheme != CLUSTER_SCHEME or not sep:
        raise CacheConfigError(
            f"url: expected {CLUSTER_SCHEME}://host:port[,host:port...]/, got {redact(url)!r}"
        )
    # The secret part goes first: nothing after this point can quote it in a message.
    userinfo, at, rest = rest.rpartition("@")
    rest, _, query = rest.partition("?")
    if query:
        names = sorted(parse_qs(query, keep_blank_values=True))
        raise CacheConfigError(f"url: options are not supported in a cluster URL: {names}")
    hosts, _, path = rest.partition("/")
    if path.strip("/") not in {"", "0"}:
        raise CacheConfigError(
            f"url: a Redis Cluster has only database 0, got /{path} in {redact(url)!r}"
        )
    password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        if unquote(user) not in {"", "default"}:
            raise CacheConfigError(
                f"url: user names are not supported (only a password), got {redact(url)!r}"
            )
        password = unquote(secret) if colon and secret else None
    nodes = [_node(part, url) for part in hosts.split(",") if part]
    if not nodes:
        raise CacheConfigError(f"url: no node in {redact(url)!r}")
    return {"startup_nodes": nodes, "password": password}


def cluster_url(nodes: Sequence[tuple[str, int]], password: str | None = None) -> str:
    """The ``redis+cluster://`` URL of ``nodes``; it holds the password: never print it."""
    userinfo = f":{quote(password, safe='')}@" if password else ""
    hosts = ",".join(
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}" for host, port in nodes
    )
    return f"{CLUSTER_SCHEME}://{userinfo}{hosts}/"


def cluster_nodes(nodes: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """``nodes`` checked: at least one, each a host and a TCP port."""
    found = [(str(host), port) for host, port in nodes]
    if not found:
        raise CacheConfigError("startup_nodes: at least one (host, port) is needed")
    for host, port in found:
        if not host or not isinstance(port, int) or not 0 < port < 65536:  # noqa: PLR2004
            raise CacheConfigError(f"startup_nodes: bad node {host!r}:{port!r}")
    return found


def check_cluster_namespace(namespace: str) -> str:
    """``namespace`` if usable in a cluster: braces would move its keys' hash tags."""
    if "{" in namespace or "}" in namespace:
        raise CacheConfigError(
            f"namespace: must not contain '{{' or '}}' with a Redis Cluster, got {namespace!r}"
        )
    return namespace


def cluster_entry_key(namespace: str, key: str) -> str:
    """Where entry ``key`` lives in a cluster: its slot is a hash of the whole key."""
    digest = hashlib.blake2b(key.encode(), digest_size=_DIGEST_BYTES).hexdigest()
    return f"{namespace}:e:{{{digest}}}:{key}"


def cluster_tag_key(namespace: str, tag: str) -> str:
    """Where the version of ``tag`` lives in a cluster: one slot per namespace."""
    return f"{namespace}:t:{{{namespace}}}:{tag}"


def _cluster_client(
    nodes: Sequence[tuple[str, int]],
    password: str | None,
    timeout: float,
    connect_timeout: float | None,
    pool_max_size: int,
) -> RedisCluster:
    # Imported on use, like aiocache: the redis client is an optional extra.
    from redis.asyncio.cluster import ClusterNode, RedisCluster  # noqa: PLC0415
    from redis.asyncio.retry import Retry  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415

    socket_timeout = timeout * _CLUSTER_SOCKET_SHARE
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        password=password,
        # A cache serves what it can: slots that lost their master fail alone.
        require_full_coverage=False,
        # Per node; the level's slots keep the operations in flight below it.
        max_connections=pool_max_size,
        # No backoff: the operation's deadline bounds the whole call anyway.
        retry=Retry(NoBackoff(), _CLUSTER_RETRIES),
        socket_timeout=socket_timeout,
        socket_connect_timeout=min(connect_timeout or timeout, socket_timeout),
        decode_responses=False,
    )


class NotReplicated(Exception):  # noqa: N818 - named for what happened
    """A tag invalidation reached the master but no replica acknowledged it in time."""


class ClusterBackend:
    """What ``RedisCache`` asks of aiocache's Redis backend, over a Redis Cluster.

    The level's keys (``e:<key>``, ``t:<tag>``) are placed as the module docstring
    describes, the way aiocache prefixes them with the namespace on a single Redis.
    aiocache's keyword options (its ``timeout``) are accepted and ignored: the level bounds
    every call itself.
    """

    def __init__(
        self, client: RedisCluster, namespace: str, wait_replicas: int, wait_ms: int
    ) -> None:
        """Use ``client`` for the keys of ``namespace``; invalidations wait for replicas."""
        self.client = client
        self.namespace = check_cluster_namespace(namespace)
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms
        self._map_stale = False

    def build_key(self, key: str) -> str:
        """The cluster key of a level key ``e:<key>`` or ``t:<tag>``."""
        kind, _, rest = key.partition(":")
        if kind == "e":
            return cluster_entry_key(self.namespace, rest)
        if kind == "t":
            return cluster_tag_key(self.namespace, rest)
        raise ValueError(f"not a cache key: {key!r}")

    async def _call(self, *args: Any) -> Any:
        from redis.exceptions import MaxConnectionsError  # noqa: PLC0415

        try:
            return await self.client.execute_command(*args)
        except MaxConnectionsError:
            # This process's own connections are all in use: not the cluster failing.
            raise Busy("no free connection to the Redis Cluster node") from None

    async def get(self, key: str, **_options: Any) -> bytes | None:
        """The bytes under ``key``, or ``None``."""
        data = await self._call("GET", self.build_key(key))
        return None if data is None else bytes(data)

    async def set(self, key: str, value: bytes, ttl: float | None = None, **_options: Any) -> bool:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: no expiry)."""
        if ttl is None:
            return bool(await self._call("SET", self.build_key(key), value))
        milliseconds = max(_MIN_TTL_MS, int(ttl * 1000))
        return bool(await self._call("SET", self.build_key(key), value, "PX", milliseconds))

    async def delete(self, key: str, **_options: Any) -> int:
        """Remove ``key``; 1 if it existed."""
        return int(await self._call("DEL", self.build_key(key)))

    async def multi_get(self, keys: Sequence[str], **_options: Any) -> list[Any]:
        """The values of ``keys``, which must share a slot (tag versions do)."""
        return list(await self._call("MGET", *(self.build_key(key) for key in keys)))

    async def increment(self, key: str, delta: int, **_options: Any) -> int:
        """Add ``delta`` to the counter under ``key``."""
        return int(await self._call("INCRBY", self.build_key(key), delta))

    async def clear(self, namespace: str | None = None, **_options: Any) -> bool:
        """Delete the keys under ``namespace`` on every master, one ``DEL`` per slot."""
        from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415
        from redis.crc import key_slot  # noqa: PLC0415

        prefix = namespace if namespace is not None else self.namespace
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + ":*"
        keys = await self.client.execute_command(
            "KEYS", pattern, target_nodes=RedisCluster.PRIMARIES
        )
        by_slot: defaultdict[int, list[bytes]] = defaultdict(list)
        for key in keys or ():
            by_slot[key_slot(key)].append(key)
        # Entries are spread over nearly every slot: a few DELs at a time, so that the
        # per-node connection limit is never exceeded, and every failure is seen.
        limit = asyncio.Semaphore(_CLEAR_CONCURRENCY)

        async def delete(batch: list[bytes]) -> None:
            async with limit:
                await self._call("DEL", *batch)

        results = await asyncio.gather(
            *(delete(batch) for batch in by_slot.values()), return_exceptions=True
        )
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return True

    async def bump(self, keys: Sequence[str]) -> None:
        """Increment the tag versions ``keys`` (one slot), durably when replicas exist.

        The ``INCRBY`` commands and the ``WAIT`` go in one pipeline to the slot's master:
        ``WAIT`` counts the replicas that received the writes of its own connection, so it
        must share the connection with them (redis-py's cluster pipeline would not promise
        that). A ``MOVED`` reply updates the slot map and the bump is tried once more; a
        connection failure leaves the map to be read again before the next bump.
        """
        from redis.asyncio.cluster import PipelineCommand  # noqa: PLC0415
        from redis.exceptions import (  # noqa: PLC0415
            ConnectionError,  # noqa: A004
            MaxConnectionsError,
            MovedError,
            TimeoutError,  # noqa: A004
        )

        client = self.client
        await client.initialize()
        if self._map_stale:
            await client.nodes_manager.initialize()
            self._map_stale = False
        names = [self.build_key(key) for key in keys]
        for attempt in range(2):
            node = client.get_node_from_key(names[0])
            assert node is not None
            commands = [PipelineCommand(i, "INCRBY", name, 1) for i, name in enumerate(names)]
            wait = self.wait_replicas > 0
            if wait:
                commands.append(
                    PipelineCommand(len(names), "WAIT", self.wait_replicas, self.wait_ms)
                )
            try:
                await node.execute_pipeline(commands)
            except MaxConnectionsError:
                raise Busy("no free connection to the Redis Cluster node") from None
            except (ConnectionError, TimeoutError):
                self._map_stale = True
                raise
            # Only MOVED remaps the slot for good (ASK is a one-off redirection during a
            # migration, which this pipeline cannot follow: the bump fails and is resent).
            moved = next((c.result for c in commands if isinstance(c.result, MovedError)), None)
            if moved is not None and attempt == 0:
                await client.nodes_manager.move_slot(moved)
                continue
            failed = next((c.result for c in commands if isinstance(c.result, Exception)), None)
            if isinstance(failed, ConnectionError | TimeoutError):
                self._map_stale = True
            if failed is not None:
                raise failed
            if wait and as_int(commands[-1].result) < self.wait_replicas:
                await self._check_replicas(node)
            return

    async def _check_replicas(self, node: Any) -> None:
        """Raise ``NotReplicated`` unless ``node`` has no replica connected to wait for."""
        role = await node.execute_command("ROLE")
        if role and role[0] in {b"master", "master"} and len(role) > 2 and role[2]:  # noqa: PLR2004
            raise NotReplicated(
                f"tag invalidation not acknowledged by {self.wait_replicas} replica(s) of "
                f"{node.name} within {self.wait_ms} ms"
            )

    async def close(self) -> None:
        """Close every connection to the cluster."""
        client = self.client
        await client.aclose()
        # aclose() leaves the nodes alone while a slot map refresh is pending (after a
        # connection error); close them in any case.
        await client.nodes_manager.aclose()
        await client.nodes_manager.aclose("startup_nodes")
