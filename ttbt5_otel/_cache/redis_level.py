"""The shared level: Redis through aiocache's Redis backend.

Entries live under ``<namespace>:e:<key>`` and tag versions under ``<namespace>:t:<tag>``,
so ``clear()`` can drop entries without resetting tag versions (a reset could make an old
entry elsewhere look current again). Values are encoded by this package's serializer and
handed to aiocache as bytes (aiocache's ``NullSerializer`` without decoding), so the
serializer choice is explicit: strict JSON unless ``PickleSerializer`` is asked for.

Under load the level is bounded: at most ``pool_max_size`` operations hold a connection at
once, and the others queue for one (see ``RedisCache._run`` for how that wait shares the
operation's ``timeout``) instead of failing with ``MaxConnectionsError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Final, TypeVar
from urllib.parse import unquote, urlsplit

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.outage import Busy
from ttbt5_otel._cache.serialization import Serializer
from ttbt5_otel._cache.store import RemoteLevel, as_int
from ttbt5_otel._exceptions import CacheConfigError

_MIN_TTL_MS = 1
_T = TypeVar("_T")

DEFAULT_POOL_MAX_SIZE: Final = 50
"""Connections per level. One event loop cannot use many: on loopback a single connection
served 1,000 concurrent callers within 0.3 s (benchmarks/bench_redis_load.py), and 50
covers a remote Redis with a millisecond of round trip (50,000 operations/s, more than one
loop issues) while staying far below Redis's ``maxclients`` (10,000) with many processes."""

_FAIR_SHARE: Final = 0.5
"""A timed-out command counts as Redis failing only if it had this share of ``timeout``."""


class RedisCache(RemoteLevel):
    """A Redis cache level (L2), shared by every process using the same Redis and namespace.

    Args:
        endpoint: Redis host.
        port: Redis port.
        db: database number.
        password: Redis password, if any.
        namespace: prefix of every key this level writes.
        timeout: seconds each operation may take, from the call to the answer, including
            any wait for a free connection, before it counts as failed and the caller falls
            through (also the socket timeout).
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
    """

    level: ClassVar[CacheLevel] = CacheLevel.L2

    def __init__(
        self,
        *,
        endpoint: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        password: str | None = None,
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
        super().__init__(name, serializer)
        self.namespace = namespace
        self.timeout = timeout
        self.pool_max_size = pool_max_size
        # One slot per connection: holding a slot guarantees the pool has a connection for
        # the operation, so the wait for one happens here, where its time is known.
        self._slots = asyncio.Semaphore(pool_max_size)
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
        """A level for ``redis://[:password@]host[:port][/db]``; ``options`` as for the class."""
        return cls(**url_options(url), **options)

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
        async def bump_all() -> None:
            for tag in tags:
                await self.backend.increment("t:" + tag, 1, timeout=0)

        await self._run(bump_all)

    async def close(self) -> None:
        """Close the connection pool."""
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
        raise CacheConfigError(f"url: expected redis://host:port/db, got {url!r}")
    path = parts.path.strip("/")
    return {
        "endpoint": parts.hostname or "127.0.0.1",
        "port": parts.port or 6379,
        "db": int(path) if path else 0,
        "password": unquote(parts.password) if parts.password else None,
    }
