"""raftflow's Python SDK: author workflows and activities, run them with a worker, drive them
with a client. Temporal-shaped on purpose (`@workflow.defn`, `@activity.defn`,
`workflow.execute_activity`, `RetryPolicy`, `ApplicationError`, ...).

    from raftflow.sdk import Client, Worker, activity, workflow, RetryPolicy, errors
"""

from raftflow.sdk import activity, errors, workflow
from raftflow.sdk.client import Client, WorkflowHandle
from raftflow.sdk.errors import ActivityError, ApplicationError
from raftflow.sdk.retry import RetryPolicy
from raftflow.sdk.tls import TLSConfig
from raftflow.sdk.worker import Worker

__all__ = ["ActivityError", "ApplicationError", "Client", "RetryPolicy", "TLSConfig", "Worker",
           "WorkflowHandle", "activity", "errors", "workflow"]
