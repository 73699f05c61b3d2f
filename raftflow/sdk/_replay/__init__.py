"""Deterministic replay of workflow code over history (the SDK's pure core).

Public to the worker: `WorkflowRunner`. Everything else here is private machinery.
"""

from raftflow.sdk._replay.runner import WorkflowRunner

__all__ = ["WorkflowRunner"]
