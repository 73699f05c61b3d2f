"""Goal: schedules over HTTP on a live node: create (idempotent by request_id, 409 for another
create of the same id), the leader's ticker starting actions with deterministic workflow ids,
SKIP while an action runs, the action's close freeing the schedule, pause with a note, trigger
now, list, describe, update, delete (then 404), and 400 naming the field for a bad zone.

Method: the one-node cluster (`one`, conftest.py, two shards: schedules and their actions may
live on different shards, so starts and closes cross the outbox) driven over HTTP; nobody
works on the actions' task queue, so an action runs until the test terminates it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from raftflow.cli import main
from tests.api.gateway_harness import API, NS, Call, LiveCluster, _drive, _error_code, _wid


def _schedule(prefix: str, **policies: Any) -> dict[str, Any]:
    return {"spec": {"intervals": [{"every_ms": 1000}]},
            "action": {"workflow_id": prefix, "workflow_type": "Job", "task_queue": "sched-q",
                       "input": {"n": 1}},
            "policies": {"overlap": "skip", **policies}}


async def _until(call: Call, path: str, test: Any, timeout_s: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        status, body, _ = await call("GET", path)
        assert status == 200, body
        if test(body):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.1)


def test_a_schedule_lives_its_life_over_http(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        sid, prefix = _wid("every-second"), _wid("job")
        schedules = f"{API}/namespaces/{NS}/schedules"
        one_schedule = f"{schedules}/{sid}"
        body = {"schedule_id": sid, "schedule": _schedule(prefix), "request_id": "c-1"}
        status, created, _ = await call("POST", schedules, json=body)
        assert (status, created) == (201, {"schedule_id": sid})
        assert (await call("POST", schedules, json=body))[0] == 201  # a retry
        status, refused, _ = await call("POST", schedules, json={**body, "request_id": "c-2"})
        assert status == 409 and _error_code(refused) == "schedule_already_exists"

        described = await _until(call, one_schedule,
                                 lambda d: d["info"]["num_actions_skipped_overlap"] >= 1)
        info = described["info"]
        (running,) = info["running_actions"]
        assert running["workflow_id"].startswith(prefix + "-20")
        assert running["workflow_id"].endswith("Z") and info["num_actions"] == 1
        assert len(info["next_action_times_ms"]) == 10
        workflow = f"{API}/namespaces/{NS}/workflows/{running['workflow_id']}"
        status, run, _ = await call("GET", workflow)
        assert status == 200 and run["run_id"] == running["run_id"]

        status, _, _ = await call("POST", workflow + "/terminate", json={"reason": "next"})
        assert status == 200
        await _until(call, one_schedule, lambda d: d["info"]["num_actions"] >= 2)

        status, _, _ = await call("POST", one_schedule + "/patch",
                                  json={"pause": "maintenance"})
        assert status == 200
        status, described, _ = await call("GET", one_schedule)
        state = described["schedule"]["state"]
        assert state["paused"] is True and state["note"] == "maintenance"
        actions = described["info"]["num_actions"]
        status, _, _ = await call("POST", one_schedule + "/patch", json={
            "trigger_immediately": {"overlap": "allow_all"}})
        assert status == 200
        status, described, _ = await call("GET", one_schedule)
        assert described["info"]["num_actions"] == actions + 1

        status, listed, _ = await call("GET", schedules)
        assert status == 200
        assert sid in [entry["schedule_id"] for entry in listed["schedules"]]

        update = {"schedule": _schedule(prefix, catchup_window_ms=60_000)}
        assert (await call("POST", one_schedule + "/update", json=update))[0] == 200
        status, described, _ = await call("GET", one_schedule)
        assert described["schedule"]["policies"]["catchup_window_ms"] == 60_000
        assert described["schedule"]["state"]["paused"] is False  # the update's state

        assert (await call("DELETE", one_schedule + "?request_id=d-1"))[0] == 200
        assert (await call("DELETE", one_schedule + "?request_id=d-1"))[0] == 200
        status, gone, _ = await call("GET", one_schedule)
        assert status == 404 and _error_code(gone) == "not_found"

    _drive(one, one.url(one.nodes[0]), scenario)


def test_a_bad_schedule_is_a_400_naming_the_field(one: LiveCluster) -> None:
    async def scenario(call: Call) -> None:
        schedule = _schedule("job")
        schedule["spec"]["time_zone_name"] = "Mars/Olympus"
        status, body, _ = await call("POST", f"{API}/namespaces/{NS}/schedules", json={
            "schedule_id": _wid("bad"), "schedule": schedule})
        assert status == 400 and body["error"]["field"] == "schedule.spec.time_zone_name"
        schedule = _schedule("job")
        schedule["spec"]["cron_expressions"] = ["61 * * * *"]
        status, body, _ = await call("POST", f"{API}/namespaces/{NS}/schedules", json={
            "schedule_id": _wid("bad"), "schedule": schedule})
        assert status == 400 and body["error"]["field"].startswith("schedule.spec.cron")

    _drive(one, one.url(one.nodes[0]), scenario)


def test_the_cli_drives_a_schedule(one: LiveCluster, capsys: Any) -> None:
    address = one.url(one.nodes[0])
    sid = _wid("cli")

    def run(*argv: str) -> Any:
        assert main([*argv, "--address", address, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    assert run("schedule", "create", "-s", sid, "--interval", "1h/5m", "--cron", "0 6 * * *",
               "--time-zone", "Europe/Berlin", "-w", "report", "-t", "Report", "-q", "rq",
               "-i", '{"day": 1}', "--overlap", "buffer_one", "--catchup-window", "1m",
               "--remaining-actions", "3") == {"schedule_id": sid}
    described = run("schedule", "describe", "-s", sid)
    schedule = described["schedule"]
    assert schedule["spec"]["intervals"] == [{"every_ms": 3_600_000, "offset_ms": 300_000}]
    assert schedule["spec"]["time_zone_name"] == "Europe/Berlin"
    assert schedule["policies"]["catchup_window_ms"] == 60_000
    assert schedule["state"]["remaining_actions"] == 3
    assert len(described["info"]["next_action_times_ms"]) == 10
    assert sid in [s["schedule_id"] for s in run("schedule", "list")["schedules"]]
    run("schedule", "pause", "-s", sid, "--note", "holiday")
    assert run("schedule", "describe", "-s", sid)["schedule"]["state"]["note"] == "holiday"
    run("schedule", "unpause", "-s", sid)
    run("schedule", "trigger", "-s", sid, "--overlap", "allow_all")
    run("schedule", "backfill", "-s", sid, "--start-at", "2026-01-01T00:00:00Z",
        "--end-at", "2026-01-01T03:00:00Z")
    described = run("schedule", "describe", "-s", sid)
    assert described["info"]["num_actions"] >= 1  # the trigger (backfills buffer behind it)
    run("schedule", "update", "-s", sid, "--interval", "2h", "-w", "report", "-t", "Report",
        "-q", "rq")
    assert run("schedule", "describe", "-s", sid)["schedule"]["spec"]["intervals"] == [
        {"every_ms": 7_200_000, "offset_ms": 0}]
    run("schedule", "delete", "-s", sid)
    assert main(["schedule", "describe", "-s", sid, "--address", address]) == 1
    assert "not_found" in capsys.readouterr().err
