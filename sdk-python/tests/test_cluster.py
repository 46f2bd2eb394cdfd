"""The direct door over a real three-master Redis Cluster with redis-py's cluster clients: keys on
every node decide as on a single node (the vectors' first suites), sync and async."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import cast

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from throttlekit import AsyncRedisBackend, FixedWindow, Gcra, RedisBackend

from .conftest import free_port, wait_port


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[int]]:
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("redis-server and redis-cli are required (the test command installs them), never skipped")
    ports, procs, dirs = [], [], []
    try:
        for _ in range(3):
            port, d = free_port(), tempfile.mkdtemp()
            proc = subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    d,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                    # The bus port is port + 10000 unless named: past 55535 that is no port at all.
                    "--cluster-port",
                    str(free_port()),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            ports.append(port)
            procs.append(proc)
            dirs.append(d)
            wait_port(port, proc, "a cluster node")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while (
            b"cluster_state:ok"
            not in subprocess.run(
                [cli, "-p", str(ports[0]), "cluster", "info"], capture_output=True, check=False
            ).stdout
        ):
            assert time.monotonic() < deadline, "the cluster never became ok"
            time.sleep(0.1)
        yield ports
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def test_cluster_sync(cluster: list[int]) -> None:
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster[0])
    door = RedisBackend(client, FixedWindow(3, 60_000), prefix=f"cl-{uuid.uuid4().hex}")
    keys = [f"user-{i}" for i in range(30)]  # spread over every node's slots
    keyslot = cast("Callable[[str], int]", client.keyslot)  # redis-py leaves it untyped
    nodes = {keyslot(door.key(k)) // 5462 for k in keys}
    assert len(nodes) == 3, "the keys did not reach every node"
    for k in keys:
        assert [door.check(k).allowed for _ in range(4)] == [True, True, True, False], k
        assert door.peek(k).remaining == 0
    client.close()


async def test_cluster_async(cluster: list[int]) -> None:
    client = redis.asyncio.cluster.RedisCluster(host="127.0.0.1", port=cluster[0])
    door = AsyncRedisBackend(client, Gcra(2, 60_000, 2), prefix=f"acl-{uuid.uuid4().hex}")
    for i in range(10):
        got = [(await door.check(f"k{i}")).allowed for _ in range(3)]
        assert got == [True, True, False]
    await client.aclose()
