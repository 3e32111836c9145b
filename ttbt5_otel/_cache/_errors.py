"""Exceptions raised by the cache package.

Ttbt5Error
└── CacheError                          a cache could not do what was asked
├── CacheSerializationError(TypeError)  a value cannot be stored by the serializer
└── CacheConfigError(ValueError)        a cache option or combination is invalid
"""

from __future__ import annotations

from ttbt5_otel._exceptions import Ttbt5Error


class CacheError(Ttbt5Error):
    """Base class of the errors caches raise on purpose."""


class CacheSerializationError(CacheError, TypeError):
    """A value cannot be written to a shared cache level without changing it.

    Attributes:
        cache: name of the cache the value was written to.
        owner: qualified name of the cached function, or ``None`` for a direct ``set``.
        value_type: name of the offending type.
        path: where in the value the type was found (``$`` is the value itself).
    """

    def __init__(
        self, cache: str, owner: str | None, value_type: str, path: str, hint: str
    ) -> None:
        """Describe an unstorable ``value_type`` found at ``path``."""
        where = f"function {owner} (cache {cache!r})" if owner else f"cache {cache!r}"
        super().__init__(f"{where}: value of type {value_type} at {path} cannot be stored: {hint}")
        self.cache = cache
        self.owner = owner
        self.value_type = value_type
        self.path = path

    def __reduce__(
        self,
    ) -> tuple[type[CacheSerializationError], tuple[str, str | None, str, str, str]]:
        """Pickle with the constructor's arguments."""
        hint = str(self).split(": ", 2)[-1]
        return (type(self), (self.cache, self.owner, self.value_type, self.path, hint))


class CacheConfigError(CacheError, ValueError):
    """A cache option is invalid; the message names the option."""
