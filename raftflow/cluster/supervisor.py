"""Restart the node processes of `raftflow dev` that die, so `kill -9` on a node is a fault drill.

Theory of operation: `RestartPolicy` is pure. From one node's recent exits (when each run
started and ended, and its exit code) it decides whether to restart the node and after how long:
the back-off doubles from `RESTART_DELAY_MIN_S` with every quick death in a row, up to
`RESTART_DELAY_MAX_S`, and starts over once a run has stayed up `STABLE_UPTIME_S`. A node that
exits with `EXIT_CODE_CONFIG_ERROR` is never restarted: its configuration is wrong and it would
fail again; nor is one that exits 0 (`EXIT_CODE_LEFT`): it was stopped on purpose, or removed
from the cluster by `raftflow cluster remove`. `Supervisor` is the thin shell around it: the
dev command's main loop calls `tick` about every half second; `tick` polls the processes
`LocalCluster` started, prints each death and each restart on stdout and restarts a node through
`LocalCluster.start_node` when it is due. It never signals a process, so it cannot touch one
that `LocalCluster` did not start.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, assert_never

# The first restart comes quickly: a hand-made kill -9 should look like a short outage.
RESTART_DELAY_MIN_S = 0.5
# A node that keeps dying is retried this often at most; its log is where to look.
RESTART_DELAY_MAX_S = 10.0
# A run this long counts as healthy: the next death starts the back-off from the minimum again.
STABLE_UPTIME_S = 30.0
# `raftflow node` exits with 2 on a configuration error (raftflow.node.serve.run_node);
# restarting cannot help.
EXIT_CODE_CONFIG_ERROR = 2
# `raftflow node` exits with 0 once stopped by a signal or removed from the cluster
# (raftflow.node.serve): either way it has nothing left to serve here.
EXIT_CODE_LEFT = 0
# Exits remembered per node. Only the trailing quick deaths matter, and more of them than this
# already give the maximum delay (asserted below).
EXITS_REMEMBERED_MAX = 8

assert 0 < RESTART_DELAY_MIN_S <= RESTART_DELAY_MAX_S < STABLE_UPTIME_S
assert RESTART_DELAY_MIN_S * 2 ** (EXITS_REMEMBERED_MAX - 1) >= RESTART_DELAY_MAX_S


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeExit:
    """One run of a node process, from its start to its death (monotonic seconds)."""

    started_at_s: float
    exited_at_s: float
    exit_code: int  # negative: killed by that signal (Popen.returncode)

    def __post_init__(self) -> None:
        assert self.exited_at_s >= self.started_at_s, self

    @property
    def uptime_s(self) -> float:
        return self.exited_at_s - self.started_at_s


@dataclass(frozen=True, slots=True)
class RestartAfter:
    delay_s: float


@dataclass(frozen=True, slots=True)
class DoNotRestart:
    reason: str  # completes "not restarting it (...)"


RestartDecision = RestartAfter | DoNotRestart


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Exponential back-off over a node's recent exits; pure (no clock, no IO)."""

    delay_min_s: float = RESTART_DELAY_MIN_S
    delay_max_s: float = RESTART_DELAY_MAX_S
    stable_uptime_s: float = STABLE_UPTIME_S

    def __post_init__(self) -> None:
        assert 0 < self.delay_min_s <= self.delay_max_s, self
        assert self.stable_uptime_s > 0, self

    def decide(self, exits: Sequence[NodeExit]) -> RestartDecision:
        """What to do after the last of `exits` (oldest first, at least one)."""
        assert exits, "decide() is called after a death"
        last = exits[-1]
        if last.exit_code == EXIT_CODE_CONFIG_ERROR:
            return DoNotRestart(f"exit {EXIT_CODE_CONFIG_ERROR} is a configuration error; "
                                "it would fail again")
        if last.exit_code == EXIT_CODE_LEFT:
            return DoNotRestart("exit 0: it was stopped on purpose or removed from the cluster")
        delay_s = min(self.delay_max_s, self.delay_min_s * 2 ** (self.quick_deaths(exits) - 1))
        assert self.delay_min_s <= delay_s <= self.delay_max_s
        return RestartAfter(delay_s)

    def quick_deaths(self, exits: Sequence[NodeExit]) -> int:
        """Deaths in a row, counted back from the last one. A run that stayed up
        `stable_uptime_s` ends the count: its death started a new streak (delay minimum)."""
        count = 0
        for node_exit in reversed(exits):
            count += 1
            if node_exit.uptime_s >= self.stable_uptime_s:
                break
        assert 1 <= count <= len(exits)
        return count


class NodeProcess(Protocol):
    """What the supervisor needs of a child process (`subprocess.Popen`)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...


class Shutdown(Protocol):
    """Set once the dev command is stopping (`threading.Event`)."""

    def is_set(self) -> bool: ...


class SupervisedCluster(Protocol):
    """What the supervisor needs of `LocalCluster`."""

    @property
    def node_ids(self) -> list[str]: ...

    @property
    def processes(self) -> Mapping[str, NodeProcess]: ...

    def start_node(self, node_id: str) -> NodeProcess: ...


@dataclass(frozen=True, slots=True)
class Running:
    pid: int
    started_at_s: float


@dataclass(frozen=True, slots=True)
class RestartDue:
    due_at_s: float


@dataclass(frozen=True, slots=True)
class Abandoned:
    """Dead and left so: --no-restart, or an exit that a restart cannot fix."""


NodeState = Running | RestartDue | Abandoned


class Supervisor:
    """Watches the node processes of a `LocalCluster` and restarts those that die.

    Args:
        policy: when to restart a dead node; None logs deaths only (`raftflow dev --no-restart`).
        shutdown: once set (SIGINT/SIGTERM), deaths are expected and no node is restarted.

    Guarantees: only `tick` acts, and only on the nodes of `cluster.node_ids`, through
    `cluster.start_node`; it sends no signal.
    """

    def __init__(self, cluster: SupervisedCluster, policy: RestartPolicy | None,
                 shutdown: Shutdown, *, now_s: float) -> None:
        self._cluster = cluster
        self._policy = policy
        self._shutdown = shutdown
        self._restarts: dict[str, int] = dict.fromkeys(cluster.node_ids, 0)
        self._exits: dict[str, deque[NodeExit]] = {
            n: deque(maxlen=EXITS_REMEMBERED_MAX) for n in cluster.node_ids}
        self._states: dict[str, NodeState] = {
            n: Running(cluster.processes[n].pid, now_s) for n in cluster.node_ids}

    def tick(self, now_s: float) -> None:
        """Notice deaths and run the restarts that are due. Call it often (every ~0.5 s)."""
        for node_id in self._cluster.node_ids:
            if self._shutdown.is_set():
                return
            state = self._states[node_id]
            match state:
                case Running():
                    self._check_running(node_id, state, now_s)
                case RestartDue():
                    if now_s >= state.due_at_s:
                        self._restart(node_id, now_s)
                case Abandoned():
                    pass
                case _:
                    assert_never(state)

    def _check_running(self, node_id: str, state: Running, now_s: float) -> None:
        process = self._cluster.processes[node_id]
        assert process.pid == state.pid, (node_id, process.pid, state.pid)
        exit_code = process.poll()
        if exit_code is None:
            return
        exits = self._exits[node_id]
        exits.append(NodeExit(started_at_s=state.started_at_s, exited_at_s=now_s,
                              exit_code=exit_code))
        decision = (DoNotRestart("--no-restart") if self._policy is None
                    else self._policy.decide(exits))
        died = f"raftflow dev: {node_id} (pid {state.pid}) exited with {exit_code}"
        match decision:
            case RestartAfter(delay_s=delay_s):
                self._states[node_id] = RestartDue(now_s + delay_s)
                _say(f"{died}; restarting it in {delay_s:.1f} s "
                     f"(restart {self._restarts[node_id] + 1})")
            case DoNotRestart(reason=reason):
                self._states[node_id] = Abandoned()
                _say(f"{died}; not restarting it ({reason})")
            case _:
                assert_never(decision)

    def _restart(self, node_id: str, now_s: float) -> None:
        if self._shutdown.is_set():  # a signal can arrive in the middle of a tick
            return
        process = self._cluster.start_node(node_id)
        assert self._cluster.processes[node_id] is process
        self._restarts[node_id] += 1
        self._states[node_id] = Running(process.pid, now_s)
        _say(f"raftflow dev: {node_id} restarted (pid {process.pid})")


def _say(line: str) -> None:
    print(line, flush=True)
