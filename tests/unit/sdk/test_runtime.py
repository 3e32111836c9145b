"""The memory limit the memory alert divides by: the tightest cgroup limit on the process."""

from pathlib import Path

import psutil

from ttbt5_otel._sdk.runtime import memory_limit_bytes


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_own_group_and_ancestors(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "memory.max", "max\n")
    _write(root / "kubepods" / "memory.max", "4000000000\n")
    _write(root / "kubepods" / "pod1" / "memory.max", "max\n")
    _write(root / "kubepods" / "pod1" / "app" / "memory.max", "300000000\n")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/kubepods/pod1/app\n")
    assert memory_limit_bytes(root, self_cgroup) == 300_000_000


def test_cgroup_v1_memory_controller(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712\n")  # no limit
    _write(root / "memory" / "svc" / "memory.limit_in_bytes", "536870912\n")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("9:pids:/\n4:memory:/svc\n1:name=systemd:/\nmalformed\n")
    assert memory_limit_bytes(root, self_cgroup) == 536_870_912


def test_a_parent_limit_applies_when_the_own_group_has_none(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root / "slice" / "memory.max", "1000\n")
    _write(root / "slice" / "unit" / "memory.max", "max\n")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/slice/unit\n")
    assert memory_limit_bytes(root, self_cgroup) == 1000


def test_without_any_limit_physical_memory(tmp_path: Path) -> None:
    limit = memory_limit_bytes(tmp_path / "none", tmp_path / "missing")
    assert limit == psutil.virtual_memory().total
