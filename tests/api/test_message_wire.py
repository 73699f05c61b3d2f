"""Goal: the courier's internal body carries every kind of outbox message to the target node
unchanged (bytes as base64, a failure's Payload details as their JSON value), and batches stay
within their payload bound.

Method: encode as `MessageCourier` does, decode as the route handler does
(`validation.decode_body`), compare; `_batch` on a made-up outbox.
"""

from __future__ import annotations

from raftflow.api import message_courier
from raftflow.api.validation import decode_body
from raftflow.protocol.commands import Failure
from raftflow.protocol.http_bodies import DeliverMessagesRequest
from raftflow.protocol.messages import ChildClosedMessage, OutboxEntry, SignalMessage
from raftflow.protocol.payload import Payload
from tests.protocol import samples


def _entry(message_id: str, body: SignalMessage | ChildClosedMessage) -> OutboxEntry:
    return OutboxEntry(message_id=message_id, created_ms=1, source_namespace="default",
                       source_workflow_id="w", source_run_id="r", initiated_event_id=5,
                       body=body)


def test_every_message_kind_crosses_the_internal_route_unchanged() -> None:
    closed = _entry("c/9", ChildClosedMessage(
        namespace="default", workflow_id="p", run_id="pr", initiated_event_id=5,
        child_workflow_id="c", child_run_id="c", child_workflow_type="C", status="failed",
        failure=Failure(message="boom", details=Payload(b'{"why":[1,2]}'))))
    binary = _entry("r/5", SignalMessage(namespace="default", workflow_id="x",
                                         signal_name="s", input=b'\x00\xff"not json'))
    entries = (samples.SIGNAL_ENTRY, samples.CANCEL_ENTRY, *samples.CHILD_ENTRIES, closed, binary)
    raw = message_courier.delivery_body(entries)
    decoded = decode_body(raw, DeliverMessagesRequest,
                          body_bytes_max=message_courier.DELIVER_BODY_BYTES_MAX)
    assert decoded.entries == entries


def test_a_batch_stops_at_its_payload_bound_but_always_takes_one() -> None:
    big = message_courier.BATCH_PAYLOAD_BYTES_MAX // 2 + 1
    outbox = {f"r/{i}": _entry(f"r/{i}", SignalMessage(namespace="d", workflow_id="x",
                                                      signal_name="s", input=b"x" * big))
              for i in range(1, 4)}
    taken, entries = message_courier._batch(outbox, ["r/9", "r/1", "r/2", "r/3"])  # noqa: SLF001
    assert taken == ["r/9", "r/1"] and [e.message_id for e in entries] == ["r/1"]
    huge = {"r/1": _entry("r/1", SignalMessage(namespace="d", workflow_id="x", signal_name="s",
                                               input=b"x" * (3 * big)))}
    assert message_courier._batch(huge, ["r/1", "r/2"])[0] == ["r/1"]  # noqa: SLF001
