"""Goal: for any program of activities, timers, gathers and signal waits, and any order in
which the server delivers results, signals and refused answers, replay is exact.

Method: hypothesis draws a program (the workflow's input) and a seed for a small server model
that answers each task's commands, completes a random subset of pending activities and
timers, sends signals, and sometimes refuses an answer (WorkflowTaskFailed) as the real server
does when a signal arrives during a close. Then: the run completes; its result lists every
signal once, in history order; a fresh runner replaying the whole history adds nothing; a
runner fed one event at a time never diverges; and for each completed task, replaying the
prefix up to its start reproduces exactly the commands recorded for it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from raftflow.sdk import workflow
from tests.sdk.history_builder import Driver, activate, runner_for
from tests.sdk.sample_workflows import FAST, square
from tests.sdk.test_replay_golden import comparable, recorded_tasks

STEPS_MAX = 6
TASKS_MAX = 200


@workflow.defn
class Program:
    def __init__(self) -> None:
        self.signals: list[int] = []

    @workflow.run
    async def run(self, steps: list[list[Any]]) -> dict[str, Any]:
        log: list[Any] = []
        for kind, value in steps:
            if kind == "act":
                log.append(await workflow.execute_activity(square, value,
                                                           start_to_close_timeout=FAST))
            elif kind == "gather":
                log.append(list(await asyncio.gather(*(
                    workflow.execute_activity(square, n, start_to_close_timeout=FAST)
                    for n in range(value)))))
            elif kind == "timer":
                await workflow.sleep(value / 1000)
                log.append(f"slept {value}")
            elif kind == "signal":
                await workflow.wait_condition(self._more_than(len(self.signals)))
                log.append("signalled")
            else:
                log.append(workflow.patched(str(value)))
        return {"log": log, "signals": self.signals}

    def _more_than(self, seen: int) -> Callable[[], bool]:
        return lambda: len(self.signals) > seen

    @workflow.signal
    def poke(self, n: int) -> None:
        self.signals.append(n)


step = st.one_of(
    st.tuples(st.just("act"), st.integers(0, 5)).map(list),
    st.tuples(st.just("gather"), st.integers(1, 3)).map(list),
    st.tuples(st.just("timer"), st.integers(1, 2000)).map(list),
    st.tuples(st.just("signal"), st.just(0)).map(list),
    st.tuples(st.just("patch"), st.sampled_from(["a", "b"])).map(list),
)


def run_server(program: list[list[Any]], rng: random.Random) -> tuple[Driver, list[int]]:
    driver = Driver(Program, [program])
    pending: dict[int, tuple[str, str]] = {}  # scheduled/started event id → (kind, id)
    sent_signals: list[int] = []
    for _ in range(TASKS_MAX):
        commands = driver.task()
        if commands and commands[-1]["type"] == "CompleteWorkflowExecution" and rng.random() < 0.3:
            # A signal raced with the close: the server refuses the answer, like the real one.
            driver.history.fail_task()
            sent_signals.append(len(sent_signals))
            driver.history.signal("poke", sent_signals[-1])
            continue
        ids = driver.commit(commands)
        if driver.runner.is_done:
            return driver, sent_signals
        for key, event_id in ids.items():
            pending[event_id] = (key.split()[0], key.split()[1])
        for command in commands:
            if command["type"] == "CancelTimer":
                pending = {k: v for k, v in pending.items() if v != ("timer", command["timer_id"])}
        deliver = [k for k in sorted(pending) if rng.random() < 0.6] or sorted(pending)[:1]
        rng.shuffle(deliver)
        for event_id in deliver:
            kind, item_id = pending.pop(event_id)
            if kind == "activity":
                driver.history.activity_completed(event_id, int(item_id))
            else:
                driver.history.timer_fired(item_id, event_id)
        if not deliver or rng.random() < 0.3:
            sent_signals.append(len(sent_signals))
            driver.history.signal("poke", sent_signals[-1])
    raise AssertionError("the program did not finish")


@settings(max_examples=60, deadline=None)
@given(program=st.lists(step, max_size=STEPS_MAX), seed=st.integers(0, 2**32))
def test_any_program_replays_exactly(program: list[list[Any]], seed: int) -> None:
    driver, sent_signals = run_server(program, random.Random(seed))
    events = driver.history.events
    close = events[-1]
    assert close["event_type"] == "WorkflowExecutionCompleted", close
    assert close["attributes"]["result"]["signals"] == sent_signals
    assert activate(runner_for(Program), events) == []
    sticky = runner_for(Program)
    for event in events:
        activate(sticky, [event])
    for started_index, expected in recorded_tasks(events):
        produced = activate(runner_for(Program), events[:started_index + 1])
        assert [comparable(c) for c in produced] == expected
