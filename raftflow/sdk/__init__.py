"""raftflow's Python SDK: author workflows and activities, run them with a worker, drive them
with a client. Temporal-shaped on purpose (`@workflow.defn`, `@activity.defn`,
`workflow.execute_activity`, `RetryPolicy`, `ApplicationError`, ...).

    from raftflow.sdk import activity, workflow, RetryPolicy, errors
"""

from raftflow.sdk import activity, errors, workflow
from raftflow.sdk.errors import ActivityError, ApplicationError
from raftflow.sdk.retry import RetryPolicy

# --- client/worker half (other engineer): add the two exports here, e.g.
# from raftflow.sdk.client import Client, WorkflowHandle
# from raftflow.sdk.worker import Worker
# and append "Client", "WorkflowHandle", "Worker" to __all__ below. ---

__all__ = ["ActivityError", "ApplicationError", "RetryPolicy", "activity", "errors", "workflow"]
