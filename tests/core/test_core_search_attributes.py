"""Goal: the shard core types search attributes against its copy of the namespace's registry,
at start and in `UpsertWorkflowSearchAttributes`, exactly as promised: registered values are
kept typed and sorted on the run, merged by upserts, carried over a continue-as-new and shown
in the description; an unregistered name, a value of the wrong JSON type or a limit beyond
its bound is refused with a field naming the attribute, and changes nothing (a completion
carrying a bad upsert is refused whole, like any invalid workflow command).

Method: the core driver (pure core, no IO); every refusal goes through `run_unchanged`, which
compares the state digest before and after.
"""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from raftflow.protocol.commands import (
    CompleteWorkflowExecution,
    ConfigureNamespace,
    ContinueAsNewWorkflowExecution,
    RespondWorkflowTaskCompleted,
    StartTimer,
    TaskToken,
    WorkflowCommand,
)
from raftflow.protocol.errors import ErrorCode
from raftflow.protocol.events import EventType, UpsertWorkflowSearchAttributesEventAttributes
from raftflow.protocol.results import Ack, WorkflowDescription
from raftflow.protocol.rfc3339 import parse_rfc3339_ms
from raftflow.protocol.search_attributes import (
    SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX,
    SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX,
    SEARCH_ATTRIBUTES_PER_RUN_MAX,
    AttributeType,
    JsonAttributeValue,
    SearchAttribute,
    UpsertWorkflowSearchAttributes,
    json_map,
)
from raftflow.shards.core import limits, queries
from tests.core.core_driver import NAMESPACE, Shard, start_command

REGISTRY = {"CustomerId": AttributeType.KEYWORD, "Amount": AttributeType.INT,
            "Score": AttributeType.DOUBLE, "Vip": AttributeType.BOOL,
            "DueAt": AttributeType.DATETIME}


def _shard(registry: dict[str, AttributeType] | None = None) -> Shard:
    shard = Shard()
    result = shard.run(ConfigureNamespace(
        now_ms=shard.now_ms, namespace=NAMESPACE, retention_ms=limits.DEFAULT_RETENTION_MS,
        search_attributes=REGISTRY if registry is None else registry)).result
    assert result == Ack()
    return shard


def _completion(shard: Shard, token: TaskToken,
                *commands: WorkflowCommand) -> RespondWorkflowTaskCompleted:
    return RespondWorkflowTaskCompleted(now_ms=shard.now_ms, token=token, commands=commands)


def _start(shard: Shard, attributes: dict[str, JsonAttributeValue],
           workflow_id: str = "wf") -> str:
    return shard.start(workflow_id, search_attributes=attributes)


def test_a_start_keeps_its_attributes_typed_and_sorted() -> None:
    shard = _shard()
    run_id = _start(shard, {"Vip": True, "CustomerId": "c1", "Amount": 7, "Score": 2,
                            "DueAt": "2026-12-06T11:00:00.250+01:00"})
    assert shard.execution(run_id).search_attributes == (
        SearchAttribute(name="Amount", type=AttributeType.INT, value=7),
        SearchAttribute(name="CustomerId", type=AttributeType.KEYWORD, value="c1"),
        SearchAttribute(name="DueAt", type=AttributeType.DATETIME, value=parse_rfc3339_ms("2026-12-06T10:00:00.250Z")),
        SearchAttribute(name="Score", type=AttributeType.DOUBLE, value=2.0),
        SearchAttribute(name="Vip", type=AttributeType.BOOL, value=True))
    described = queries.describe(shard.state, NAMESPACE, "wf")
    assert isinstance(described, WorkflowDescription)
    assert json_map(described.search_attributes) == {
        "Amount": 7, "CustomerId": "c1", "DueAt": "2026-12-06T10:00:00.250Z", "Score": 2.0,
        "Vip": True}


@pytest.mark.parametrize(("attributes", "field", "words"), [
    ({"Nope": "x"}, "search_attributes.Nope", "not registered"),
    ({"Amount": "7"}, "search_attributes.Amount", "JSON integer"),
    ({"Amount": 1.5}, "search_attributes.Amount", "JSON integer"),
    ({"Amount": True}, "search_attributes.Amount", "JSON integer"),
    ({"Amount": 2**63}, "search_attributes.Amount", "64 bits"),
    ({"Vip": 1}, "search_attributes.Vip", "true or false"),
    ({"Score": "1.5"}, "search_attributes.Score", "JSON number"),
    ({"Score": float("inf")}, "search_attributes.Score", "finite"),
    ({"CustomerId": 5}, "search_attributes.CustomerId", "JSON string"),
    ({"CustomerId": "x" * (SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX + 1)},
     "search_attributes.CustomerId", "SEARCH_ATTRIBUTE_KEYWORD_LENGTH_MAX"),
    ({"CustomerId": "\ud800"}, "search_attributes.CustomerId", "surrogate"),
    ({"DueAt": "yesterday"}, "search_attributes.DueAt", "RFC 3339"),
    ({"DueAt": "2026-12-06T10:00:00.0001Z"}, "search_attributes.DueAt", "milliseconds"),
    ({"DueAt": 5}, "search_attributes.DueAt", "RFC 3339"),
])
def test_a_start_with_a_bad_attribute_is_refused_and_changes_nothing(
        attributes: dict[str, JsonAttributeValue], field: str, words: str) -> None:
    shard = _shard()
    refused = shard.run_unchanged(replace(start_command("wf", now_ms=shard.now_ms),
        search_attributes={"CustomerId": "fine", **attributes}))
    assert refused.code is ErrorCode.INVALID_ARGUMENT
    assert refused.field == field and words in refused.message and field in refused.message


def test_an_unconfigured_namespace_has_no_attributes_to_set() -> None:
    shard = Shard()
    refused = shard.run_unchanged(replace(start_command("wf", now_ms=shard.now_ms),
        search_attributes={"CustomerId": "c1"}))
    assert refused.field == "search_attributes.CustomerId"


def test_more_than_the_per_run_limit_at_start_is_refused() -> None:
    registry = {f"A{i}": AttributeType.INT for i in range(SEARCH_ATTRIBUTES_PER_RUN_MAX + 1)}
    shard = _shard(registry)
    refused = shard.run_unchanged(replace(start_command("wf", now_ms=shard.now_ms),
        search_attributes={name: 1 for name in registry}))
    assert "SEARCH_ATTRIBUTES_PER_RUN_MAX" in refused.message


def test_upserts_merge_record_an_event_and_survive_continue_as_new() -> None:
    shard = _shard()
    run_id = _start(shard, {"CustomerId": "c1", "Amount": 1})
    output = shard.decide(run_id, UpsertWorkflowSearchAttributes(
        search_attributes={"Amount": 9, "Vip": False}), StartTimer(
            timer_id="t", start_to_fire_timeout_ms=1_000))
    upserted = [e for e in output.events
                if e.event_type is EventType.UPSERT_WORKFLOW_SEARCH_ATTRIBUTES]
    assert len(upserted) == 1
    attributes = upserted[0].attributes
    assert isinstance(attributes, UpsertWorkflowSearchAttributesEventAttributes)
    assert json_map(attributes.search_attributes) == {"Amount": 9, "Vip": False}
    assert attributes.workflow_task_completed_event_id == upserted[0].event_id - 1
    assert json_map(shard.execution(run_id).search_attributes) == {
        "Amount": 9, "CustomerId": "c1", "Vip": False}
    shard.wake(run_id)
    shard.decide(run_id, ContinueAsNewWorkflowExecution(input=b"1"))
    new_run = shard.state.open_runs[(NAMESPACE, "wf")]
    assert new_run != run_id
    assert shard.execution(new_run).search_attributes == shard.execution(
        run_id).search_attributes


@pytest.mark.parametrize(("upsert", "field"), [
    ({"Nope": 1}, "commands[1].search_attributes.Nope"),
    ({"Amount": "nine"}, "commands[1].search_attributes.Amount"),
    ({}, "commands[1].search_attributes"),
])
def test_a_completion_with_a_bad_upsert_is_refused_whole(
        upsert: dict[str, JsonAttributeValue], field: str) -> None:
    shard = _shard()
    run_id = _start(shard, {"CustomerId": "c1"})
    task = shard.poll_workflow_task(run_id)
    refused = shard.run_unchanged(_completion(shard, task.token, StartTimer(timer_id="t", start_to_fire_timeout_ms=5),
        UpsertWorkflowSearchAttributes(search_attributes=upsert),
        CompleteWorkflowExecution()))
    assert refused.code is ErrorCode.INVALID_ARGUMENT and refused.field == field
    # The task is still started: the worker may answer again, correctly this time.
    shard.complete_task(task.token, UpsertWorkflowSearchAttributes(
        search_attributes={"Amount": 3}), CompleteWorkflowExecution())
    assert json_map(shard.execution(run_id).search_attributes) == {
        "Amount": 3, "CustomerId": "c1"}


def test_upserts_of_one_completion_count_together_against_the_run_limit() -> None:
    registry = {f"A{i:02}": AttributeType.INT for i in range(SEARCH_ATTRIBUTES_PER_RUN_MAX + 1)}
    shard = _shard(registry)
    names = sorted(registry)
    run_id = _start(shard, {name: 0 for name in names[:SEARCH_ATTRIBUTES_PER_RUN_MAX - 1]})
    task = shard.poll_workflow_task(run_id)
    refused = shard.run_unchanged(_completion(shard, task.token, UpsertWorkflowSearchAttributes(search_attributes={names[-2]: 1}),
        UpsertWorkflowSearchAttributes(search_attributes={names[-1]: 1})))
    assert refused.code is ErrorCode.LIMIT_EXCEEDED
    assert refused.field == "commands[1].search_attributes"


def test_configure_refuses_a_registry_beyond_its_limit() -> None:
    shard = Shard()
    registry = {f"A{i}": AttributeType.INT for i in range(SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX + 1)}
    refused = shard.run_unchanged(ConfigureNamespace(
        now_ms=shard.now_ms, namespace=NAMESPACE, retention_ms=limits.DEFAULT_RETENTION_MS,
        search_attributes=registry))
    assert refused.code is ErrorCode.LIMIT_EXCEEDED
    assert refused.field == "SEARCH_ATTRIBUTES_PER_NAMESPACE_MAX"
