"""The spool's directory: one file per OTLP request, oldest first, bounded in bytes.

A file is named ``<time_ns>-<pid>-<seq>.<signal>.<items>.otlp`` so that sorting names sorts by
age and the item count of a file is known without reading it (an evicted file is counted
exactly). Files are written under a temporary name and renamed into place, so a reader never
sees half a request; a process claims a file by renaming it to ``...sending.<pid>``, so
processes sharing the directory (workers of one server, a restarted process) never send the
same request twice. Writes are not fsynced: the spool survives a crash or restart of the
process, not a power loss.
"""

from __future__ import annotations

import itertools
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from ttbt5_otel._exceptions import ConfigError

_SUFFIX = ".otlp"
_CLAIM = ".sending."


@dataclass(frozen=True, slots=True)
class SpoolFile:
    """One stored request."""

    path: Path
    signal: str
    items: int
    size: int


def _parse(path: Path, size: int) -> SpoolFile | None:
    parts = path.name[: -len(_SUFFIX)].split(".")
    if len(parts) != 3 or not parts[2].isdigit():  # noqa: PLR2004 - stamp.signal.items
        return None
    return SpoolFile(path, parts[1], int(parts[2]), size)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SpoolDirectory:
    """Stored requests of every signal in one private directory, at most ``max_bytes``."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        """Create (mode 0700) or adopt ``directory``; refuse one others could write to."""
        self.path = Path(directory)
        self.max_bytes = max_bytes
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = self.path.stat()
        except OSError as exc:
            raise ConfigError("spool_dir", f"{self.path}: {exc.strerror}", None) from None
        if not stat.S_ISDIR(info.st_mode):
            raise ConfigError("spool_dir", f"{self.path} is not a directory", None)
        if info.st_uid != os.geteuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise ConfigError(
                "spool_dir", f"{self.path} must be owned by this user and writable by no other"
            )
        # No lock: a lock held by a thread at fork would stay held in the child. Names are
        # unique without one (next() on a count is atomic), and two writers evicting at
        # once only find the same oldest file gone, which neither then counts.
        self._sequence = itertools.count()
        self._release_stale_claims()

    def _release_stale_claims(self) -> None:
        # A process that died while sending leaves its claim behind; the request was not
        # confirmed, so it goes back in line.
        for claimed in self.path.glob(f"*{_SUFFIX}{_CLAIM}*"):
            owner = claimed.name.rsplit(".", 1)[-1]
            if owner.isdigit() and not _alive(int(owner)):
                name = claimed.name.split(_CLAIM, 1)[0]
                claimed.rename(self.path / name)

    def files(self) -> list[SpoolFile]:
        """Unclaimed files, oldest first."""
        found = []
        for entry in os.scandir(self.path):
            if entry.name.endswith(_SUFFIX):
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:  # claimed by another process meanwhile
                    continue
                parsed = _parse(Path(entry.path), size)
                if parsed is not None:
                    found.append(parsed)
        found.sort(key=lambda f: f.path.name)
        return found

    def append(self, signal: str, payload: bytes, items: int) -> list[SpoolFile]:
        """Store one request; return the oldest files deleted to stay under the cap."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._sequence):06d}"
        final = self.path / f"{name}.{signal}.{items}{_SUFFIX}"
        partial = self.path / f".{name}.part"
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(payload)
            partial.rename(final)
        except OSError:
            partial.unlink(missing_ok=True)  # a full disk must not keep half a request
            raise
        return self._evict_beyond_cap()

    def _evict_beyond_cap(self) -> list[SpoolFile]:
        files = self.files()
        total = sum(f.size for f in files)
        evicted = []
        for oldest in files:
            if total <= self.max_bytes:
                break
            try:
                oldest.path.unlink()
            except FileNotFoundError:  # another process claimed it first
                continue
            total -= oldest.size
            evicted.append(oldest)
        return evicted

    def claim(self, spooled: SpoolFile) -> Path | None:
        """Take ``spooled`` for sending; None if another process took it first."""
        claimed = spooled.path.with_name(f"{spooled.path.name}{_CLAIM}{os.getpid()}")
        try:
            spooled.path.rename(claimed)
        except FileNotFoundError:
            return None
        return claimed

    def give_back(self, claimed: Path, spooled: SpoolFile) -> None:
        """Return an unsent file to its place in line."""
        claimed.rename(spooled.path)

    def size(self) -> int:
        """Bytes stored."""
        return sum(f.size for f in self.files())
