"""A Redis Cluster on loopback: one ``redis.conf`` per node, and forming the cluster.

This module starts no process: the caller (the local stack, a test fixture) does, with the
command ``node_command`` gives, and calls the functions here around it::

    nodes = node_specs(state_dir / "redis-cluster", [(port, bus_port), ...])  # N*(1+R) nodes
    write_configs(nodes, password)              # <dir>/node-<port>/redis.conf, mode 0600
    for node in nodes:
        start(node_command(node))               # redis-server <conf>: no secret in argv
        # ready when processes.redis_ready(node.host, node.port, password) is true
    shards = form_cluster(nodes, password, replicas=1, timeout=30.0, report=log)
    url = cluster_url(nodes, password)          # for TTBT5_CACHE_REDIS_URL: never print it

The first ``len(nodes) // (replicas + 1)`` nodes become masters, each owning an equal
range of the 16,384 slots; the others become their replicas in turn (node ``masters + k``
replicates master ``k % masters``). ``form_cluster`` returns once every node reports
``cluster_state:ok``, every node's ``CLUSTER NODES`` agrees on the roles and slots, and
every replica's link to its master is up; it raises ``StackError`` with the reason it was
still waiting for when ``timeout`` runs out.

Nodes keep their membership in ``nodes.conf`` in their directory, so a restarted node
rejoins its cluster by itself: ``form_cluster`` on nodes that already form one cluster only
waits for it to be healthy. Nodes that are partly in a cluster and partly fresh are refused
(remove the node directories to start over).

Security and loopback choices written into each ``redis.conf``: ``bind 127.0.0.1`` and
protected mode; ``requirepass`` and ``masterauth`` (replicas authenticate to their master)
from the given password, which is only in that 0600 file (the directory is 0700), never on
a command line, and reaches ``redis-cli`` users through ``REDISCLI_AUTH``, not ``-a``; no
persistence (``save ""``, ``appendonly no``: it is a cache) and replicas served at once
(``repl-diskless-sync-delay 0`` instead of waiting 5 s for more replicas to join a
transfer); ``cluster-node-timeout`` 1000 ms (a loopback node that does not answer for a
second is down, so a replica takes over within about 2.5 s); ``cluster-require-full-coverage
no`` (while one master's slots move, the others keep serving theirs); ``set-proc-title no``
(the command line stays as started, which the stack compares before it signals a process).

``form_cluster`` talks to the nodes with redis-py (the ``redis`` extra), each command
bounded by 2 s, so it returns or raises within ``timeout`` plus at most one command's time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ttbt5_otel._cache.redis_level import cluster_url as _cluster_url
from ttbt5_otel._cli.stack_parts import write_private
from ttbt5_otel._exceptions import StackError

if TYPE_CHECKING:
    import redis

HOST: Final = "127.0.0.1"
SLOTS: Final = 16384
CONFIG_FILE: Final = "redis.conf"
NODE_TIMEOUT_MS: Final = 1000
_POLL: Final = 0.05
_COMMAND_TIMEOUT: Final = 2.0
_EXTRA_NAME: Final = re.compile(r"[a-z][a-z0-9-]*")
_MANAGED: Final = frozenset(
    {
        "bind",
        "port",
        "protected-mode",
        "cluster-enabled",
        "cluster-port",
        "cluster-config-file",
        "cluster-node-timeout",
        "cluster-require-full-coverage",
        "requirepass",
        "masterauth",
        "save",
        "appendonly",
        "repl-diskless-sync-delay",
        "dir",
        "set-proc-title",
    }
)

Report = Callable[[str], None]


def _silent(_message: str) -> None:
    """The default ``report``: say nothing."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One cluster node: its client port, cluster bus port and directory."""

    port: int
    bus_port: int
    directory: Path
    host: str = HOST

    @property
    def config(self) -> Path:
        """Its ``redis.conf``."""
        return self.directory / CONFIG_FILE

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` for clients."""
        return (self.host, self.port)

    @property
    def name(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Shard:
    """A master, its slot range and its replicas, as formed."""

    master: tuple[str, int]
    master_id: str
    slots: tuple[int, int]
    replicas: tuple[tuple[str, int], ...]


def node_specs(base_dir: Path, ports: Sequence[tuple[int, int]]) -> list[NodeSpec]:
    """Nodes on ``(port, bus_port)`` pairs, each in ``base_dir/node-<port>``."""
    used = [port for pair in ports for port in pair]
    if len(set(used)) != len(used):
        raise StackError(f"redis cluster: ports must all differ, got {list(ports)}")
    return [NodeSpec(port, bus, base_dir / f"node-{port}") for port, bus in ports]


def _quoted(value: str) -> str:
    """A double-quoted redis.conf string (backslash escapes, as redis-server reads them)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def config_text(
    node: NodeSpec,
    password: str,
    *,
    node_timeout_ms: int = NODE_TIMEOUT_MS,
    extra: Mapping[str, str] | None = None,
) -> str:
    """The ``redis.conf`` of ``node`` (see the module docstring for each choice).

    ``extra`` adds directives (``{"enable-debug-command": "local"}`` for fault tests);
    it may not override the ones this module sets.
    """
    if not password:
        raise StackError("redis cluster: a password is required")
    lines = [
        "# Written by ttbt5-otel for one Redis Cluster node. It holds the password: mode 0600.",
        f"bind {node.host}",
        f"port {node.port}",
        "protected-mode yes",
        "cluster-enabled yes",
        f"cluster-port {node.bus_port}",
        f"cluster-config-file {_quoted(str(node.directory / 'nodes.conf'))}",
        f"cluster-node-timeout {int(node_timeout_ms)}",
        "cluster-require-full-coverage no",
        f"requirepass {_quoted(password)}",
        f"masterauth {_quoted(password)}",
        'save ""',
        "appendonly no",
        "repl-diskless-sync-delay 0",
        f"dir {_quoted(str(node.directory))}",
        "set-proc-title no",
    ]
    for name, value in (extra or {}).items():
        if not _EXTRA_NAME.fullmatch(name) or name in _MANAGED:
            raise StackError(f"redis cluster: extra directive {name!r} is not allowed")
        if "\n" in value or "\r" in value:
            raise StackError(f"redis cluster: the value of {name!r} spans lines")
        lines.append(f"{name} {value}")
    return "\n".join(lines) + "\n"


def write_configs(
    nodes: Sequence[NodeSpec],
    password: str,
    *,
    node_timeout_ms: int = NODE_TIMEOUT_MS,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Write each node's ``redis.conf`` (0600) into its directory (created 0700)."""
    for node in nodes:
        text = config_text(node, password, node_timeout_ms=node_timeout_ms, extra=extra)
        node.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        node.directory.chmod(0o700)
        write_private(node.config, text)


def node_command(node: NodeSpec, redis_server: str = "redis-server") -> list[str]:
    """The command that starts ``node``: the server and its config file, nothing secret."""
    return [redis_server, str(node.config)]


def cluster_url(nodes: Sequence[NodeSpec], password: str) -> str:
    """The ``redis+cluster://`` URL of ``nodes`` for ``RedisCache``; it holds the password."""
    return _cluster_url([node.address for node in nodes], password)


# -- forming the cluster -------------------------------------------------------------------
def _command(client: redis.Redis, *args: Any) -> Any:
    """One command, its reply as redis-py parses it (strings decoded)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _fields(reply: Any) -> dict[str, str]:
    """``key:value`` lines (``CLUSTER INFO``, ``INFO``) as a dict of strings.

    redis-py parses some of these replies itself (``INFO`` into a dict): both are accepted.
    """
    if isinstance(reply, dict):
        return {str(key): str(value) for key, value in reply.items()}
    pairs = (line.split(":", 1) for line in str(reply).splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@dataclass(frozen=True, slots=True)
class _Seen:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    address: str
    flags: frozenset[str]
    master_id: str
    slots: tuple[str, ...]


def _cluster_nodes(text: str) -> dict[str, _Seen]:
    """``CLUSTER NODES`` by node id."""
    seen = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:  # noqa: PLR2004 - the fixed fields of a CLUSTER NODES line
            continue
        address = parts[1].split("@", 1)[0]
        flags = frozenset(parts[2].split(","))
        seen[parts[0]] = _Seen(parts[0], address, flags, parts[3], tuple(parts[8:]))
    return seen


class _Nodes:
    """A client per node, each command bounded by what is left of the deadline."""

    def __init__(self, nodes: Sequence[NodeSpec], password: str, deadline: float) -> None:
        import redis  # noqa: PLC0415 - optional extra
        from redis.backoff import NoBackoff  # noqa: PLC0415
        from redis.retry import Retry  # noqa: PLC0415

        self.nodes = list(nodes)
        self.deadline = deadline
        self.clients = [
            redis.Redis(
                host=node.host,
                port=node.port,
                password=password,
                decode_responses=True,
                socket_timeout=_COMMAND_TIMEOUT,
                socket_connect_timeout=_COMMAND_TIMEOUT,
                # The waits below retry until the deadline; redis-py's own retries with
                # backoff would only overshoot it.
                retry=Retry(NoBackoff(), 0),
            )
            for node in nodes
        ]

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def ask(self, index: int, *args: Any) -> Any:
        """Send one command to node ``index``; a failure names the node, never a secret."""
        import redis  # noqa: PLC0415

        try:
            return _command(self.clients[index], *args)
        except redis.RedisError as exc:
            command = " ".join(str(arg) for arg in args[:2])
            raise StackError(
                f"redis cluster: {self.nodes[index].name}: {command} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    def wait(self, what: str, check: Callable[[], str | None]) -> None:
        """Call ``check`` until it returns ``None`` (done) or the deadline passes."""
        reason = "not checked yet"
        while True:
            try:
                found = check()
            except StackError as exc:
                found = str(exc)
            if found is None:
                return
            reason = found
            if time.monotonic() >= self.deadline:
                raise StackError(f"redis cluster: {what} did not happen in time; last: {reason}")
            time.sleep(_POLL)


def form_cluster(
    nodes: Sequence[NodeSpec],
    password: str,
    *,
    replicas: int = 1,
    timeout: float = 30.0,
    report: Report = _silent,
) -> tuple[Shard, ...]:
    """Make running ``nodes`` one cluster of masters with ``replicas`` replicas each.

    See the module docstring for the layout and what "formed" means. Raises
    ``StackError`` for a bad layout, a node that is not in cluster mode or not reachable,
    nodes that already belong to some other cluster, or a cluster still unhealthy after
    ``timeout`` seconds (the message says what was missing).
    """
    if replicas < 0 or not nodes or len(nodes) % (replicas + 1):
        raise StackError(
            f"redis cluster: {len(nodes)} nodes cannot be masters with {replicas} replicas each"
        )
    masters = len(nodes) // (replicas + 1)
    started = time.monotonic()
    link = _Nodes(nodes, password, started + timeout)
    try:
        ids = [str(link.ask(i, "CLUSTER", "MYID")) for i in range(len(nodes))]
        known = [_cluster_nodes(str(link.ask(i, "CLUSTER", "NODES"))) for i in range(len(nodes))]
        joined = [len(view) > 1 or any(s.slots for s in view.values()) for view in known]
        if all(joined):
            report(f"redis cluster: {len(nodes)} nodes already formed; waiting until healthy")
            # A formation interrupted before the replicas were attached left masters
            # without slots: attach them now rather than call that cluster healthy.
            _attach_spare_masters(link, ids, known[0], replicas)
        elif any(joined):
            names = [node.name for node, member in zip(nodes, joined, strict=True) if member]
            raise StackError(
                f"redis cluster: {', '.join(names)} already belong to a cluster but other "
                "nodes are new; remove the node directories to form a new cluster"
            )
        else:
            report(
                f"redis cluster: forming {masters} masters with {replicas} replica(s) each "
                f"on {', '.join(node.name for node in nodes)}"
            )
            _create(link, ids, masters)
        shards = _wait_healthy(link, ids, masters, replicas)
    finally:
        link.close()
    report(f"redis cluster: healthy after {time.monotonic() - started:.1f}s")
    return shards


def _create(link: _Nodes, ids: list[str], masters: int) -> None:
    """Assign slots, introduce the nodes to each other, attach the replicas."""
    nodes = link.nodes
    for index in range(len(nodes)):
        # Distinct epochs up front: no collision to resolve before the cluster is stable.
        link.ask(index, "CLUSTER", "SET-CONFIG-EPOCH", index + 1)
    for index in range(masters):
        first, last = index * SLOTS // masters, (index + 1) * SLOTS // masters - 1
        link.ask(index, "CLUSTER", "ADDSLOTSRANGE", first, last)
    for node in nodes[1:]:
        link.ask(0, "CLUSTER", "MEET", node.host, node.port, node.bus_port)

    def everyone_known() -> str | None:
        for index, node in enumerate(nodes):
            view = _cluster_nodes(str(link.ask(index, "CLUSTER", "NODES")))
            missing = set(ids) - set(view)
            if missing or any({"handshake", "noaddr"} & seen.flags for seen in view.values()):
                return f"{node.name} knows {len(view)} of {len(nodes)} nodes"
        return None

    link.wait("every node knowing every other", everyone_known)
    for offset, index in enumerate(range(masters, len(nodes))):
        link.ask(index, "CLUSTER", "REPLICATE", ids[offset % masters])


def _node_problem(link: _Nodes, index: int, masters: int) -> tuple[str | None, dict[str, _Seen]]:
    """What keeps node ``index`` from being healthy (``None``: nothing), and its view."""
    node, count = link.nodes[index], len(link.nodes)
    info = _fields(link.ask(index, "CLUSTER", "INFO"))
    expected = {
        "cluster_state": "ok",
        "cluster_slots_ok": str(SLOTS),
        "cluster_known_nodes": str(count),
        "cluster_size": str(masters),
    }
    wrong = [f"{k} {info.get(k)} (expected {v})" for k, v in expected.items() if info.get(k) != v]
    if wrong:
        return f"{node.name}: {', '.join(wrong)}", {}
    view = _cluster_nodes(str(link.ask(index, "CLUSTER", "NODES")))
    myself = next((seen for seen in view.values() if "myself" in seen.flags), None)
    if myself is not None and "slave" in myself.flags:
        replication = _fields(link.ask(index, "INFO", "replication"))
        if replication.get("master_link_status") != "up":
            return f"{node.name}: its replication link to its master is not up yet", view
    return None, view


def _attach_spare_masters(
    link: _Nodes, ids: list[str], view: dict[str, _Seen], replicas: int
) -> None:
    """Make each master without slots a replica of a slot owner still short of replicas."""
    owners = [seen.node_id for seen in view.values() if "master" in seen.flags and seen.slots]
    count = dict.fromkeys(owners, 0)
    for seen in view.values():
        if seen.master_id in count:
            count[seen.master_id] += 1
    spares = [
        seen.node_id
        for seen in view.values()
        if "master" in seen.flags and not seen.slots and seen.node_id in ids
    ]
    for spare in spares:
        short = min(owners, key=lambda owner: count[owner], default=None)
        if short is None or count[short] >= replicas:
            return
        link.ask(ids.index(spare), "CLUSTER", "REPLICATE", short)
        count[short] += 1


def _short_of_replicas(view: dict[str, _Seen], wanted: int) -> str | None:
    """Which slot owner of ``view`` has fewer than ``wanted`` replicas, if any."""
    for seen in view.values():
        if "master" in seen.flags and seen.slots:
            have = sum(other.master_id == seen.node_id for other in view.values())
            if have < wanted:
                return f"master {seen.node_id[:8]} has {have} of {wanted} replica(s)"
    return None


def _wait_healthy(
    link: _Nodes, ids: list[str], masters: int, wanted_replicas: int
) -> tuple[Shard, ...]:
    """Wait until every node is ok and they agree, each master has its replicas in sync."""
    agreed: dict[str, _Seen] = {}

    def healthy() -> str | None:
        views = []
        for index in range(len(link.nodes)):
            problem, view = _node_problem(link, index, masters)
            if problem is not None:
                return problem
            views.append(view)
        shapes = [
            {key: (seen.flags - {"myself"}, seen.master_id, seen.slots) for key, seen in v.items()}
            for v in views
        ]
        if any(shape != shapes[0] for shape in shapes[1:]):
            return "the nodes do not agree yet on roles and slots"
        if any({"fail", "fail?"} & seen.flags for seen in views[0].values()):
            return "a node is flagged as failing"
        short = _short_of_replicas(views[0], wanted_replicas)
        if short is not None:
            return short
        agreed.update(views[0])
        return None

    link.wait("a healthy cluster", healthy)
    by_id = dict(zip(ids, link.nodes, strict=True))
    shards = []
    for seen in agreed.values():
        if "master" not in seen.flags or not seen.slots:
            continue
        first, _, last = seen.slots[0].partition("-")
        replicas = tuple(
            by_id[other.node_id].address
            for other in agreed.values()
            if other.master_id == seen.node_id
        )
        master = by_id[seen.node_id].address
        shards.append(Shard(master, seen.node_id, (int(first), int(last or first)), replicas))
    return tuple(sorted(shards, key=lambda shard: shard.slots))
