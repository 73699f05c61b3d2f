"""Workflow definitions: what `@workflow.defn`, `@workflow.run`, `@workflow.signal` and
`@workflow.query` record on a class, and name look-ups for the client and the worker.

Decorators only mark methods; `@workflow.defn` collects the marks into one frozen
`WorkflowDefinition` stored on the class, checked once at import time (one run method,
unique handler names, sync queries).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_DEFINITION = "__raftflow_workflow__"
_RUN_MARK = "__raftflow_run__"
_SIGNAL_MARK = "__raftflow_signal__"
_QUERY_MARK = "__raftflow_query__"
_UPDATE_MARK = "__raftflow_update__"
_VALIDATOR_MARK = "__raftflow_update_validator__"


@dataclass(frozen=True, slots=True)
class WorkflowDefinition:
    """A workflow class's type name, run method and handlers (by name → method name)."""

    name: str
    cls: type
    run_method: str
    signals: dict[str, str]
    queries: dict[str, str]
    # Exceptions (besides FailureError) that fail the workflow; any other fails the task.
    failure_exception_types: tuple[type[BaseException], ...]
    # Update handlers and their validators (by update name → method name).
    updates: dict[str, str] = field(default_factory=dict)
    validators: dict[str, str] = field(default_factory=dict)


def mark_run(fn: Callable[..., Any]) -> None:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"@workflow.run method {fn.__qualname__} must be `async def`")
    setattr(fn, _RUN_MARK, True)


def mark_signal(fn: Callable[..., Any], name: str | None) -> None:
    setattr(fn, _SIGNAL_MARK, name or fn.__name__)


def mark_query(fn: Callable[..., Any], name: str | None) -> None:
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"@workflow.query method {fn.__qualname__} must be a plain `def`: "
                        "queries read state, they never wait")
    setattr(fn, _QUERY_MARK, name or fn.__name__)


def mark_update(fn: Callable[..., Any], name: str | None) -> None:
    """Mark an update handler and give it `.validator`, the decorator of its validator."""
    update_name = name or fn.__name__
    setattr(fn, _UPDATE_MARK, update_name)

    def validator(check: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(check):
            raise TypeError(f"update validator {check.__qualname__} must be a plain `def`: "
                            "it runs before the update is accepted and may not wait")
        setattr(check, _VALIDATOR_MARK, update_name)
        return check

    setattr(fn, "validator", validator)  # noqa: B010 - a function attribute, Temporal's API


def define(cls: type, name: str | None,
           failure_exception_types: tuple[type[BaseException], ...]) -> WorkflowDefinition:
    """Collect the marks of `cls` into its definition and attach it to the class."""
    runs: list[str] = []
    signals: dict[str, str] = {}
    queries: dict[str, str] = {}
    updates: dict[str, str] = {}
    validators: dict[str, str] = {}
    for attribute, member in inspect.getmembers(cls, inspect.isfunction):
        if getattr(member, _RUN_MARK, False):
            runs.append(attribute)
        for mark, table in ((_SIGNAL_MARK, signals), (_QUERY_MARK, queries),
                            (_UPDATE_MARK, updates), (_VALIDATOR_MARK, validators)):
            handler_name = getattr(member, mark, None)
            if handler_name is None:
                continue
            if handler_name in table:
                raise TypeError(f"{cls.__qualname__}: two handlers named {handler_name!r}")
            table[handler_name] = attribute
    if len(runs) != 1:
        raise TypeError(f"{cls.__qualname__} needs exactly one @workflow.run method, "
                        f"found {runs or 'none'}")
    definition = WorkflowDefinition(name=name or cls.__name__, cls=cls, run_method=runs[0],
                                    signals=signals, queries=queries,
                                    failure_exception_types=failure_exception_types,
                                    updates=updates, validators=validators)
    setattr(cls, _DEFINITION, definition)
    return definition


def definition_of(cls: type) -> WorkflowDefinition:
    """The definition of a `@workflow.defn` class; TypeError for any other class."""
    definition = cls.__dict__.get(_DEFINITION)
    if not isinstance(definition, WorkflowDefinition):
        raise TypeError(f"{cls!r} is not a workflow: decorate it with @workflow.defn")
    return definition


def _owner(fn: Callable[..., Any]) -> WorkflowDefinition:
    qualname = getattr(fn, "__qualname__", "")
    module = inspect.getmodule(fn)
    owner: Any = module
    for part in qualname.split(".")[:-1]:
        owner = getattr(owner, part, None)
    if not isinstance(owner, type):
        raise TypeError(f"{fn!r} is not a method of a @workflow.defn class")
    return definition_of(owner)


def workflow_type_of(target: type | Callable[..., Any] | str) -> str:
    """The workflow type name of a class, its `@workflow.run` method, or a name."""
    if isinstance(target, str):
        return target
    if isinstance(target, type):
        return definition_of(target).name
    if not getattr(target, _RUN_MARK, False):
        raise TypeError(f"{target!r} is not a @workflow.run method")
    return _owner(target).name


def signal_name_of(target: Callable[..., Any] | str) -> str:
    """The signal name of a `@workflow.signal` method, or a name."""
    if isinstance(target, str):
        return target
    name = getattr(target, _SIGNAL_MARK, None)
    if not isinstance(name, str):
        raise TypeError(f"{target!r} is not a @workflow.signal method")
    return name


def update_name_of(target: Callable[..., Any] | str) -> str:
    """The update name of a `@workflow.update` method, or a name."""
    if isinstance(target, str):
        return target
    name = getattr(target, _UPDATE_MARK, None)
    if not isinstance(name, str):
        raise TypeError(f"{target!r} is not a @workflow.update method")
    return name


def query_name_of(target: Callable[..., Any] | str) -> str:
    """The query name of a `@workflow.query` method, or a name."""
    if isinstance(target, str):
        return target
    name = getattr(target, _QUERY_MARK, None)
    if not isinstance(name, str):
        raise TypeError(f"{target!r} is not a @workflow.query method")
    return name
