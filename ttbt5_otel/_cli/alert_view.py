"""Read and print what the stack's alert webhook receiver holds (``alert_webhook``).

``ttbt5-otel alerts`` and ``ttbt5-otel demo --incident`` are built on this: fetch the
notifications Alertmanager delivered, print one line per alert with its links, and wait
for one that matters.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from ttbt5_otel._exceptions import StackError
from ttbt5_otel._sdk.checks import mask_url

DEFAULT_URL: Final = "http://127.0.0.1:9099"
URL_ENV: Final = "TTBT5_ALERTS_URL"
LINKS: Final = (
    ("runbook_url", "runbook"),
    ("traces_url", "traces"),
    ("logs_url", "logs"),
    ("dashboard_url", "dashboard"),
)
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})

Notification: TypeAlias = dict[str, Any]
Alert: TypeAlias = dict[str, Any]
Predicate: TypeAlias = Callable[[Alert, Notification], bool]


def fetch_notifications(
    url: str = DEFAULT_URL, since: str | None = None, timeout: float = 2.0
) -> list[Notification]:
    """The notifications the receiver at ``url`` holds, oldest first.

    ``since`` (a ``received_at`` value) keeps only those received after it. ``StackError``
    when the receiver does not answer or gives an unusable answer.
    """
    # The receiver's own URL (`stack status` shows .../alerts) works as well as its base.
    endpoint = url.rstrip("/").removesuffix("/alerts") + "/alerts"
    if since is not None:
        endpoint += "?" + urllib.parse.urlencode({"since": since})
    body = _get(endpoint, timeout)
    try:
        found = json.loads(body)["notifications"]
    except (ValueError, TypeError, KeyError):
        found = None
    if not isinstance(found, list) or not all(isinstance(n, dict) for n in found):
        raise StackError(f"{mask_url(url)} answered, but not as the alert webhook receiver")
    return found


def _get(url: str, timeout: float) -> bytes:
    """The body of ``GET url`` answered with 200; ``StackError`` for anything else."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise StackError(f"{url!r} is not an http(s) URL of the alert webhook receiver")
    # The receiver runs on this machine: never ask the proxy that http_proxy names.
    handlers = [urllib.request.ProxyHandler({})] if parts.hostname in _LOOPBACK else []
    where = f"the alert webhook receiver at {mask_url(url.split('?', 1)[0])}"
    try:
        with urllib.request.build_opener(*handlers).open(url, timeout=timeout) as reply:
            return bytes(reply.read())
    except urllib.error.HTTPError as exc:
        exc.close()
        raise StackError(f"{where} answered HTTP {exc.code}") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            cause = f"no answer within {timeout:g} s"
        else:
            cause = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        raise StackError(f"{where} does not answer: {cause}") from None


def printable(value: object) -> str:
    """``value`` as text with control characters (escapes, line breaks) made spaces."""
    # Anyone on the machine can post to the receiver: no escape sequences or line breaks
    # of theirs reach the terminal.
    return "".join(c if c.isprintable() else " " for c in str(value))


def _fields(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def alerts_of(notification: Notification) -> list[Alert]:
    """The alerts of ``notification`` (those that are JSON objects)."""
    found = notification.get("alerts")
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def format_notification(notification: Notification) -> list[str]:
    """One line per alert (status, severity, name, service, summary), then its links.

    ``FIRING    critical  Ttbt5ErrorBudgetBurn  orders-demo  <summary>``, followed by an
    indented line for each of the runbook, traces, logs and dashboard links it carries.
    """
    lines = []
    for alert in alerts_of(notification):
        labels, annotations = _fields(alert.get("labels")), _fields(alert.get("annotations"))
        status = alert.get("status") or notification.get("status") or "?"
        columns = [
            f"{printable(status).upper():<8}",
            f"{printable(labels.get('severity', '-')):<8}",
            printable(labels.get("alertname", "?")),
            printable(labels.get("service_name", "-")),
        ]
        if annotations.get("summary"):
            columns.append(printable(annotations["summary"]))
        lines.append("  ".join(columns))
        lines.extend(
            f"    {label:<10}{printable(annotations[key])}"
            for key, label in LINKS
            if annotations.get(key)
        )
    return lines


def wait_for(
    predicate: Predicate,
    url: str = DEFAULT_URL,
    since: str | None = None,
    timeout: float = 60.0,
    poll: float = 0.5,
    on_new: Callable[[Notification], None] | None = None,
) -> tuple[Alert, Notification] | None:
    """Poll the receiver until an alert satisfying ``predicate(alert, notification)`` arrives.

    Only notifications received after ``since`` count; ``on_new`` is called with each new
    one as it arrives (the matching one included). Returns the matching alert and its
    notification, or None after ``timeout`` seconds; ``StackError`` when the receiver does
    not answer.
    """
    deadline = time.monotonic() + timeout
    while True:
        for notification in fetch_notifications(url, since=since):
            stamp = notification.get("received_at")
            since = stamp if isinstance(stamp, str) else since
            if on_new is not None:
                on_new(notification)
            for alert in alerts_of(notification):
                if predicate(alert, notification):
                    return alert, notification
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(poll, remaining))
