"""A small in-process event bus (observer) for lifecycle and alert events."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ttbt5_otel._core.guard import own_logger

_LOG = own_logger("ttbt5_otel.events")
Handler = Callable[..., Any]


class EventBus:
    """Publish named events to subscribed handlers (plain or async).

    A failing handler is logged and does not stop the others or the publisher: an observer
    must never break the code that emits the event.
    """

    def __init__(self) -> None:
        """No subscribers yet."""
        self._handlers: dict[str, list[Handler]] = {}

    def subscribe(self, event: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler(**payload)`` on each ``event`` (``"*"``: every event, with ``event=``).

        Returns a function that unsubscribes.
        """
        self._handlers.setdefault(event, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(event, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    async def publish(self, event: str, **payload: Any) -> int:
        """Deliver ``event``; returns how many handlers ran without error."""
        delivered = 0
        targets = [(h, payload) for h in self._handlers.get(event, [])]
        targets += [(h, {"event": event, **payload}) for h in self._handlers.get("*", [])]
        for handler, arguments in targets:
            try:
                result = handler(**arguments)
                if inspect.isawaitable(result):
                    await result
                delivered += 1
            except Exception:
                _LOG.exception("event handler %r failed for %s", handler, event)
        return delivered
