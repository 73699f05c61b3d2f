"""Workflows of the data-dir upgrade fixture (tests/data/upgrade-v0.1/).

The same definitions were registered by the release that wrote the fixture
(`make_upgrade_fixture.py`) and by the test that resumes it on the current code, so the
fixture's histories replay here. Changing a workflow's code here makes replay of the fixture
non-deterministic: keep them as they are.
"""

from __future__ import annotations

from datetime import timedelta

from raftflow.sdk import ApplicationError, activity, workflow

TASK_QUEUE = "upgrade"
# Nobody polled this queue while the fixture was written: its activities are still scheduled.
LATE_QUEUE = "upgrade-late"
HOUR = timedelta(hours=1)


@activity.defn
async def upper(text: str) -> str:
    return text.upper()


@workflow.defn
class UpgradeEcho:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(upper, text, start_to_close_timeout=HOUR)


@workflow.defn
class UpgradeFails:
    @workflow.run
    async def run(self, text: str) -> str:
        raise ApplicationError(f"refused {text}", type="Refused", non_retryable=True)


@workflow.defn
class UpgradeWaiter:
    """Waits for `go` signals until one says "stop", then returns what it heard."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    @workflow.run
    async def run(self, text: str) -> list[str]:
        await workflow.wait_condition(lambda: "stop" in self.heard)
        return [text, *self.heard]

    @workflow.signal
    def go(self, word: str) -> None:
        self.heard.append(word)


@workflow.defn
class UpgradeLateActivity:
    """Schedules an activity on a queue that had no worker when the fixture was written."""

    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(upper, text, task_queue=LATE_QUEUE,
                                               start_to_close_timeout=HOUR)


@workflow.defn
class UpgradeSleeper:
    """A durable timer that was pending when the fixture's cluster stopped; it is overdue when
    the test resumes the cluster, so the new code must fire it."""

    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(seconds)
        return "woke"


WORKFLOWS = [UpgradeEcho, UpgradeFails, UpgradeWaiter, UpgradeLateActivity, UpgradeSleeper]
