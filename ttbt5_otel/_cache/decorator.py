"""``cached``: cache the results of async and sync functions in a ``HierarchicalCache``.

Async functions may use any cache. Sync functions can only use a memory-only cache (an L1
and nothing else): a shared level would mean network or disk I/O on the caller's thread,
possibly inside an event loop, so ``cached`` refuses the combination at decoration time
with ``CacheConfigError`` (make the function async, or give it a memory-only cache).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, Protocol, TypeAlias, TypeVar, overload

from ttbt5_otel._cache.hierarchical import HierarchicalCache
from ttbt5_otel._cache.keys import KeyBuilder, function_name
from ttbt5_otel._cache.memory import MemoryCache
from ttbt5_otel._exceptions import CacheConfigError

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
Tags: TypeAlias = Sequence[str] | Callable[..., Iterable[str]]
Calls: TypeAlias = Iterable[tuple[Any, ...] | Mapping[str, Any]] | Mapping[str, Any]


class CachedAsyncFunction(Protocol[P, R_co]):
    """An async function wrapped by ``cached``."""

    cache: HierarchicalCache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]:
        """Return the cached result, or run the function once for all concurrent callers."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments is stored under."""
        ...

    async def warm(self, calls: Calls) -> int:
        """Pre-load: argument tuples / keyword mappings to call, or ``{key: value}``."""
        ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry of a call with these arguments from every level."""
        ...


class CachedSyncFunction(Protocol[P, R_co]):
    """A sync function wrapped by ``cached`` (memory-only caches)."""

    cache: HierarchicalCache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co:
        """Return the cached result, or run the function once for all concurrent threads."""
        ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """The key a call with these arguments is stored under."""
        ...

    def warm(self, calls: Calls) -> int:
        """Pre-load: argument tuples / keyword mappings to call, or ``{key: value}``."""
        ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry of a call with these arguments."""
        ...


def _split(call: tuple[Any, ...] | Mapping[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return ((), dict(call)) if isinstance(call, Mapping) else (tuple(call), {})


class _Cached:
    """What one decorated function needs at call time, shared by both wrappers."""

    def __init__(
        self,
        cache: HierarchicalCache,
        fn: Callable[..., Any],
        ttl: float | None,
        tags: Tags,
        key: Callable[..., str] | None,
        stale: float,
    ) -> None:
        self.cache = cache
        self.fn = fn
        self.ttl = ttl
        self.stale = stale
        self.owner = function_name(fn)
        self._tags = tags
        builder = KeyBuilder(fn)
        self.key: Callable[[tuple[Any, ...], dict[str, Any]], str] = (
            builder if key is None else (lambda args, kwargs: key(*args, **kwargs))
        )

    def tags(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Sequence[str]:
        return list(self._tags(*args, **kwargs)) if callable(self._tags) else self._tags

    async def load(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cache = self.cache
        # Versions are read before the function runs: an invalidation during the load
        # leaves the stored entry already stale.
        snapshot = await cache.tags.snapshot(self.tags(args, kwargs))
        value = await self.fn(*args, **kwargs)
        await cache.store(key, value, self.ttl, snapshot, self.owner, self.stale)
        return value

    def load_sync(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cache = self.cache
        tags = self.tags(args, kwargs)
        snapshot: tuple[dict[str, int], dict[str, int]] = ({}, cache.tags.local_snapshot(tags))
        value = self.fn(*args, **kwargs)
        entry, keep = cache.make_entry(value, self.ttl, snapshot, 0.0)
        cache.store_sync(key, entry, keep)
        return value


def _async_wrapper(state: _Cached) -> Callable[..., Any]:
    cache, flights = state.cache, state.cache.flights

    @functools.wraps(state.fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = state.key(args, kwargs)
        entry = await cache.lookup(key)
        if entry is not None:
            if entry.fresh_until is None or cache.is_fresh(entry):
                return entry.value
            # Stale but within the revalidation window: answer now, refresh behind.
            flights.refresh(key, lambda: state.load(key, args, kwargs))
            return entry.value
        return await flights.run(key, lambda: state.load(key, args, kwargs))

    async def warm(calls: Calls) -> int:
        if isinstance(calls, Mapping):
            return await cache.warm(calls, ttl=state.ttl)
        count = 0
        for call in calls:
            args, kwargs = _split(call)
            key = state.key(args, kwargs)
            await flights.run(key, functools.partial(state.load, key, args, kwargs))
            count += 1
        return count

    async def invalidate(*args: Any, **kwargs: Any) -> bool:
        return await cache.delete(state.key(args, kwargs))

    _attach(wrapper, state, warm, invalidate)
    return wrapper


def _sync_wrapper(state: _Cached) -> Callable[..., Any]:
    cache, flights = state.cache, state.cache.flights

    @functools.wraps(state.fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = state.key(args, kwargs)
        entry = cache.lookup_sync(key)
        if entry is not None and (entry.fresh_until is None or cache.is_fresh(entry)):
            return entry.value
        return flights.run_sync(key, lambda: state.load_sync(key, args, kwargs))

    def warm(calls: Calls) -> int:
        if isinstance(calls, Mapping):
            snapshot: tuple[dict[str, int], dict[str, int]] = ({}, {})
            for key, value in calls.items():
                cache.store_sync(key, *cache.make_entry(value, state.ttl, snapshot, 0.0))
            return len(calls)
        count = 0
        for call in calls:
            args, kwargs = _split(call)
            key = state.key(args, kwargs)
            flights.run_sync(key, functools.partial(state.load_sync, key, args, kwargs))
            count += 1
        return count

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        assert cache.l1 is not None
        return cache.l1.delete(state.key(args, kwargs))

    _attach(wrapper, state, warm, invalidate)
    return wrapper


def _attach(wrapper: Any, state: _Cached, warm: Any, invalidate: Any) -> None:
    wrapper.cache = state.cache
    wrapper.cache_key = lambda *args, **kwargs: state.key(args, kwargs)
    wrapper.warm = warm
    wrapper.invalidate = invalidate


class CacheDecorator:
    """What ``cached(...)`` returns: applied to a function, it caches that function's results."""

    def __init__(self, cache: HierarchicalCache, options: dict[str, Any]) -> None:
        """Remember the cache and the options of ``cached``."""
        self.cache = cache
        self.options = options

    @overload
    def __call__(  # type: ignore[overload-overlap]  # coroutine functions match first
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> CachedAsyncFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> CachedSyncFunction[P, R]: ...

    def __call__(self, fn: Callable[..., Any]) -> Any:
        name = function_name(fn)
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise CacheConfigError(f"cached({name}): generator functions cannot be cached")
        state = _Cached(self.cache, fn, **self.options)
        if inspect.iscoroutinefunction(fn):
            return _async_wrapper(state)
        if self.cache.remote or self.cache.l1 is None:
            raise CacheConfigError(
                f"cached({name}): a sync function can only use a memory-only cache (L1 "
                f"only), but {self.cache.name!r} has levels {[str(v) for v in self.cache.levels]}; "
                "make the function async or give it a MemoryCache"
            )
        if state.stale:
            raise CacheConfigError(
                f"cached({name}): stale_while_revalidate needs an async function "
                "(the refresh runs as a background task)"
            )
        return _sync_wrapper(state)


def cached(
    cache: HierarchicalCache | MemoryCache,
    *,
    ttl: float | None = None,
    tags: Tags = (),
    key: Callable[..., str] | None = None,
    stale_while_revalidate: float = 0.0,
) -> CacheDecorator:
    """Cache a function's results in ``cache``, loading each key once however many callers.

    Args:
        cache: a ``HierarchicalCache``, or a ``MemoryCache`` used as its only level.
        ttl: seconds a result stays fresh (default: the cache's ``ttl``).
        tags: tags of every result, or a callable receiving the call's arguments and
            returning its tags; ``cache.invalidate_tags(tag)`` drops them everywhere.
        key: custom key builder receiving the call's arguments; by default
            ``module.qualname:<canonical JSON of the bound arguments>`` (sha256 when long).
        stale_while_revalidate: seconds after ``ttl`` during which a stale result is
            returned at once while one background task refreshes it (async only).

    Returns:
        A decorator. The wrapped function keeps its kind (``async def`` stays a coroutine
        function) and gains ``cache``, ``cache_key(*args, **kwargs)``, ``warm(calls)`` and
        ``invalidate(*args, **kwargs)``.
    """
    if stale_while_revalidate < 0:
        raise CacheConfigError(
            f"stale_while_revalidate: must be >= 0, got {stale_while_revalidate}"
        )
    if isinstance(cache, MemoryCache):
        cache = _memory_only(cache)
    options = {"ttl": ttl, "tags": tags, "key": key, "stale": stale_while_revalidate}
    return CacheDecorator(cache, options)


def _memory_only(l1: MemoryCache) -> HierarchicalCache:
    # One HierarchicalCache per MemoryCache, so functions sharing the memory cache share
    # tag epochs and in-flight loads too. No jitter: there is no fleet of processes whose
    # entries could expire in step.
    if not isinstance(l1.hierarchical, HierarchicalCache):
        l1.hierarchical = HierarchicalCache(l1.name, l1=l1, ttl_jitter=0.0)
    return l1.hierarchical
