"""``ttbt5-otel demo --incident``: an outage against the local stack, watched until it pages.

Before the run, the stack's Prometheus is switched to the demo SLO profile (the rules of
``dashboards/slos.yaml`` with every window divided by 10), since the real windows need an
hour of data before a page. During the run a thread reads what Alertmanager delivered to
the stack's webhook receiver and prints each notification as it arrives; the first
firing page about the demo's service ends the outage.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ttbt5_otel._cli.alert_view import fetch_notifications, format_notification
from ttbt5_otel._cli.stack import use_slo_profile
from ttbt5_otel._cli.stack_parts import ALERT_WEBHOOK_PORT, HOST
from ttbt5_otel._exceptions import StackError

WEBHOOK_URL: Final = f"http://{HOST}:{ALERT_WEBHOOK_PORT}"
ALERTMANAGER_URL: Final = f"http://{HOST}:9093"
BURN_ALERT: Final = "Ttbt5ErrorBudgetBurn"
LEAD_S: Final = 5.0
"""Normal traffic before the outage, so the SLI has a baseline."""
RECOVERY_S: Final = 8.0
"""Traffic after the page, with the provider back."""
FAST_BURN: Final = "14.4"
RESOLVE_WAIT_S: Final = 60.0
"""The longest wait for an earlier run's fast page to resolve (its 30 s window, and margin)."""
LIMIT_S: Final = 90.0
"""The run's default length: the page is due within 60 s."""
_POLL_S: Final = 0.5


@dataclass(frozen=True, slots=True)
class Page:
    """The page the incident raised, and when it arrived."""

    alert: dict[str, Any]
    after_seconds: float
    at: float
    """``time.monotonic()`` when it arrived."""

    def summary(self) -> dict[str, Any]:
        """What the demo's JSON summary reports about the page."""
        labels, annotations = self.alert.get("labels", {}), self.alert.get("annotations", {})
        return {
            "alertname": labels.get("alertname"),
            "service": labels.get("service_name"),
            "slo": labels.get("slo"),
            "severity": labels.get("severity"),
            "after_seconds": round(self.after_seconds, 1),
            "summary": annotations.get("summary"),
            "traces_url": annotations.get("traces_url"),
        }


def prepare(
    state_dir: Path, service: str, report: Callable[[str], None]
) -> tuple[str | None, frozenset[str]]:
    """Switch the stack to the demo SLO profile; where to start watching, and what to ignore.

    Returns the newest notification's time (None when there is none) and the fingerprints
    of pages of earlier runs that still fire: slow pages stay for minutes after an
    incident and are not this run's. The fast page of an earlier run would swallow this
    run's (Alertmanager sends an alert once, not once per incident), so it is waited out
    first: it resolves within its short window. ``StackError`` when the stack or its
    webhook receiver is not running.
    """
    use_slo_profile(state_dir, "demo", report)
    try:
        earlier = fetch_notifications(WEBHOOK_URL)
    except StackError as exc:
        raise StackError(f"{exc}; `ttbt5-otel stack up` starts the receiver") from None
    deadline = time.monotonic() + RESOLVE_WAIT_S
    said = False
    while True:
        firing = _pages(service)
        if not any(alert["labels"].get("burn_rate") == FAST_BURN for alert in firing):
            break
        if time.monotonic() > deadline:
            raise StackError(
                f"the fast page about {service} from an earlier run still fires after "
                f"{RESOLVE_WAIT_S:.0f} s; see {ALERTMANAGER_URL}"
            )
        if not said:
            report(f"waiting for the page of an earlier run to resolve ({ALERTMANAGER_URL})")
            said = True
        time.sleep(1)
    since = str(earlier[-1]["received_at"]) if earlier else None
    return since, frozenset(str(alert.get("fingerprint")) for alert in firing)


def _pages(service: str) -> list[dict[str, Any]]:
    """The burn-rate pages about ``service`` that Alertmanager holds as firing."""
    query = urllib.parse.urlencode(
        [
            ("active", "true"),
            ("filter", f'alertname="{BURN_ALERT}"'),
            ("filter", 'response="page"'),
            ("filter", f'service_name="{service}"'),
        ]
    )
    try:
        with urllib.request.urlopen(  # noqa: S310 - the stack's own loopback Alertmanager
            f"{ALERTMANAGER_URL}/api/v2/alerts?{query}", timeout=2
        ) as response:
            found = json.load(response)
    except (OSError, ValueError) as exc:
        raise StackError(f"Alertmanager at {ALERTMANAGER_URL} does not answer: {exc}") from None
    return [alert for alert in found if isinstance(alert, dict)]


def is_page(alert: dict[str, Any], service: str) -> bool:
    """True for a firing burn-rate page about ``service``."""
    labels = alert.get("labels", {})
    return (
        alert.get("status") == "firing"
        and labels.get("alertname") == BURN_ALERT
        and labels.get("response") == "page"
        and labels.get("service_name") == service
    )


class PageWatch:
    """Prints the notifications the webhook receives from now on; notes the first page."""

    def __init__(
        self,
        service: str,
        since: str | None,
        started: float,
        say: Callable[[str], None],
        ignore: frozenset[str] = frozenset(),
    ) -> None:
        """Watch for pages about ``service`` received after ``since``, timed from ``started``.

        Alerts whose fingerprint is in ``ignore`` (pages of earlier runs) do not count.
        """
        self.service = service
        self._ignore = ignore
        self.page: Page | None = None
        self._since = since
        self._started = started
        self._say = say
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttbt5-page-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (after one last look)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self._look()
            except StackError as exc:
                self._say(f"alert webhook: {exc}")
            if stopping:
                return
            self._stop.wait(_POLL_S)

    def _look(self) -> None:
        for notification in fetch_notifications(WEBHOOK_URL, since=self._since):
            self._since = str(notification["received_at"])
            elapsed = time.monotonic() - self._started
            pages = [
                alert
                for alert in notification.get("alerts", [])
                if is_page(alert, self.service) and alert.get("fingerprint") not in self._ignore
            ]
            if pages and self.page is None:
                self.page = Page(pages[0], elapsed, time.monotonic())
                self._say(
                    f"\nPAGE delivered by Alertmanager {elapsed:.1f} s after the demo started:"
                )
            else:
                self._say(f"\nnotification at {elapsed:.1f} s:")
            for line in format_notification(notification):
                self._say(line)
