"""The guide's ``src.patterns.dependency_injection``: a name registry over the app context.

A ``DIContainer`` keeps what is registered until it is given to the application context
(``context.set_container(container)``); from then on it *is* the context's dependency
registry (``ttbt5_otel.get_application_context().register`` / ``get``): its entries move
there, later registrations go there, and ``context.get_dependency(name)`` finds them.

What the guide's container did that this one does not: it builds nothing. ``register``
stores the object it is given (a class is stored as the class, not instantiated), so
register instances, as the guide's examples do.
"""

from __future__ import annotations

from typing import TypeVar

from ttbt5_otel._app.context import ApplicationContext
from ttbt5_otel._exceptions import DependencyNotFoundError

__all__ = ["DIContainer", "DependencyNotFoundError"]

_T = TypeVar("_T")


class DIContainer:
    """Dependencies by name (or type), backed by the application context once attached."""

    def __init__(self) -> None:
        """An empty container, not yet attached to a context."""
        # Until attached, a private context is the registry, so lookups behave the same.
        self._registry = ApplicationContext()
        self._attached = False

    def register(self, name: str | type[_T], instance: _T) -> None:
        """Register ``instance`` under ``name`` (a string or a type)."""
        self._registry.register(name, instance)

    def get(self, name: str | type[_T]) -> _T:
        """The dependency registered as ``name``.

        Raises:
            DependencyNotFoundError: nothing is registered there (a ``LookupError``).
        """
        return self._registry.get(name)

    resolve = get
    """The guide's name for ``get``."""

    def attach(self, context: ApplicationContext) -> None:
        """Make ``context``'s registry this container's (what ``set_container`` does)."""
        if self._registry is context:
            return
        if self._attached:
            raise ValueError("this DIContainer already backs another application context")
        for key, instance in self._registry.dependencies.items():
            context.register(key, instance)
        self._registry = context
        self._attached = True
