"""Is every shard back at its replication factor? Read from one settled cluster status.

Pure: a `PlacementReading` in, problems out, each as (subject, detail). The nemesis uses it to
wait between membership faults (no problem left = settled), the checker to judge the end of
the run (`replication_restored`). The rules, from issue 12:
- the replication factor is min(3, active members);
- every shard has exactly that many replicas, all on members that are active and alive;
- no move is in progress;
- the status lists exactly the members the harness holds (a node it removed or killed for good
  is gone, a node it joined is there).
"""

from __future__ import annotations

from raftflow.chaos.observations import PlacementReading

REPLICATION_FACTOR_MAX = 3


def replication_factor(reading: PlacementReading) -> int:
    active = sum(1 for _, state, _ in reading.members if state == "active")
    return min(REPLICATION_FACTOR_MAX, active)


def placement_problems(reading: PlacementReading) -> list[tuple[str, str]]:
    """What keeps the cluster from being settled; [] when every rule holds."""
    problems: list[tuple[str, str]] = []
    factor = replication_factor(reading)
    serving = {node for node, state, alive in reading.members if state == "active" and alive}
    if reading.moves:
        problems.append(("cluster", f"{reading.moves} moves still in progress after "
                                    f"{reading.waited_s:.0f} s, expected none"))
    listed = sorted(node for node, _, _ in reading.members)
    if listed != sorted(reading.expected_members):
        problems.append(("cluster", f"the status lists members {listed}, the harness holds "
                                    f"{sorted(reading.expected_members)}"))
    if not reading.shards:
        problems.append(("cluster", "the status lists no shard"))
    for shard, replicas in reading.shards:
        if len(replicas) != factor or len(set(replicas)) != len(replicas):
            problems.append((f"shard {shard}", f"replicas {list(replicas)}, expected "
                                               f"{factor} distinct (min(3, active members))"))
        elsewhere = sorted(set(replicas) - serving)
        if elsewhere:
            problems.append((f"shard {shard}", f"replicas on {elsewhere}, which are not live "
                                               f"active members ({sorted(serving)})"))
    assert all(subject for subject, _ in problems)
    return problems
