"""The shared level: Redis through aiocache's Redis backend.

Entries live under ``<namespace>:e:<key>`` and tag versions under ``<namespace>:t:<tag>``,
so ``clear()`` can drop entries without resetting tag versions (a reset could make an old
entry elsewhere look current again). Values are encoded by this package's serializer and
handed to aiocache as bytes (aiocache's ``NullSerializer`` without decoding), so the
serializer choice is explicit: strict JSON unless ``PickleSerializer`` is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.serialization import Serializer
from ttbt5_otel._cache.store import RemoteLevel, as_int
from ttbt5_otel._exceptions import CacheConfigError

_MIN_TTL_MS = 1


class RedisCache(RemoteLevel):
    """A Redis cache level (L2), shared by every process using the same Redis and namespace.

    Args:
        endpoint: Redis host.
        port: Redis port.
        db: database number.
        password: Redis password, if any.
        namespace: prefix of every key this level writes.
        timeout: seconds each operation may take before it counts as failed (aiocache's
            per-operation timeout; also the socket timeout).
        connect_timeout: seconds to establish a connection (default ``timeout``).
        pool_max_size: most connections in the pool (default unbounded).
        serializer: ``JsonSerializer()`` (default) or ``PickleSerializer()`` (see its
            warning).
        name: the ``cache.name`` attribute; a ``HierarchicalCache`` names unnamed levels.
        backend: an existing ``aiocache.RedisCache`` to use instead of creating one; its
            serializer must pass bytes through (``NullSerializer(encoding=None)``).
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
        pool_max_size: int | None = None,
        serializer: Serializer | None = None,
        name: str | None = None,
        backend: Any = None,
    ) -> None:
        """Configure the connection; nothing connects until the first operation."""
        if timeout <= 0:
            raise CacheConfigError(f"timeout: must be positive, got {timeout}")
        super().__init__(name, serializer)
        self.namespace = namespace
        if backend is None:
            # Imported on use: aiocache pulls in the redis client, which costs tens of
            # milliseconds at start-up for applications that never use this level.
            import aiocache  # noqa: PLC0415
            from aiocache.serializers import NullSerializer  # noqa: PLC0415
            from redis.asyncio.retry import Retry  # noqa: PLC0415 - the redis extra is optional
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
                # The per-operation timeout bounds each call; client-side retries with
                # backoff would only turn a refused connection into a slow one.
                connection_pool_kwargs={"socket_timeout": timeout, "retry": Retry(NoBackoff(), 0)},
            )
        self.backend = backend

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisCache:
        """A level for ``redis://[:password@]host[:port][/db]``; ``options`` as for the class."""
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise CacheConfigError(f"url: expected redis://host:port/db, got {url!r}")
        path = parts.path.strip("/")
        return cls(
            endpoint=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(path) if path else 0,
            password=unquote(parts.password) if parts.password else None,
            **options,
        )

    async def _get(self, key: str) -> bytes | None:
        data = await self.backend.get("e:" + key)
        return None if data is None else bytes(data)

    async def _set(self, key: str, data: bytes, ttl: float | None) -> None:
        if ttl is None:
            await self.backend.set("e:" + key, data, ttl=None)
        else:
            # aiocache sends float TTLs as milliseconds; keep at least one.
            await self.backend.set("e:" + key, data, ttl=max(float(ttl), _MIN_TTL_MS / 1000))

    async def _delete(self, key: str) -> bool:
        return bool(await self.backend.delete("e:" + key))

    async def _clear(self) -> None:
        await self.backend.clear(namespace=f"{self.namespace}:e")

    async def _versions(self, tags: Sequence[str]) -> dict[str, int]:
        values = await self.backend.multi_get(["t:" + tag for tag in tags])
        return {tag: as_int(value) for tag, value in zip(tags, values, strict=True)}

    async def _bump(self, tags: Sequence[str]) -> None:
        for tag in tags:
            await self.backend.increment("t:" + tag, 1)

    async def close(self) -> None:
        """Close the connection pool."""
        client = getattr(self.backend, "client", None)
        if client is not None and hasattr(client, "aclose"):
            # aiocache's close() calls redis-py's deprecated close().
            await client.aclose()
        else:
            await self.backend.close()
