"""Fleet figures for the README, measured side by side in one run (about two minutes on 2 cores).

1. Per-job overhead of remote vs local measurement on loopback: the same tiny model and settings
   measured by ``LocalLatencyBackend`` (in its measuring process) and by ``RemoteLatencyBackend`` through a
   coordinator and one agent process (upload skipped after the first job, as in a search).
2. Coordinator throughput (jobs/s) with 1, 2 and 4 agent processes: minimal jobs (one timed run)
   submitted by 4 threads, from the first submission to the last result.
3. Repeatability: coefficient of variation of the median over repeated jobs of one model, remote
   (one agent) and local.

Run: ``python bench/fleet_bench.py [--jobs 20] [--throughput-jobs 120] [--repeats 10] [--tls]``.
The coordinator (``python -m evaluators.fleet serve``) and the agents
(``python -m evaluators.agent``) are real processes on 127.0.0.1 with a SQLite database. With
``--tls`` the coordinator serves HTTPS (a throwaway CA made with ``openssl``) and the agents enrol
and use their own credentials, as on a real network.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.contracts import LatencyBackend, LatencySettings  # noqa: E402
from evaluators.fleet.client import FleetClient  # noqa: E402
from evaluators.latency.benchmark import describe_cpu  # noqa: E402
from evaluators.latency.local import LocalLatencyBackend  # noqa: E402
from evaluators.latency.remote import RemoteLatencyBackend  # noqa: E402

TOKEN = "bench-fleet-token-0123456789"
ENROL_TOKEN = "bench-enrolment-token-0123456789"
TINY_SHAPE = (1, 3, 8, 8)
CONV_SHAPE = (1, 3, 64, 64)
CA: Path | None = None
"""The throwaway CA with ``--tls`` (None: plain HTTP, legacy shared token)."""


def make_tls(work: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate it signed for 127.0.0.1: ``(ca, cert, key)``."""
    ca, ca_key, cert, key, csr, ext = (work / name for name in (
        "ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "server.csr", "server.ext"))
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ext.write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    for command in (
        ["openssl", "req", "-x509", *curve, "-days", "2", "-subj", "/CN=bench CA", "-keyout", ca_key, "-out", ca],
        ["openssl", "req", *curve, "-subj", "/CN=bench coordinator", "-keyout", key, "-out", csr],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
         "-extfile", ext, "-out", cert],
    ):
        subprocess.run([str(part) for part in command], check=True, capture_output=True)
    return ca, cert, key


def client_of(url: str) -> FleetClient:
    """A client with the fleet token (and the bench CA with ``--tls``)."""
    return FleetClient(url, TOKEN, ca=CA)


def conv_model(path: Path, *, size: int, channels: int, layers: int) -> Path:
    """Conv 3x3 + Relu stack on a 1x3xSxS input (real ONNX, built with onnx.helper)."""
    rng = np.random.default_rng(0)
    nodes, inits, previous, width = [], [], "x", 3
    for i in range(layers):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((channels, width, 3, 3)) * 0.1).astype(np.float32), f"w{i}"
        ))
        nodes += [helper.make_node("Conv", [previous, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        previous, width = f"r{i}", channels
    graph = helper.make_graph(
        nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, ["n", channels, size, size])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def env(home: Path, token: str = TOKEN) -> dict[str, str]:
    """Subprocess environment: this checkout importable, a private HOME, the token."""
    return {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT), "HWSEARCH_FLEET_TOKEN": token}


def start_coordinator(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A coordinator process on 127.0.0.1 and its URL."""
    command = [sys.executable, "-m", "evaluators.fleet", "serve", "--storage", f"sqlite:///{work / 'fleet.db'}",
               "--listen", "127.0.0.1:0", "--log-level", "warning"]
    if CA is not None:
        command += ["--enrol-token", ENROL_TOKEN, "--tls-cert", str(work / "server.pem"),
                    "--tls-key", str(work / "server-key.pem")]
    process = subprocess.Popen(command, cwd=ROOT, env=env(work), stdout=subprocess.PIPE,
                               stderr=(work / "coordinator.log").open("wb"))
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline().decode() if ready else ""
    if "listening on" not in line:
        raise SystemExit(f"coordinator did not start: {(work / 'coordinator.log').read_text()}")
    return process, line.split(" listening on ", 1)[1].split(" ", 1)[0].rstrip(",")


def start_agents(url: str, tag: str, count: int, work: Path, client: FleetClient) -> list[subprocess.Popen[bytes]]:
    """``count`` agent processes for ``tag``, returned once all registered."""
    agents = []
    for i in range(count):
        folder = work / f"{tag}-{i}"
        folder.mkdir()
        trust = [] if CA is None else ["--ca", str(CA)]
        agents.append(subprocess.Popen(
            [sys.executable, "-m", "evaluators.agent", "--fleet", url, "--device", tag, "--poll-seconds", "5",
             "--work-dir", str(folder), "--log-level", "warning", *trust],
            cwd=ROOT, env=env(work, TOKEN if CA is None else ENROL_TOKEN), stderr=(folder / "agent.log").open("wb"),
        ))
    deadline = time.monotonic() + 120
    while len(client.agents(device_tag=tag, live_only=True)) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"agents for {tag} did not register")
        time.sleep(0.1)
    return agents


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM and wait."""
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


def timed_measures(
    backend: LatencyBackend, model: Path, shape: tuple[int, ...], settings: LatencySettings, jobs: int
) -> tuple[list[float], list[float]]:
    """Wall-clock ms of each ``measure`` call and the medians it reported (after one warm-up call)."""
    backend.measure(model, shape, settings)
    walls, medians = [], []
    for _ in range(jobs):
        start = time.perf_counter()
        result = backend.measure(model, shape, settings)
        walls.append((time.perf_counter() - start) * 1e3)
        medians.append(result.median_ms)
    return walls, medians


def throughput(url: str, client: FleetClient, model: Path, agents: int, jobs: int, work: Path) -> float:
    """Jobs per second through the coordinator with ``agents`` agent processes."""
    tag = f"bench-{agents}"
    processes = start_agents(url, tag, agents, work, client)
    data = model.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    client.upload(sha, data)
    settings = LatencySettings(warmup=0, min_repeats=1, max_repeats=1, min_time_s=0.0).to_dict()

    def submit(count: int) -> None:
        with client_of(url) as own:
            for _ in range(count):
                own.enqueue(tag, sha, list(TINY_SHAPE), settings)

    target = client.stats()["jobs"].get("done", 0) + jobs // 4 * 4
    start = time.perf_counter()
    threads = [threading.Thread(target=submit, args=(jobs // 4,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    while client.stats()["jobs"].get("done", 0) < target:
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    stop(processes)
    return (jobs // 4 * 4) / elapsed


def cv(values: list[float]) -> float:
    """Coefficient of variation (population std / mean)."""
    return float(np.std(values) / np.mean(values))


def main() -> None:
    """Measure and print the three figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="jobs per backend for the overhead figure")
    parser.add_argument("--throughput-jobs", type=int, default=120, help="jobs per agent count")
    parser.add_argument("--repeats", type=int, default=10, help="jobs for the repeatability figure")
    parser.add_argument("--tls", action="store_true", help="HTTPS and enrolled agents instead of plain HTTP")
    args = parser.parse_args()
    global CA
    work = Path(tempfile.mkdtemp(prefix="hwsearch-fleet-bench-"))
    if args.tls:
        CA = make_tls(work)[0]
    tiny = conv_model(work / "tiny.onnx", size=8, channels=4, layers=1)
    conv = conv_model(work / "conv.onnx", size=64, channels=32, layers=3)
    coordinator, url = start_coordinator(work)
    client = client_of(url)
    try:
        agents = start_agents(url, "loopback", 1, work, client)
        overhead = LatencySettings(threads=1, warmup=5, min_repeats=20, max_repeats=20, min_time_s=0.0)
        stable = LatencySettings(threads=1, warmup=10, min_repeats=50, max_repeats=2000, min_time_s=0.3)
        with RemoteLatencyBackend(url, TOKEN, "loopback", timeout_s=300, ca=CA) as remote:
            local = LocalLatencyBackend()
            local_wall, _ = timed_measures(local, tiny, TINY_SHAPE, overhead, args.jobs)
            remote_wall, _ = timed_measures(remote, tiny, TINY_SHAPE, overhead, args.jobs)
            _, local_medians = timed_measures(local, conv, CONV_SHAPE, stable, args.repeats)
            _, remote_medians = timed_measures(remote, conv, CONV_SHAPE, stable, args.repeats)
        stop(agents)
        rates = {n: throughput(url, client, tiny, n, args.throughput_jobs, work) for n in (1, 2, 4)}
    finally:
        client.close()
        stop([coordinator])
    local_ms, remote_ms = statistics.median(local_wall), statistics.median(remote_wall)
    transport = "HTTPS, enrolled agents" if CA is not None else "HTTP, shared token"
    print(f"hwsearch fleet bench on {describe_cpu()}, {os.cpu_count()} CPUs, SQLite, loopback, {transport}")
    print(f"\n1. per-job wall time, tiny Conv model, 5 warm-up + 20 timed runs, median of {args.jobs} jobs")
    print(f"   local  {local_ms:8.1f} ms")
    print(f"   remote {remote_ms:8.1f} ms")
    print(f"   overhead {remote_ms - local_ms:6.1f} ms per job")
    print(f"\n2. coordinator throughput, {args.throughput_jobs // 4 * 4} one-run jobs")
    for n, rate in rates.items():
        print(f"   {n} agent{'s' if n > 1 else ' '} {rate:7.1f} jobs/s")
    print(f"\n3. repeatability, 3x Conv3x3(32) at 64x64, median of >= 50 runs and 0.3 s, {args.repeats} jobs")
    for name, medians in (("local ", local_medians), ("remote", remote_medians)):
        print(f"   {name} median {statistics.median(medians):.3f} ms, CV of the median {cv(medians) * 100:.1f} %")


if __name__ == "__main__":
    main()
