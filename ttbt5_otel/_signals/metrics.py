"""Metric helpers under the package's meter, with a bounded number of attribute sets.

The Python SDK keeps one aggregation per distinct attribute set for the life of the process,
so an attribute fed from unbounded input (user ids, URLs) grows memory without limit. Every
helper here admits at most ``limit`` distinct attribute sets per instrument; later new sets
are recorded under ``{"otel.metric.overflow": true}``, so totals stay right and memory flat.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, ParamSpec, TypeVar, cast, overload

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.metrics import Histogram as OTelHistogram
from opentelemetry.metrics import UpDownCounter as OTelUpDownCounter
from opentelemetry.metrics._internal.instrument import Gauge as OTelGauge
from opentelemetry.util.types import Attributes

from ttbt5_otel._core.attributes import attributes_of
from ttbt5_otel._core.guard import internal_error, warn_once
from ttbt5_otel._core.limits import OVERFLOW_ATTRIBUTES, cardinality_limit
from ttbt5_otel._core.otel import Lazy, _State, current_generation, meter
from ttbt5_otel._core.scrub import active_scrubber
from ttbt5_otel._core.wrap import RERAISE, code_attributes, wrap

P = ParamSpec("P")
R = TypeVar("R")
_NONE_KEY: Final = ()


class AttributeLimiter:
    """Maps caller attributes to admitted, scrubbed attribute sets; overflow past ``limit``."""

    __slots__ = ("_limit", "_lock", "_name", "_seen", "overflowed")

    def __init__(self, name: str, limit: int | None = None) -> None:
        """Admit at most ``limit`` distinct sets for instrument ``name``.

        Without a ``limit`` of its own the process default applies, read when a new set
        arrives: instruments created at import time still follow ``init()``'s setting.
        """
        self._name = name
        self._limit = limit
        self._seen: dict[Any, Attributes] = {}
        self._lock = threading.Lock()
        self.overflowed = 0

    @property
    def limit(self) -> int:
        """The number of distinct attribute sets admitted before overflow."""
        return cardinality_limit() if self._limit is None else self._limit

    def resolve(self, attributes: Mapping[str, Any] | None) -> Attributes:
        """The attribute set to record for ``attributes``."""
        if not attributes:
            return None
        try:
            key: Any = tuple(attributes.items())
            found = self._seen.get(key)
        except TypeError:  # unhashable values such as lists
            key = tuple((k, repr(v)) for k, v in attributes.items())
            found = self._seen.get(key)
        if found is not None:
            return found
        return self._admit(key, attributes)

    def _admit(self, key: Any, attributes: Mapping[str, Any]) -> Attributes:
        with self._lock:
            found = self._seen.get(key)
            if found is not None:
                return found
            if len(self._seen) >= self.limit:
                self.overflowed += 1
                warn_once(
                    f"overflow:{self._name}",
                    "metric %s exceeded %d attribute sets; further new sets are recorded "
                    "as otel.metric.overflow=true (an attribute probably carries unbounded "
                    "values)",
                    self._name,
                    self.limit,
                )
                return OVERFLOW_ATTRIBUTES
            admitted = active_scrubber().scrub(attributes_of(attributes))
            self._seen[key] = admitted
            return admitted

    def __len__(self) -> int:
        """Number of attribute sets admitted so far."""
        return len(self._seen)


class _Instrument:
    # The per-call path reads these slots directly: a bound OTel instrument, the provider
    # generation it belongs to, and the admitted attribute sets.
    __slots__ = (
        "_factory",
        "_generation",
        "_instrument",
        "_limiter",
        "_seen",
        "description",
        "name",
        "unit",
    )

    def __init__(
        self,
        name: str,
        unit: str,
        description: str,
        factory: Callable[[], Any],
        limit: int | None,
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._factory = factory
        self._instrument: Any = None
        self._generation = -1
        self._limiter = AttributeLimiter(name, limit)
        self._seen = self._limiter._seen  # noqa: SLF001 - shared read-only fast path

    def _bind(self) -> Any:
        self._instrument = self._factory()
        self._generation = current_generation()
        return self._instrument

    def _resolve(self, attributes: Mapping[str, Any] | None) -> Attributes:
        if not attributes:
            return None
        try:
            found = self._seen.get(tuple(attributes.items()))
        except TypeError:
            found = None
        return found if found is not None else self._limiter.resolve(attributes)

    @property
    def attribute_sets(self) -> int:
        """Distinct attribute sets admitted so far."""
        return len(self._limiter)


class _Sums:
    """A counter's cumulative sums per admitted attribute set, read when metrics are collected.

    Keyed by the admitted set's identity: the limiter hands out one object per set for its
    whole life, overflow included.
    """

    __slots__ = ("lock", "totals")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: dict[int, list[Any]] = {}

    def observe(self, options: CallbackOptions) -> list[Observation]:
        del options
        with self.lock:
            return [Observation(total, attributes) for attributes, total in self.totals.values()]


# One set of sums per counter name for the life of the process: two ``counter()`` objects of
# one name add to one series, as two SDK counters of one name do. Each provider generation
# gets one observable counter per name reading them; a meter that already has the name
# keeps its first one (the SDK hands back the registered instrument), which reads the same
# sums.
_sums_by_name: dict[str, _Sums] = {}
# One limiter per name too: the sums are keyed by the admitted sets it hands out, so every
# ``counter(name)`` object shares them and the sums stay within the cardinality limit.
_limiters_by_name: dict[str, AttributeLimiter] = {}
_observed: set[tuple[int, str]] = set()
_sums_lock = threading.Lock()


class BoundedCounter(_Instrument):
    """A monotonic counter; returned by ``counter()``.

    An SDK ``Counter.add`` validates and hashes the attributes on every call. Here the
    admitted attribute sets are already clean, so each add is a plain sum under a lock,
    reported by an observable counter of the same name, unit and description when metrics
    are collected: the same cumulative sum reaches the exporter at a fraction of the cost.
    Unlike an SDK counter it carries no exemplars, and under the ``lowmemory`` temporality
    preference it is exported cumulative (as every observable counter is). Like an SDK
    counter, a forked child goes on from its parent's totals.
    """

    __slots__ = ("_sums",)

    def _bind_sums(self) -> _Sums:
        generation = current_generation()
        with _sums_lock:
            sums = _sums_by_name.setdefault(self.name, _Sums())
            self._limiter = _limiters_by_name.setdefault(self.name, self._limiter)
            self._seen = self._limiter._seen  # noqa: SLF001 - shared read-only fast path
            if (generation, self.name) not in _observed:
                for stale in [key for key in _observed if key[0] != generation]:
                    _observed.discard(stale)
                _observed.add((generation, self.name))
                meter().create_observable_counter(
                    self.name, [sums.observe], unit=self.unit, description=self.description
                )
        self._sums, self._generation = sums, generation
        return sums

    def add(self, amount: float = 1, attributes: Mapping[str, Any] | None = None) -> None:
        """Add a non-negative ``amount`` under ``attributes``."""
        sums = self._sums if self._generation == _State.generation else self._bind_sums()
        if amount < 0:
            warn_once(f"negative:{self.name}", "counter %s ignores negative amounts", self.name)
            return
        admitted: Attributes = None
        if attributes:
            # The admitted-set lookup is inlined: this runs on every call of a hot path.
            try:
                admitted = self._seen.get(tuple(attributes.items()))
            except TypeError:
                admitted = None
            if admitted is None:
                admitted = self._limiter.resolve(attributes)
        with sums.lock:
            entry = sums.totals.get(id(admitted))
            if entry is None:
                sums.totals[id(admitted)] = [admitted, amount]
            else:
                entry[1] += amount


class BoundedUpDownCounter(_Instrument):
    """A counter that may go down; returned by ``up_down_counter()``."""

    __slots__ = ()

    def add(self, amount: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Add ``amount`` (may be negative) under ``attributes``."""
        instrument: OTelUpDownCounter = (
            self._instrument if self._generation == current_generation() else self._bind()
        )
        instrument.add(amount, self._resolve(attributes))


class BoundedHistogram(_Instrument):
    """A histogram; returned by ``histogram()``."""

    __slots__ = ()

    def record(self, value: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Record ``value`` under ``attributes``."""
        instrument: OTelHistogram = (
            self._instrument if self._generation == _State.generation else self._bind()
        )
        if not attributes:
            instrument.record(value)
            return
        try:
            found = self._seen.get(tuple(attributes.items()))
        except TypeError:
            found = None
        instrument.record(value, found if found is not None else self._limiter.resolve(attributes))


class BoundedGauge(_Instrument):
    """A synchronous gauge (last value wins); returned by ``gauge()``."""

    __slots__ = ()

    def set(self, value: float, attributes: Mapping[str, Any] | None = None) -> None:
        """Set the current ``value`` under ``attributes``."""
        instrument: OTelGauge = (
            self._instrument if self._generation == current_generation() else self._bind()
        )
        instrument.set(value, self._resolve(attributes))


def counter(
    name: str, *, unit: str = "1", description: str = "", cardinality_limit: int | None = None
) -> BoundedCounter:
    """A counter named ``name`` (OTel naming: dots, UCUM ``unit``, no ``_total``)."""
    return BoundedCounter(
        name,
        unit,
        description,
        lambda: meter().create_counter(name, unit=unit, description=description),
        cardinality_limit,
    )


def up_down_counter(
    name: str, *, unit: str = "1", description: str = "", cardinality_limit: int | None = None
) -> BoundedUpDownCounter:
    """An up-down counter named ``name``."""
    return BoundedUpDownCounter(
        name,
        unit,
        description,
        lambda: meter().create_up_down_counter(name, unit=unit, description=description),
        cardinality_limit,
    )


def histogram(
    name: str, *, unit: str = "s", description: str = "", cardinality_limit: int | None = None
) -> BoundedHistogram:
    """A histogram named ``name``; unit ``s`` gets seconds-scale buckets."""
    return BoundedHistogram(
        name,
        unit,
        description,
        lambda: meter().create_histogram(name, unit=unit, description=description),
        cardinality_limit,
    )


def gauge(
    name: str, *, unit: str = "1", description: str = "", cardinality_limit: int | None = None
) -> BoundedGauge:
    """A synchronous gauge named ``name``."""
    return BoundedGauge(
        name,
        unit,
        description,
        lambda: meter().create_gauge(name, unit=unit, description=description),
        cardinality_limit,
    )


OPERATION_DURATION: Final = "ttbt5.operation.duration"
_operation_duration: Lazy[OTelHistogram] = Lazy(
    lambda: meter().create_histogram(
        OPERATION_DURATION, unit="s", description="Duration of monitored operations."
    )
)


class _DurationHooks:
    __slots__ = ("_error", "_ok")

    def __init__(self, base: dict[str, Any]) -> None:
        # Precomputed per function: the attribute sets are bounded by construction.
        self._ok = {**base, "outcome": "success"}
        self._error = {**base, "outcome": "error"}

    def enter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> float:
        del args, kwargs
        return time.perf_counter()

    def resume(self, state: float) -> object:
        del state
        return None

    def suspend(self, state: float, token: object) -> None:
        del state, token

    def record(self, start: float, exc: BaseException | None) -> None:
        elapsed = time.perf_counter() - start
        ok = exc is None or isinstance(exc, GeneratorExit)
        try:
            _operation_duration.get().record(elapsed, self._ok if ok else self._error)
        except Exception as hook_exc:
            internal_error("monitor_performance", hook_exc)

    def success(self, state: float, result: object) -> None:
        del result
        self.record(state, None)

    def failure(self, state: float, exc: BaseException) -> object:
        self.record(state, exc)
        return RERAISE


def _is_generator_function(fn: Callable[..., Any]) -> bool:
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


# Plain and coroutine functions, by far the common case, get a wrapper without the generic
# hook indirection: this path runs on every call of a monitored function.
def _timed_plain(fn: Callable[P, R], hooks: _DurationHooks) -> Callable[P, R]:
    clock = time.perf_counter

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        start = clock()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            hooks.record(start, exc)
            raise
        hooks.record(start, None)
        return result

    return wrapper


def _timed_coroutine(fn: Callable[..., Any], hooks: _DurationHooks) -> Callable[..., Any]:
    clock = time.perf_counter

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            hooks.record(start, exc)
            raise
        hooks.record(start, None)
        return result

    return wrapper


@overload
def monitor_performance(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def monitor_performance(
    *, name: str | None = None, attributes: Mapping[str, Any] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def monitor_performance(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each call's duration in ``ttbt5.operation.duration`` (seconds).

    Attributes: ``code.function`` (``name`` or the qualified name), ``code.namespace`` and
    ``outcome`` (``success``/``error``), plus the static ``attributes``. The histogram's count
    is the call counter (``ttbt5_operation_duration_seconds_count`` in Prometheus). For
    generators the duration runs from the first item to exhaustion.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        base: dict[str, Any] = {**code_attributes(fn), **attributes_of(attributes or {})}
        if name:
            base["code.function"] = name
        base = active_scrubber().scrub(base)
        hooks = _DurationHooks(base)
        if inspect.iscoroutinefunction(fn):
            return cast("Callable[P, R]", _timed_coroutine(fn, hooks))
        if _is_generator_function(fn):
            return wrap(fn, hooks, f"monitor_performance({base['code.function']})")
        return _timed_plain(fn, hooks)

    if func is not None:
        return decorate(func)
    return decorate
