"""raftflow's Python SDK: author workflows and activities, run them with a worker, drive them
with a client. Temporal-shaped on purpose (`@workflow.defn`, `@activity.defn`,
`workflow.execute_activity`, `RetryPolicy`, `ApplicationError`, ...).

    from raftflow.sdk import Client, Worker, activity, workflow, RetryPolicy, errors

Payload codecs (`converter.PayloadCodec`, e.g. encryption) plug into `Client.connect(...,
payload_codec=...)`; an AES-GCM one is in `raftflow.sdk.contrib.aes_gcm_codec`.
"""

from raftflow.sdk import activity, converter, errors, workflow
from raftflow.sdk._child_workflows import ChildWorkflowHandle
from raftflow.sdk._external import ExternalWorkflowHandle
from raftflow.sdk._schedule_handle import ScheduleAlreadyRunningError, ScheduleHandle
from raftflow.sdk._updates import (
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from raftflow.sdk.client import Client, WorkflowHandle
from raftflow.sdk.converter import Payload, PayloadCodec
from raftflow.sdk.errors import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    PayloadCodecError,
    WorkflowAlreadyStartedError,
    WorkflowFailureError,
)
from raftflow.sdk.retry import RetryPolicy
from raftflow.sdk.schedules import *  # noqa: F403  # temporalio's Schedule* names
from raftflow.sdk.schedules import __all__ as _schedule_names
from raftflow.sdk.tls import TLSConfig
from raftflow.sdk.worker import Worker
from raftflow.sdk.workflow import ParentClosePolicy

__all__ = ["ActivityError", "ApplicationError", "ChildWorkflowError", "ChildWorkflowHandle",
           "Client", "ExternalWorkflowHandle", "ParentClosePolicy", "Payload", "PayloadCodec",
           "PayloadCodecError", "RetryPolicy", "TLSConfig", "Worker",
           "WorkflowAlreadyStartedError", "WorkflowFailureError", "WorkflowHandle",
           "WorkflowUpdateFailedError", "WorkflowUpdateHandle", "WorkflowUpdateStage",
           "activity", "converter", "errors", "workflow",
           "ScheduleAlreadyRunningError", "ScheduleHandle", *_schedule_names]
