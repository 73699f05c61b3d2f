"""Goal: a temporalio program ports by changing its imports: the names it takes from
`temporalio.client`, `temporalio.common`, `temporalio.exceptions` and `temporalio.workflow`
for the features of issues 14-15 are importable from `raftflow.sdk` (and the workflow-side ones
from `raftflow.sdk.workflow`, as in `temporalio.workflow`), and are what the SDK uses.

Method: import each name; check a few are the very objects the modules that define them hold.
"""

from __future__ import annotations

import raftflow.sdk as sdk
from raftflow.sdk import _child_workflows, _external, errors, workflow

# temporalio.client, .common, .exceptions: top-level names of raftflow.sdk.
TOP_LEVEL = (
    "Client", "WorkflowHandle", "RetryPolicy", "ApplicationError", "ActivityError",
    "ChildWorkflowError", "WorkflowAlreadyStartedError", "WorkflowFailureError",
    "WorkflowUpdateHandle", "WorkflowUpdateStage", "WorkflowUpdateFailedError",
    "ChildWorkflowHandle", "ExternalWorkflowHandle", "ParentClosePolicy",
    "Schedule", "ScheduleSpec", "ScheduleIntervalSpec", "ScheduleCalendarSpec", "ScheduleRange",
    "ScheduleActionStartWorkflow", "SchedulePolicy", "ScheduleOverlapPolicy", "ScheduleState",
    "ScheduleBackfill", "ScheduleUpdate", "ScheduleUpdateInput", "ScheduleHandle",
    "ScheduleAlreadyRunningError", "Worker",
)
# temporalio.workflow: names of raftflow.sdk.workflow.
WORKFLOW_SIDE = (
    "defn", "run", "signal", "query", "update", "execute_activity", "start_child_workflow",
    "execute_child_workflow", "get_external_workflow_handle", "ChildWorkflowHandle",
    "ExternalWorkflowHandle", "ParentClosePolicy", "continue_as_new", "info", "sleep",
    "wait_condition", "uuid4", "now", "patched",
)


def test_every_name_is_importable_and_listed() -> None:
    assert [n for n in TOP_LEVEL if not hasattr(sdk, n)] == []
    assert [n for n in TOP_LEVEL if n not in sdk.__all__] == []
    assert [n for n in WORKFLOW_SIDE if not hasattr(workflow, n)] == []


def test_the_names_are_the_sdks_own_objects() -> None:
    assert sdk.ChildWorkflowHandle is workflow.ChildWorkflowHandle is (
        _child_workflows.ChildWorkflowHandle)
    assert sdk.ExternalWorkflowHandle is _external.ExternalWorkflowHandle
    assert sdk.ParentClosePolicy is workflow.ParentClosePolicy
    assert sdk.ChildWorkflowError is errors.ChildWorkflowError
    assert sdk.WorkflowAlreadyStartedError is errors.WorkflowAlreadyStartedError
