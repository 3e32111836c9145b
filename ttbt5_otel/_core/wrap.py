"""One wrapper per function kind, shared by every decorator of this package.

The kind (plain, coroutine, generator, async generator) is decided once, at decoration time,
and the wrapper is of the same kind, so ``inspect.iscoroutinefunction`` and friends still
hold. Decorators differ only in their ``CallHooks``; the wrappers never let a hook failure
reach the caller.

For generators the hooks' ``resume``/``suspend`` run around each step, so the span is current
only while the generator's own code runs, not in the consumer between two items.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, Final, Generic, ParamSpec, Protocol, TypeVar, cast

from ttbt5_otel._core.guard import internal_error

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
RERAISE: Final = object()
"""Returned by ``CallHooks.failure`` to let the exception propagate unchanged."""
_NO_STATE: Final = object()


class CallHooks(Protocol[S]):
    """What a decorator does around a call."""

    def enter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> S:
        """Start observing one call."""
        ...

    def resume(self, state: S) -> object:
        """Make the call's context current; returns a token for ``suspend``."""
        ...

    def suspend(self, state: S, token: object) -> None:
        """Undo ``resume``."""
        ...

    def success(self, state: S, result: object) -> None:
        """The call returned (or the generator was exhausted or closed)."""
        ...

    def failure(self, state: S, exc: BaseException) -> object:
        """The call raised; return ``RERAISE`` or a value to return instead."""
        ...


class _Guarded(Generic[S]):
    """Hook calls with instrumentation failures contained (logged once, re-raised in tests)."""

    __slots__ = ("hooks", "where")

    def __init__(self, hooks: CallHooks[S], where: str) -> None:
        self.hooks = hooks
        self.where = where

    def enter(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return self.hooks.enter(args, kwargs)
        except Exception as exc:
            internal_error(self.where, exc)
            return _NO_STATE

    def resume(self, state: Any) -> object:
        if state is _NO_STATE:
            return None
        try:
            return self.hooks.resume(state)
        except Exception as exc:
            internal_error(self.where, exc)
            return None

    def suspend(self, state: Any, token: object) -> None:
        if state is _NO_STATE:
            return
        try:
            self.hooks.suspend(state, token)
        except Exception as exc:
            internal_error(self.where, exc)

    def success(self, state: Any, result: object) -> None:
        if state is _NO_STATE:
            return
        try:
            self.hooks.success(state, result)
        except Exception as exc:
            internal_error(self.where, exc)

    def failure(self, state: Any, exc: BaseException) -> object:
        if state is _NO_STATE:
            return RERAISE
        try:
            return self.hooks.failure(state, exc)
        except Exception as hook_exc:
            internal_error(self.where, hook_exc)
            return RERAISE


def wrap(func: Callable[P, R], hooks: CallHooks[Any], where: str) -> Callable[P, R]:
    """Wrap ``func`` so ``hooks`` observe every call, whatever kind of function it is."""
    guarded: _Guarded[Any] = _Guarded(hooks, where)
    if inspect.isasyncgenfunction(func):
        return cast("Callable[P, R]", _wrap_async_gen(func, guarded))
    if inspect.isgeneratorfunction(func):
        return cast("Callable[P, R]", _wrap_gen(func, guarded))
    if inspect.iscoroutinefunction(func):
        return cast("Callable[P, R]", _wrap_coroutine(func, guarded))
    return _wrap_plain(func, guarded)


def _wrap_plain(func: Callable[P, R], hooks: _Guarded[Any]) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        state = hooks.enter(args, kwargs)
        token = hooks.resume(state)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            hooks.suspend(state, token)
            outcome = hooks.failure(state, exc)
            if outcome is RERAISE:
                raise
            return cast("R", outcome)
        hooks.suspend(state, token)
        hooks.success(state, result)
        return result

    return wrapper


def _wrap_coroutine(func: Callable[..., Any], hooks: _Guarded[Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = hooks.enter(args, kwargs)
        token = hooks.resume(state)
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            hooks.suspend(state, token)
            outcome = hooks.failure(state, exc)
            if outcome is RERAISE:
                raise
            return outcome
        hooks.suspend(state, token)
        hooks.success(state, result)
        return result

    return wrapper


def _wrap_gen(func: Callable[..., Any], hooks: _Guarded[Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = func(*args, **kwargs)
        state = hooks.enter(args, kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = hooks.resume(state)
            try:
                item = gen.send(sent) if thrown is None else gen.throw(thrown)
            except StopIteration as stop:
                hooks.suspend(state, token)
                hooks.success(state, stop.value)
                return stop.value
            except BaseException as exc:
                hooks.suspend(state, token)
                outcome = hooks.failure(state, exc)
                if outcome is RERAISE:
                    raise
                return outcome
            hooks.suspend(state, token)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                token = hooks.resume(state)
                try:
                    gen.close()
                finally:
                    hooks.suspend(state, token)
                    hooks.success(state, None)
                raise
            except BaseException as exc:
                thrown, sent = exc, None

    return wrapper


def _wrap_async_gen(func: Callable[..., Any], hooks: _Guarded[Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = func(*args, **kwargs)
        state = hooks.enter(args, kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = hooks.resume(state)
            try:
                item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
            except StopAsyncIteration:
                hooks.suspend(state, token)
                hooks.success(state, None)
                return
            except BaseException as exc:
                hooks.suspend(state, token)
                if hooks.failure(state, exc) is RERAISE:
                    raise
                return
            hooks.suspend(state, token)
            thrown = None
            try:
                sent = yield item
            except GeneratorExit:
                token = hooks.resume(state)
                try:
                    await agen.aclose()
                finally:
                    hooks.suspend(state, token)
                    hooks.success(state, None)
                raise
            except BaseException as exc:
                thrown, sent = exc, None

    return wrapper


def code_attributes(func: Callable[..., Any]) -> dict[str, str]:
    """``code.function`` and ``code.namespace`` of ``func`` (bounded: one per function)."""
    return {
        "code.function": getattr(func, "__qualname__", getattr(func, "__name__", repr(func))),
        "code.namespace": getattr(func, "__module__", None) or "",
    }
