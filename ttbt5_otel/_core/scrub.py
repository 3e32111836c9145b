"""Redact secrets before they leave the process: by attribute name and by value.

Two kinds of rule:

- **names** (case-insensitive substring of an attribute or field name: ``password``,
  ``token``, ``authorization``, ...): the whole value is replaced;
- **values** (``secret_values``): a credential recognised inside any string, whatever its
  key (a URL's userinfo, ``Bearer ...``, a JWT, a cloud key, ``password=...`` in a query or
  a rendered dict, a private-key block): only the credential is replaced, so the rest of a
  span name, log line or stack trace stays readable.

The marker never repeats any part of the secret. A user callback sees every match (where,
which key, which rule, the text) and may keep it, redact it, drop the attribute, or put its
own text in its place. A callback that raises counts as "redact": failing closed.

Strings already found clean are remembered (up to a bound), so the attribute values that
repeat on every span (routes, methods, library names) cost one dictionary lookup; so do
names known not to be secret, and such a name holding a number or a clean string, no call.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes

from ttbt5_otel._core.secret_values import find_secrets

_LOG = logging.getLogger("ttbt5_otel")
REDACTED: Final = "[REDACTED]"
_MAX_CACHED_KEYS: Final = 10_000
_MAX_CLEAN_VALUES: Final = 8_192
_MAX_CLEAN_LENGTH: Final = 512
_NAME_RULE: Final = "name"
_NUMBERS: Final = frozenset({int, float, bool})  # no value rule can change them

DEFAULT_SECRET_PATTERNS: Final[tuple[str, ...]] = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "auth_header",
    "cookie",
    "session",
    "credential",
    "private_key",
    "set-cookie",
    "x-api-key",
    "access_key",
    "subscription-key",
    "subscription_key",
    "functions-key",
)
# Short words that are secrets only as a whole name segment: `pw`, `db.pass`, `arg.pin`;
# as substrings they would match `upward`, `compass`, `spinner`.
_SHORT_NAME_SEGMENTS: Final = r"(?:^|[._-])(?:pw|pass|pin|sig|sas|jwt|dsn)$"


class ScrubAction(enum.Enum):
    """What a scrub callback wants done with one match."""

    KEEP = "keep"
    """Leave the matched text as it is."""
    REDACT = "redact"
    """Replace the matched text with the marker (what happens without a callback)."""
    DROP = "drop"
    """Remove the whole attribute; for a span name or log body, replace the whole text."""


@dataclass(frozen=True, slots=True)
class ScrubMatch:
    """One secret found on its way out, as shown to a scrub callback."""

    location: str
    """Where it was found: ``span.name``, ``span.attribute``, ``span.event``, ``span.link``,
    ``span.status``, ``log.body``, ``log.attribute``, ``metric.attribute`` or ``resource``."""
    key: str | None
    """The attribute or field name (dotted for nested fields), ``None`` for names and bodies."""
    value: str
    """The whole string the match was found in."""
    matched: str
    """The part that would be replaced (the whole value for a name match)."""
    rule: str
    """``name`` for a secret-looking key, else the value rule (``url_userinfo``, ``jwt``...)."""


ScrubCallback = Callable[[ScrubMatch], ScrubAction | str | None]
"""Receives each match; returns an action, or a string to put in place of the match."""


class _Dropped:
    """Sentinel: the attribute is to be removed."""


DROPPED: Final = _Dropped()


class Scrubber:
    """Decides what is secret and rewrites values, mappings and texts accordingly."""

    __slots__ = (
        "_allow",
        "_callback",
        "_callback_failed",
        "_clean",
        "_key_cache",
        "_regex",
        "_segments",
        "values",
    )

    def __init__(
        self,
        patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS,
        allow: Iterable[str] = (),
        *,
        values: bool = True,
        callback: ScrubCallback | None = None,
    ) -> None:
        """Match ``patterns`` inside names (ignoring case) except the exact ``allow`` names.

        ``values`` turns the value rules on; ``callback`` decides each match.
        """
        unique = sorted({p.strip() for p in patterns if p.strip()})
        joined = "|".join(re.escape(p) for p in unique) or r"(?!)"  # pragma: no mutate
        self._regex = re.compile(joined, re.IGNORECASE)
        self._segments = re.compile(_SHORT_NAME_SEGMENTS, re.IGNORECASE) if unique else None
        self._allow = frozenset(allow)
        self._key_cache: dict[str, bool] = {}
        self._clean: dict[str, None] = {}
        self._callback = callback
        self._callback_failed = False
        self.values = values

    def is_secret(self, key: str) -> bool:
        """True when ``key`` looks like it names a secret."""
        # The cache only saves the regex search: not a behaviour, so not mutated.
        hit = self._key_cache.get(key)  # pragma: no mutate
        if hit is None:
            hit = key not in self._allow and (
                self._regex.search(key) is not None
                or (self._segments is not None and self._segments.search(key) is not None)
            )
            if len(self._key_cache) < _MAX_CACHED_KEYS:
                self._key_cache[key] = hit  # pragma: no mutate
        return hit

    def scrub(self, mapping: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``mapping`` with the values of secret-looking names replaced."""
        return {k: (REDACTED if self.is_secret(k) else v) for k, v in mapping.items()}

    def needs_scrub(self, mapping: Mapping[str, Any]) -> bool:
        """True when at least one name in ``mapping`` is secret-looking."""
        return any(self.is_secret(k) for k in mapping)

    def text(self, text: str, location: str, key: str | None = None) -> str | _Dropped:
        """``text`` with every credential found in it replaced (``DROPPED`` if so decided)."""
        if not self.values or text in self._clean:
            return text
        findings = find_secrets(text)
        if not findings:
            # Only short strings are remembered: the ones that repeat (routes, methods,
            # names), without holding large bodies alive.
            if len(text) <= _MAX_CLEAN_LENGTH:
                if len(self._clean) >= _MAX_CLEAN_VALUES:
                    self._clean.clear()
                self._clean[text] = None
            return text
        parts: list[str] = []
        last = 0
        for finding in findings:
            matched = text[finding.start : finding.end]
            decided = self._decide(ScrubMatch(location, key, text, matched, finding.rule))
            if decided is DROPPED:
                return DROPPED
            parts.append(text[last : finding.start])
            parts.append(matched if decided is None else decided)  # type: ignore[arg-type]
            last = finding.end
        parts.append(text[last:])
        return "".join(parts)

    def whole_text(self, text: str, location: str) -> str:
        """Like ``text`` for a string that cannot be removed (a span name, a log body)."""
        if text in self._clean:  # the span name or log line seen before: no call
            return text
        scrubbed = self.text(text, location)
        return REDACTED if isinstance(scrubbed, _Dropped) else scrubbed

    def value(self, key: str, value: Any, location: str) -> Any:
        """``value`` of attribute ``key`` scrubbed by name, then by value, into containers."""
        if self.is_secret(key):
            return self._by_name(key, value, location)
        if isinstance(value, str):
            return self.text(value, location, key)
        if isinstance(value, bytes):
            return self._bytes(key, value, location)
        if isinstance(value, Mapping):
            return self._mapping(value, location, key)
        if isinstance(value, Sequence):
            return self._sequence(key, value, location)
        return value

    def attributes(
        self, attributes: Mapping[str, Any] | None, location: str
    ) -> Mapping[str, Any] | None:
        """``attributes`` unchanged (the same object) when clean, else a scrubbed copy."""
        if not attributes:
            return attributes
        return self._mapping(attributes, location, None)  # type: ignore[no-any-return]

    def _mapping(self, value: Mapping[Any, Any], location: str, prefix: str | None) -> Any:
        """``value`` itself when clean, else a copy; nested names are dotted (``db.password``)."""
        # The SDK's mapping yields items by a Python call per key; its copy() is a plain dict.
        pairs = value.copy() if type(value) is BoundedAttributes else value
        known, clean, values = self._key_cache, self._clean, self.values
        changed: dict[Any, Any] | None = None
        for key, item in pairs.items():
            name = key if prefix is None else f"{prefix}.{key}"
            # Most attributes cost two lookups: a name known not to be secret holding a number,
            # a string known clean, or any string with value rules off. Exact types only.
            kind = type(item)
            if known.get(name) is False and (
                kind in _NUMBERS or (kind is str and (not values or item in clean))
            ):
                continue
            scrubbed = self.value(name, item, location)
            if scrubbed is item:
                continue
            if changed is None:
                changed = dict(pairs)
            if scrubbed is DROPPED:
                del changed[key]
            else:
                changed[key] = scrubbed
        return value if changed is None else changed

    def _bytes(self, key: str, value: bytes, location: str) -> Any:
        text = value.decode("utf-8", "replace")
        scrubbed = self.text(text, location, key)
        if scrubbed is text:
            return value
        return scrubbed if isinstance(scrubbed, _Dropped) else scrubbed.encode()

    def _sequence(self, key: str, value: Sequence[Any], location: str) -> Any:
        items = [self.value(key, item, location) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        kept = [item for item in items if item is not DROPPED]
        return tuple(kept) if isinstance(value, tuple) else kept

    def _by_name(self, key: str, value: Any, location: str) -> Any:
        if self._callback is None:
            return REDACTED
        shown = value if isinstance(value, str) else repr(value)
        decided = self._decide(ScrubMatch(location, key, shown, shown, _NAME_RULE))
        return value if decided is None else decided

    def _decide(self, match: ScrubMatch) -> str | _Dropped | None:
        """The replacement for ``match``: a string, ``DROPPED``, or ``None`` to keep it."""
        if self._callback is None:
            return REDACTED
        try:
            action = self._callback(match)
        except Exception as exc:  # a user callback must not break export
            if not self._callback_failed:
                self._callback_failed = True
                # The exception's text could quote the secret: only its type is logged.
                _LOG.warning(
                    "ttbt5_otel scrub callback raised %s; its matches are redacted",
                    type(exc).__name__,
                )
            return REDACTED
        if action is ScrubAction.KEEP:
            return None
        if action is ScrubAction.DROP:
            return DROPPED
        if isinstance(action, str):
            return action
        return REDACTED


_active = Scrubber()


def active_scrubber() -> Scrubber:
    """The process-wide scrubber (configured by ``init``)."""
    return _active


def configure_scrubber(
    extra_patterns: Iterable[str] = (),
    allow: Iterable[str] = (),
    *,
    values: bool = True,
    callback: ScrubCallback | None = None,
) -> Scrubber:
    """Install a scrubber with the default name patterns plus ``extra_patterns``."""
    global _active  # noqa: PLW0603 - one process-wide policy, swapped atomically
    _active = Scrubber(
        (*DEFAULT_SECRET_PATTERNS, *extra_patterns), allow, values=values, callback=callback
    )
    return _active


_messages = Scrubber()


def scrub_message(text: str) -> str:
    """``text`` with credentials masked, for log lines and errors of this package and the SDK."""
    return _messages.whole_text(text, "message")
