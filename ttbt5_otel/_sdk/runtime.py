"""Process runtime metrics (CPU, memory, threads, descriptors) as observable instruments.

Own implementation on psutil rather than a generic system-metrics package: it must follow the
*current* pid after a fork (pre-fork workers would otherwise report their parent) and it also
reports the memory limit the process runs under, which the memory alert divides by.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from ttbt5_otel._core.guard import internal_error


class _CurrentProcess:
    def __init__(self) -> None:
        self._pid = -1
        self._process: psutil.Process | None = None

    def get(self) -> psutil.Process:
        pid = os.getpid()
        if self._process is None or pid != self._pid:
            self._process = psutil.Process(pid)
            self._pid = pid
        return self._process


_CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
_SELF_CGROUP: Final = Path("/proc/self/cgroup")
_NO_LIMIT: Final = 1 << 60  # cgroup v1 reports "no limit" as a huge page-aligned number


def _limit_files(root: Path, self_cgroup: Path) -> list[Path]:
    """Every memory limit file that applies to this process: its own cgroup and ancestors."""
    files = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    try:
        lines = self_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return files
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != len(("id", "controllers", "path")):
            continue
        _, controllers, path = fields
        if controllers == "":  # cgroup v2: one unified hierarchy
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        parts = [part for part in path.split("/") if part]
        files += [base.joinpath(*parts[:depth]) / name for depth in range(1, len(parts) + 1)]
    return files


def memory_limit_bytes(root: Path = _CGROUP_ROOT, self_cgroup: Path = _SELF_CGROUP) -> int | None:
    """The memory this process may use: the tightest cgroup limit on it, else physical memory.

    A limit set on any cgroup above the process applies to it too, so the process's own
    cgroup (from ``/proc/self/cgroup``) and each of its ancestors are read, cgroup v2 and v1.
    """
    limits = []
    for candidate in _limit_files(root, self_cgroup):
        try:
            raw = candidate.read_text(encoding="ascii").strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < _NO_LIMIT:
            limits.append(int(raw))
    if limits:
        return min(limits)
    try:
        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def _observer(
    name: str, read: Callable[[psutil.Process], list[Observation]], proc: _CurrentProcess
) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(_: CallbackOptions) -> Iterable[Observation]:
        try:
            return read(proc.get())
        except psutil.Error as exc:
            internal_error(f"runtime metrics ({name})", exc)
            return []

    return callback


def _cpu(process: psutil.Process) -> list[Observation]:
    times = process.cpu_times()
    return [
        Observation(times.user, {"cpu.mode": "user"}),
        Observation(times.system, {"cpu.mode": "system"}),
    ]


def _limit(_: CallbackOptions) -> Iterable[Observation]:
    limit = memory_limit_bytes()
    return [] if limit is None else [Observation(limit)]


def register_runtime_metrics(meter: Meter) -> None:
    """Create the process.* observable instruments on ``meter``."""
    proc = _CurrentProcess()
    meter.create_observable_counter(
        "process.cpu.time",
        [_observer("cpu", _cpu, proc)],
        unit="s",
        description="CPU time used by the process.",
    )
    meter.create_observable_up_down_counter(
        "process.memory.usage",
        [_observer("memory", lambda p: [Observation(p.memory_info().rss)], proc)],
        unit="By",
        description="Resident set size.",
    )
    meter.create_observable_up_down_counter(
        "process.memory.virtual",
        [_observer("virtual memory", lambda p: [Observation(p.memory_info().vms)], proc)],
        unit="By",
        description="Virtual memory size.",
    )
    meter.create_observable_up_down_counter(
        "ttbt5.process.memory.limit",
        [_limit],
        unit="By",
        description="Memory the process may use: its cgroup limit, else physical memory.",
    )
    meter.create_observable_up_down_counter(
        "process.thread.count",
        [_observer("threads", lambda p: [Observation(p.num_threads())], proc)],
        unit="{thread}",
        description="Threads in the process.",
    )
    meter.create_observable_up_down_counter(
        "process.unix.file_descriptor.count",
        [_observer("descriptors", lambda p: [Observation(p.num_fds())], proc)],
        unit="{file_descriptor}",
        description="Open file descriptors.",
    )
