"""Which cache the guide's ``@cached(...)`` uses when it names none, and the lazy binding.

The guide decorates functions without naming a cache, usually at import time, before the
application has built its caches. So the cache is chosen at the function's *first call*, in
this order: the one given to ``set_default_cache``; else the most recently built
``HierarchicalCache``; else the most recently built ``CacheManager``; else
``CacheConfigError`` (never an uncached call that looks cached). From then on the function
is the native ``cached`` wrapper of that cache's native ``HierarchicalCache``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from ttbt5_otel._cache.decorator import cached as native_cached
from ttbt5_otel._cache.hierarchical import HierarchicalCache as NativeHierarchicalCache
from ttbt5_otel._cache.keys import function_name
from ttbt5_otel._exceptions import CacheConfigError

_F = TypeVar("_F", bound=Callable[..., Any])


class GuideCache(Protocol):
    """A ``CacheManager`` or ``HierarchicalCache`` of the guide."""

    @property
    def native(self) -> NativeHierarchicalCache:
        """The native cache doing the work."""
        ...


_lock = threading.Lock()
_explicit: GuideCache | None = None
# Weak: a cache the application dropped must not be revived as the default.
_latest: dict[str, weakref.ref[GuideCache]] = {}


def built(cache: GuideCache, kind: str) -> None:
    """Remember ``cache`` as the latest of ``kind`` (``hierarchical`` or ``manager``)."""
    with _lock:
        _latest[kind] = weakref.ref(cache)


def set_default_cache(cache: GuideCache | None) -> None:
    """Make ``cache`` the one ``@cached`` uses when it names none (``None``: back to latest).

    Functions already called keep the cache they were bound to at their first call.
    """
    global _explicit  # noqa: PLW0603 - one process-wide default, like the guide's
    with _lock:
        _explicit = cache


def default_cache() -> GuideCache | None:
    """The cache ``@cached`` without a cache binds to now (see the module docstring)."""
    with _lock:
        if _explicit is not None:
            return _explicit
        for kind in ("hierarchical", "manager"):
            ref = _latest.get(kind)
            found = ref() if ref is not None else None
            if found is not None:
                return found
    return None


def as_tags(tags: str | Iterable[str] | None) -> tuple[str, ...]:
    """Tags as the native API takes them: a set's order is made stable, a string is one tag."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        return (tags,)
    return tuple(sorted(set(tags)))


class _Binding:
    """The native ``cached`` wrapper of one function, made at its first call."""

    __slots__ = ("_bound", "_cache", "_fn", "_lock", "_options")

    def __init__(self, fn: Callable[..., Any], cache: GuideCache | None, options: Any) -> None:
        self._fn = fn
        self._cache = cache
        self._options = options
        self._bound: Any = None
        self._lock = threading.Lock()

    def target(self) -> Any:
        bound = self._bound
        if bound is None:
            with self._lock:
                if self._bound is None:
                    self._bound = native_cached(self._resolve().native, **self._options)(self._fn)
                bound = self._bound
        return bound

    def _resolve(self) -> GuideCache:
        cache = self._cache or default_cache()
        if cache is None:
            raise CacheConfigError(
                f"cached({function_name(self._fn)}): no cache to use; build a CacheManager or "
                "HierarchicalCache before the first call, call set_default_cache(...), or "
                "pass cache=..."
            )
        return cache


def lazy_cached(cache: GuideCache | None, options: dict[str, Any]) -> Callable[[_F], _F]:
    """A decorator binding each function to its cache at the first call (module docstring)."""

    def decorate(fn: _F) -> _F:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            # Said now rather than at the first call, as the native decorator does.
            raise CacheConfigError(
                f"cached({function_name(fn)}): generator functions cannot be cached"
            )
        binding = _Binding(fn, cache, options)
        wrapper: Any
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await binding.target()(*args, **kwargs)

        else:

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return binding.target()(*args, **kwargs)

        # The native wrapper's helpers, reached through the binding.
        wrapper.cache_key = lambda *a, **k: binding.target().cache_key(*a, **k)
        wrapper.invalidate = lambda *a, **k: binding.target().invalidate(*a, **k)
        wrapper.warm = lambda calls: binding.target().warm(calls)
        return wrapper  # type: ignore[no-any-return]

    return decorate
