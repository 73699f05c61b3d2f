"""Encrypted payloads with the AES-GCM payload codec: the cluster stores only ciphertext for the
workflow's input and result, the signal and the activity's input and result.

Against the local cluster that `make run` starts:

    export RAFTFLOW_CODEC_KEY=$(.venv/bin/python examples/encryption_codec.py key)
    .venv/bin/python examples/encryption_codec.py worker
    .venv/bin/python examples/encryption_codec.py send letter-1 "meet at noon"   # another shell
    .venv/bin/raftflow workflow show -w letter-1    # the server's view: envelopes only

The worker and the sender share the key (base64 in RAFTFLOW_CODEC_KEY, named by
RAFTFLOW_CODEC_KEY_ID, default `k1`): a real application fetches it from its key store. Ids,
type names, task queues and failure messages are not encrypted (docs/security.md).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
from datetime import timedelta
from typing import Any

from raftflow.sdk import Client, Worker, activity, workflow
from raftflow.sdk.contrib.aes_gcm_codec import AesGcmCodec

TASK_QUEUE = "letters"
ADDRESSES = ["http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8082"]


@activity.defn
async def stamp(text: str) -> str:
    return f"{text} (stamped)"


@workflow.defn
class SealedLetter:
    def __init__(self) -> None:
        self.signer = ""

    @workflow.run
    async def run(self, text: str) -> dict[str, Any]:
        stamped = await workflow.execute_activity(stamp, text,
                                                  start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: bool(self.signer))
        return {"letter": stamped, "countersigned_by": self.signer}

    @workflow.signal
    def countersign(self, name: str) -> None:
        self.signer = name

    @workflow.query
    def status(self) -> str:
        return f"countersigned by {self.signer}" if self.signer else "waiting for a signature"


def codec_from_env() -> AesGcmCodec:
    key = os.environ.get("RAFTFLOW_CODEC_KEY")
    if not key:
        raise SystemExit("set RAFTFLOW_CODEC_KEY (encryption_codec.py key prints a new one)")
    key_id = os.environ.get("RAFTFLOW_CODEC_KEY_ID", "k1")
    return AesGcmCodec({key_id: base64.b64decode(key)}, encrypt_with=key_id)


async def run_worker(addresses: list[str], codec: AesGcmCodec) -> None:
    # The worker uses its client's codec: it decrypts tasks and encrypts what it answers.
    async with await Client.connect(addresses, payload_codec=codec) as client:
        worker = Worker(client, task_queue=TASK_QUEUE, workflows=[SealedLetter],
                        activities=[stamp])
        print(f"encrypting worker polling task queue {TASK_QUEUE!r}", flush=True)
        await worker.run()


async def send_letter(addresses: list[str], codec: AesGcmCodec, letter_id: str,
                      text: str) -> None:
    async with await Client.connect(addresses, payload_codec=codec) as client:
        handle = await client.start_workflow(SealedLetter.run, text, id=letter_id,
                                             task_queue=TASK_QUEUE)
        await handle.signal(SealedLetter.countersign, "the sender")
        print("result:", await handle.result())
        print("status:", await handle.query(SealedLetter.status))
        started = (await handle.history()).events[0].attributes
        print("the server holds the input as:", getattr(started, "input", b"")[:120].decode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", action="append", help="node URL (repeatable)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("key", help="print a new random AES-256 key, base64")
    commands.add_parser("worker", help="run the encrypting worker")
    send = commands.add_parser("send", help="send a letter and follow it")
    send.add_argument("letter_id")
    send.add_argument("text")
    args = parser.parse_args()
    addresses = args.address or ADDRESSES
    try:
        if args.command == "key":
            print(base64.b64encode(AesGcmCodec.new_key()).decode())
        elif args.command == "worker":
            asyncio.run(run_worker(addresses, codec_from_env()))
        else:
            asyncio.run(send_letter(addresses, codec_from_env(), args.letter_id, args.text))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
