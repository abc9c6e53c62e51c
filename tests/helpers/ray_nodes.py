"""The data-pass tasks of the Ray engine, noting which Ray node ran them, in a module Ray's workers can import
(`tests.helpers`, not a test module). Each call leaves an empty file named `<pass>-<node id>-<random>` in the
folder named by $LITDATA_TEST_NODE_NOTES (all nodes of a test cluster share this machine's disk); the task's
result is the real one, untouched.

A pass's first tasks wait until a task of the same pass has started on another node too (at most
RENDEZVOUS_S): a task finishing before the second node's worker process is up would otherwise let Ray hand
the next task to the same, already leased, worker, and a whole pass of small tasks could run on one node.
Held this way, a node's only CPU stays busy, so a second task running at the same time must go to the other
node. An engine that never runs two tasks at once, or never on the second node, is seen by the test: the wait
gives up once for the pass, and the notes name one node."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from litdata.engines.tasks import count_partition, encode_partition

NOTES_ENV = "LITDATA_TEST_NODE_NOTES"
RENDEZVOUS_S = 60.0
NODES = 2


def nodes_noted(folder: Path, kind: str) -> set[str]:
    """The ids of the nodes that ran pass `kind` ("count" or "encode")."""
    return {p.name.split("-")[1] for p in folder.glob(f"{kind}-*")}


def _note(kind: str) -> None:
    import ray

    folder = Path(os.environ[NOTES_ENV])
    (folder / f"{kind}-{ray.get_runtime_context().get_node_id()}-{uuid.uuid4().hex}").touch()
    gave_up = folder / f"gave-up-{kind}"
    deadline = time.monotonic() + RENDEZVOUS_S
    while len(nodes_noted(folder, kind)) < NODES and not gave_up.exists():
        if time.monotonic() > deadline:
            gave_up.touch()
        time.sleep(0.05)


def count_partition_noting_node(*args):
    _note("count")
    return count_partition(*args)


def encode_partition_noting_node(*args):
    _note("encode")
    return encode_partition(*args)
