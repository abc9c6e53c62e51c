"""`--engine ray --ray-address` against a Ray cluster of two nodes on this machine (ray.cluster_utils.Cluster: a
head node and a second node, each with its own raylet, object store and worker processes, one CPU each): the
output is byte-identical to the local engine's, and partitions of both passes ran on both nodes."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from litdata.demo import DEMO_IMAGE_ROOT, DEMO_SOURCES, DEMO_TOKENIZER_DIR
from tests.helpers.compile import compile_cli
from tests.helpers.ray_nodes import NOTES_ENV, count_partition_noting_node, encode_partition_noting_node, nodes_noted

ray = pytest.importorskip("ray")

OBJECT_STORE_BYTES = 100 << 20  # per node; Ray's minimum is 75 MiB, and the demo's results are a few MiB


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """(cluster, folder of the node notes). Ray's temporary folder is a private one: a cluster started this way
    writes its address to <temp>/ray/ray_current_cluster, where any `ray.init()` on the machine (another test's
    local instance) would otherwise find it and connect to it. Short, under /tmp: Ray's socket paths are in it."""
    notes = tmp_path_factory.mktemp("node-notes")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {"RAY_TMPDIR": temp, NOTES_ENV: str(notes)}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # before the nodes start: their raylets and workers inherit it
    cluster = None
    try:
        cluster = start_two_nodes()
        yield cluster, notes
    finally:
        if cluster is not None:
            cluster.shutdown()
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(temp, ignore_errors=True)


def start_two_nodes():
    """Ray gives a raylet a fixed 30 s to register; on the loaded CI machine that sometimes runs out, so the
    cluster is started up to three times (as tests/engines/test_ray_engine.py starts its local instance)."""
    from ray.cluster_utils import Cluster

    for attempt in range(3):
        cluster = Cluster()
        try:
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False)  # head
            cluster.add_node(num_cpus=1, object_store_memory=OBJECT_STORE_BYTES)
            cluster.wait_for_nodes()
            return cluster
        except Exception:  # Ray raises a bare Exception for a start-up timeout
            cluster.shutdown()
            if attempt == 2:
                raise


def files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_two_node_cluster_gives_the_local_bytes_and_runs_partitions_on_both_nodes(two_nodes, demo_out, tmp_path,
                                                                                    monkeypatch):
    from litdata.engines import ray_engine

    cluster, notes = two_nodes
    monkeypatch.setattr(ray_engine, "count_partition", count_partition_noting_node)
    monkeypatch.setattr(ray_engine, "encode_partition", encode_partition_noting_node)
    out = tmp_path / "ray"
    assert compile_cli("compile", *DEMO_SOURCES, "--image-root", DEMO_IMAGE_ROOT, "--tokenizer", DEMO_TOKENIZER_DIR,
                       "--out", out, "--no-progress", "--engine", "ray", "--ray-address", cluster.address,
                       "--workers", "2", "--partition-size", "8KiB") == 0
    assert not ray.is_initialized()  # the engine connected for the job and disconnected; the cluster stays up
    got, want = files(out), files(demo_out)
    assert sorted(got) == sorted(want) and any(name.startswith("shard-") for name in got)
    for name in want:
        assert got[name] == want[name], f"{name} differs from the local engine's"
    both = {node.node_id for node in cluster.list_all_nodes()}
    assert len(both) == 2
    # Two tasks at once and one CPU per node: the second task of a pair can only run on the other node.
    assert nodes_noted(notes, "count") == both
    assert nodes_noted(notes, "encode") == both
