"""Every span and log record is delivered or counted, through a frozen and a killed collector.

The real collector runs with its backend overlays (persistent queues on disk); a real OTLP
receiver on loopback plays the trace and log backends. The app's own books (its delivery
ledger) and the collector's ``otelcol_receiver_accepted_*`` are checked against what the
backends finally hold, item by item.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.delivery_rig import (
    BATCH,
    Collector,
    books,
    lost_and_counted,
    new_collector,
    start_sender,
    unique_logs,
    unique_spans,
)
from tests.loopback import stop_processes, wait_until
from tests.otlp_receiver import GrpcReceiver, HttpReceiver

pytestmark = pytest.mark.integration


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    found = new_collector(tmp_path)
    try:
        yield found
    finally:
        if found.process is not None:
            stop_processes([found.process])


def test_a_collector_crash_loses_nothing_it_had_queued_for_the_backends(collector):
    """Backends down, collector SIGKILLed with data queued: after a restart all of it arrives."""
    collector.start()
    sender = start_sender(collector, rate=200, seconds=3)
    sent = books(sender)
    assert sent["spans"]["exported"] == sent["sent"] == sent["logs"]["exported"]
    wait_until(
        "the collector to accept everything",
        lambda: collector.accepted("spans") == sent["sent"] == collector.accepted("log_records"),
        20,
        collector.tail,
    )
    collector.kill()
    with (
        GrpcReceiver(collector.ports["backend_traces"]) as traces,
        HttpReceiver(collector.ports["backend_logs"]) as logs,
    ):
        collector.start()
        wait_until(
            "every queued span and log record at the backends",
            lambda: unique_spans(traces) == sent["sent"] == unique_logs(logs),
            60,
            lambda: f"spans {unique_spans(traces)} logs {unique_logs(logs)} of {sent['sent']}",
        )


@pytest.mark.parametrize("fault", ["freeze", "kill"])
def test_every_item_is_delivered_or_counted_through_a_collector_outage(collector, fault):
    """Under load, a frozen (SIGSTOP) or killed collector: delivered + counted = sent, exactly.

    A killed collector refuses connections, so the app knows what failed: the books balance
    exactly. A frozen one accepts requests it answers only later; an export the app gave up
    on may still be delivered on SIGCONT. Those items are counted as lost and delivered, so
    the only slack allowed is on that side: never an item both missing and uncounted.
    """
    with (
        GrpcReceiver(collector.ports["backend_traces"]) as traces,
        HttpReceiver(collector.ports["backend_logs"]) as logs,
    ):
        collector.start()
        sender = start_sender(collector, rate=200, seconds=16)
        time.sleep(3)
        if fault == "freeze":
            collector.signal(signal.SIGSTOP)
            time.sleep(6)
            collector.signal(signal.SIGCONT)
        else:
            collector.kill()
            time.sleep(6)
            collector.start()
        result = books(sender)
        sent = result["sent"]
        print(fault, json.dumps(result))  # the figures, visible with -s
        assert result["exit_s"] < 10.5
        counters = {"spans": lambda: unique_spans(traces), "logs": lambda: unique_logs(logs)}
        for name, count in counters.items():
            ledger = result[name]
            lost = lost_and_counted(ledger)
            assert lost > 0, f"{name}: the outage cost nothing? {ledger}"
            wait_until(
                f"{name} accepted by the collector to reach the backend",
                lambda count=count, ledger=ledger: count() >= ledger["exported"],
                30,
                lambda count=count: f"{count()} at the backend; books {result}",
            )
            time.sleep(1.5)  # anything a freeze let through late has arrived too
            delivered = count()
            uncounted = sent - delivered - lost
            assert uncounted <= 0, f"{name}: {uncounted} lost without a count; {result}"
            # Counted as lost yet delivered: only exports whose outcome the app could not
            # know. A freeze leaves many (every export that timed out); a kill at most the
            # one request the collector had stored but not yet answered.
            slack = ledger["export_failed"] if fault == "freeze" else BATCH
            assert -uncounted <= slack, result
            assert ledger["exported"] <= delivered
            print(f"{fault} {name}: sent {sent} delivered {delivered} counted lost {lost}")
        if fault == "freeze":
            assert collector.accepted("spans") >= result["spans"]["exported"]


def test_with_the_spool_an_outage_and_app_restarts_lose_nothing(collector, tmp_path):
    """Spool on: an app that ran and exited while the collector was down, then one whose
    collector is killed under load (500 operations/s), lose nothing, in any process."""
    spool = str(tmp_path / "spool")
    with (
        GrpcReceiver(collector.ports["backend_traces"]) as traces,
        HttpReceiver(collector.ports["backend_logs"]) as logs,
    ):
        first = books(start_sender(collector, 500, 4, TTBT5_SPOOL_DIR=spool))
        assert first["spans"]["spooled"] == first["sent"] == first["logs"]["spooled"], first
        collector.start()
        sender = start_sender(collector, 500, 12, TTBT5_SPOOL_DIR=spool)
        time.sleep(3)
        collector.kill()
        time.sleep(5)
        collector.start()
        second = books(sender)
        # Whatever the second run had not resent yet, a third start sends.
        third = books(start_sender(collector, 10, 2, TTBT5_SPOOL_DIR=spool))
        print("spool", json.dumps([first, second, third]))  # the figures, visible with -s
        total = first["sent"] + second["sent"] + third["sent"]
        wait_until(
            "every span and log record of the three runs at the backends",
            lambda: unique_spans(traces) == total == unique_logs(logs),
            60,
            lambda: f"spans {unique_spans(traces)} logs {unique_logs(logs)} of {total}",
        )
        for run in (first, second, third):
            for name in ("spans", "logs"):
                assert lost_and_counted(run[name]) == run[name]["export_failed"] == 0, run
        ledgers = [run[name] for run in (first, second, third) for name in ("spans", "logs")]
        replayed = sum(ledger["replayed"] for ledger in ledgers)
        assert replayed == sum(ledger["spooled"] for ledger in ledgers) > first["sent"] * 2
