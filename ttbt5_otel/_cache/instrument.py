"""``instrument_cache``: correct hit, miss, error and latency metrics for an aiocache cache.

aiocache's ``get`` returns ``default`` both for a missing key and for a stored ``None``, so
nothing above the backend can tell them apart (its ``HitMissRatioPlugin`` counts a stored
``None`` as a miss). This wraps the instance's ``get``/``multi_get``/``set``/``exists``/
``delete`` and, underneath, its raw backend reads: the raw read reports whether the key was
present (a ``None`` from the backend can still be a stored ``None`` in the in-memory
backend, which keeps values unserialized, so its dict is asked too) to the public call
that is running, through a context variable.

Counting: each key read by ``get``/``multi_get`` is a hit or a miss; any operation that
raises (backend error, aiocache timeout) counts as ``cache.result=error`` and the exception
propagates unchanged; every operation's latency goes to ``ttbt5.cache.operation.duration``.
``exists`` is not a lookup of a value and is not counted as a hit or miss.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from ttbt5_otel._cache.entry import CacheLevel
from ttbt5_otel._cache.telemetry import Counts, record_duration, track

_C = TypeVar("_C")
_MARK: Final = "_ttbt5_cache_counts"
_WRAPPED: Final = ("set", "exists", "delete")


class _Probe:
    __slots__ = ("found",)

    def __init__(self) -> None:
        self.found: list[bool] = []


_probe: contextvars.ContextVar[_Probe | None] = contextvars.ContextVar(
    "ttbt5_cache_probe", default=None
)


def _stored(cache: Any, key: Any) -> bool:
    store = getattr(cache, "_cache", None)
    return isinstance(store, dict) and key in store


def _default_level(cache: Any) -> CacheLevel:
    return CacheLevel.L1 if isinstance(getattr(cache, "_cache", None), dict) else CacheLevel.L2


def _wrap_raw(cache: Any) -> None:
    raw_get, raw_multi_get = cache._get, cache._multi_get  # noqa: SLF001 - the raw reads

    @functools.wraps(raw_get)
    async def get(key: Any, *args: Any, **kwargs: Any) -> Any:
        value = await raw_get(key, *args, **kwargs)
        probe = _probe.get()
        if probe is not None:
            probe.found.append(value is not None or _stored(cache, key))
        return value

    @functools.wraps(raw_multi_get)
    async def multi_get(keys: Any, *args: Any, **kwargs: Any) -> Any:
        values = await raw_multi_get(keys, *args, **kwargs)
        probe = _probe.get()
        if probe is not None:
            probe.found.extend(
                v is not None or _stored(cache, k) for k, v in zip(keys, values, strict=False)
            )
        return values

    cache._get, cache._multi_get = get, multi_get  # noqa: SLF001


def _wrap_read(
    method: Callable[..., Coroutine[Any, Any, Any]], counts: Counts, operation: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(method)
    async def read(*args: Any, **kwargs: Any) -> Any:
        probe = _Probe()
        token = _probe.set(probe)
        started = time.perf_counter()
        try:
            result = await method(*args, **kwargs)
        except Exception:
            counts.errors += 1
            raise
        finally:
            _probe.reset(token)
            record_duration(counts, operation, started)
        hits = sum(probe.found)
        counts.hits += hits
        if operation == "get":
            counts.misses += 1 - min(hits, 1)
        else:
            counts.misses += len(args[0] if args else kwargs.get("keys", ())) - hits
        return result

    return read


def _wrap_other(
    method: Callable[..., Coroutine[Any, Any, Any]], counts: Counts, operation: str
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except Exception:
            counts.errors += 1
            raise
        finally:
            record_duration(counts, operation, started)

    return call


def instrument_cache(cache: _C, *, name: str, level: CacheLevel | str | None = None) -> _C:
    """Report an existing aiocache cache's hits, misses, errors and latency; returns it.

    Args:
        cache: an aiocache cache instance (``SimpleMemoryCache``, ``RedisCache``, ...).
        name: the ``cache.name`` attribute.
        level: the ``cache.level`` attribute (default ``l1`` for the in-memory backend,
            ``l2`` otherwise).

    A stored ``None`` counts as a hit, a missing key as a miss even when ``get`` returns a
    default, and an operation that raises as an error (the exception is re-raised
    unchanged). Instrumenting the same instance again changes nothing.
    """
    target: Any = cache
    if getattr(target, _MARK, None) is not None:
        return cache
    counts = Counts(name, CacheLevel(level).value if level else _default_level(target).value)
    _wrap_raw(target)
    target.get = _wrap_read(target.get, counts, "get")
    target.multi_get = _wrap_read(target.multi_get, counts, "multi_get")
    for operation in _WRAPPED:
        setattr(target, operation, _wrap_other(getattr(target, operation), counts, operation))
    setattr(target, _MARK, counts)
    track(target, counts)
    return cache
