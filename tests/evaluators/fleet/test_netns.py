"""An agent in its own network namespace (ip netns + a veth pair) whose link is cut mid-job.

Only the two addresses of the veth pair this test creates are used besides 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Namespace:
    """A network namespace joined to the host by a veth pair."""

    name: str
    host_link: str
    host_ip: str
    inside_ip: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed")
    suffix = uuid.uuid4().hex[:6]
    name = f"hwsearch-{suffix}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here (needs root/CAP_SYS_ADMIN): {probe.stderr.strip()}")
    block = os.getpid() % 64 * 4
    spot = Namespace(name, f"hwh{suffix}", f"10.77.0.{block + 1}", f"10.77.0.{block + 2}")
    try:
        _ip("link", "add", spot.host_link, "type", "veth", "peer", "name", f"hwn{suffix}")
        _ip("link", "set", f"hwn{suffix}", "netns", name)
        _ip("addr", "add", f"{spot.host_ip}/30", "dev", spot.host_link)
        _ip("link", "set", spot.host_link, "up")
        _ip("-n", name, "addr", "add", f"{spot.inside_ip}/30", "dev", f"hwn{suffix}")
        _ip("-n", name, "link", "set", f"hwn{suffix}", "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield spot
    finally:
        subprocess.run(["ip", "link", "del", spot.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_an_agent_cut_off_mid_job_is_replaced_and_reconnects_when_the_link_returns(
    fleet: Any, namespace: Namespace
) -> None:
    coordinator = fleet.coordinator(lease_seconds=2.0, listen=["127.0.0.1:0", f"{namespace.host_ip}:0"])
    remote_url = coordinator.urls[1]
    cut_off = fleet.agent(remote_url, "edge", "--request-timeout", "3", prefix=["ip", "netns", "exec", namespace.name])
    cut_id = cut_off.agent_id()
    client = fleet.client(coordinator)
    data = fleet.model().read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    client.upload(sha, data)
    job = client.enqueue("edge", sha, [1, 3, 8, 8], fleet.slow(4.0))["id"]
    fleet.wait_for(lambda: f"job {job}: benchmarking" in cut_off.log(), 60, "the namespaced agent to start the job")
    _ip("link", "set", namespace.host_link, "down")
    backup = fleet.agent(coordinator.url, "edge")
    backup_id = backup.agent_id()
    view = fleet.wait_for(lambda: (v := client.job(job))["state"] == "done" and v, 120, "the backup to measure")
    assert view["result"]["agent"] == backup_id and view["attempts"] == 2 and cut_id in view["note"]
    fleet.wait_for(lambda: "coordinator unavailable" in cut_off.log(), 60, "the cut-off agent to notice")
    _ip("link", "set", namespace.host_link, "up")
    fleet.wait_for(lambda: "refused the report" in cut_off.log(), 120, "its late result to be refused")
    backup.signal(signal.SIGTERM)
    assert backup.wait(60) == 0
    later = client.enqueue("edge", sha, [1, 3, 8, 8], fleet.quick)["id"]
    view = fleet.wait_for(lambda: (v := client.job(later))["state"] == "done" and v, 120, "the reconnected agent")
    assert view["result"]["agent"] == cut_id
    assert {a["id"]: a["jobs_done"] for a in client.agents()} == {cut_id: 1, backup_id: 1}
