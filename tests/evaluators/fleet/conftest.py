"""Fixtures of the fleet tests: tiny real ONNX models, and real coordinator and agent processes on
127.0.0.1 (``python -m evaluators.fleet serve`` under uvicorn, ``python -m evaluators.agent``)."""

from __future__ import annotations

import glob
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from evaluators.fleet.client import FleetClient
from tests.evaluators.fleet.certs import TlsFiles, make_tls_files
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "test-fleet-token-0123456789"
ENROL_TOKEN = "test-enrolment-token-9876543210"
INPUT_SHAPE = (1, 3, 8, 8)
QUICK = {"threads": 1, "warmup": 1, "min_repeats": 3, "max_repeats": 3, "min_time_s": 0.0, "cores": None, "batch": 1}
"""Benchmark settings of a job that takes milliseconds."""


def slow_settings(seconds: float) -> dict:
    """Settings of a job that runs about ``seconds`` (timed runs until that much time passed)."""
    return {**QUICK, "min_repeats": 1, "max_repeats": 1_000_000, "min_time_s": seconds}


def make_onnx(path: Path, *, channels: int = 4, seed: int = 0) -> Path:
    """A real ONNX model (Conv 3x3 + Relu on a 1x3x8x8 input) written to ``path``."""
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", channels, 8, 8])], [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HWSEARCH_FLEET_TOKEN"}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


class Coordinator:
    """``python -m evaluators.fleet serve`` in a subprocess on 127.0.0.1.

    With ``tls`` it serves HTTPS with those files and agents must enrol (``ENROL_TOKEN``).
    """

    token = TOKEN

    def __init__(
        self, workdir: Path, *, lease_seconds: float, max_attempts: int, extra: list[str], listen: list[str],
        tls: TlsFiles | None = None,
    ) -> None:
        self.workdir = workdir
        self.storage = f"sqlite:///{workdir / 'fleet.db'}"
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.extra = extra
        self.listen = listen
        self.tls = tls
        self.urls: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The first URL it listens on."""
        return self.urls[0]

    def start(self) -> "Coordinator":
        """Start it (on the same ports as before, after a restart) and wait until it listens."""
        self.starts += 1
        command = [
            sys.executable, "-m", "evaluators.fleet", "serve", "--storage", self.storage, "--token", TOKEN,
            "--lease-seconds", str(self.lease_seconds), "--max-attempts", str(self.max_attempts),
            "--max-wait-seconds", "2", *self.extra,
        ]
        if self.tls is not None:
            command += ["--enrol-token", ENROL_TOKEN, "--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        for address in self.listen:
            command += ["--listen", address]
        log = (self.workdir / f"coordinator-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=_env(self.workdir), stdout=subprocess.PIPE, stderr=log
        )
        line = self._read_banner(60.0)
        self.urls = line.split(" listening on ", 1)[1].split(" (storage", 1)[0].split(", ")
        self.listen = [url.split("://", 1)[1] for url in self.urls]
        return self

    def _read_banner(self, timeout: float) -> str:
        assert self.process is not None and self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode() if ready else ""
        if "listening on" not in line:
            self.kill()
            raise AssertionError(f"the coordinator did not start: {self.log()[-2000:]}")
        return line.strip()

    def log(self) -> str:
        """Its stderr so far (all runs)."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("coordinator-*.log")))

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)

    def kill(self) -> None:
        """SIGKILL and wait."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    @property
    def ca(self) -> Path | None:
        """The CA file that verifies it (None without TLS)."""
        return None if self.tls is None else self.tls.ca

    def client(self) -> FleetClient:
        """A client of it with the fleet token (the search side)."""
        return FleetClient(self.url, TOKEN, ca=self.ca)


class AgentProcess:
    """``python -m evaluators.agent`` in a subprocess."""

    def __init__(self, command: list[str], workdir: Path, log_path: Path, token: str = TOKEN) -> None:
        self.command = command
        self.workdir = workdir
        self.log_path = log_path
        self.token = token
        self.process = self._start()

    def _start(self) -> "subprocess.Popen[bytes]":
        return subprocess.Popen(
            self.command, cwd=ROOT, env={**_env(self.workdir), "HWSEARCH_FLEET_TOKEN": self.token},
            stdout=subprocess.DEVNULL, stderr=self.log_path.open("ab"),
        )

    def restart(self) -> None:
        """Start the same command again (after it exited), appending to the same log."""
        assert self.process.poll() is not None, "the agent still runs"
        self.process = self._start()

    def log(self) -> str:
        """Its log so far."""
        return self.log_path.read_text(errors="replace")

    def agent_id(self, timeout: float = 60.0) -> str:
        """The id it registered under (waits for the registration)."""
        def registered() -> str | None:
            for line in reversed(self.log().splitlines()):
                if "registered as " in line:
                    return line.split("registered as ", 1)[1].split()[0]
            if self.process.poll() is not None:
                raise AssertionError(f"agent exited with {self.process.returncode}: {self.log()[-2000:]}")
            return None
        return str(wait_for(registered, timeout, "the agent to register", step=0.05))

    def signal(self, signum: int) -> None:
        """Send ``signum`` if it still runs."""
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for it to exit; its status."""
        return self.process.wait(timeout)


class Fleet:
    """Starts coordinators and agents for one test and stops every one of them afterwards.

    Also carries the helpers tests need (test modules cannot import this conftest).
    """

    token = TOKEN
    enrol_token = ENROL_TOKEN
    input_shape = INPUT_SHAPE
    quick = QUICK
    slow = staticmethod(slow_settings)
    wait_for = staticmethod(wait_for)

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.coordinators: list[Coordinator] = []
        self.agents: list[AgentProcess] = []
        self.clients: list[FleetClient] = []
        self._models = 0

    def model(self, *, channels: int = 4) -> Path:
        """A new tiny ONNX model file (distinct bytes for each ``channels``/call)."""
        self._models += 1
        return make_onnx(self.workdir / f"model{self._models}.onnx", channels=channels, seed=self._models)

    def tls_files(self) -> TlsFiles:
        """A fresh throwaway CA and a certificate it signed for 127.0.0.1."""
        return make_tls_files(self.workdir / f"tls{len(self.coordinators)}")

    def coordinator(
        self, *, lease_seconds: float = 30.0, max_attempts: int = 3, extra: list[str] | None = None,
        listen: list[str] | None = None, tls: bool = False,
    ) -> Coordinator:
        """A started coordinator with its own SQLite database (on 127.0.0.1 unless ``listen``).

        With ``tls``: HTTPS with a throwaway CA, and agents enrol with ``enrol_token``.
        """
        files = self.tls_files() if tls else None
        folder = self.workdir / f"coordinator{len(self.coordinators)}"
        folder.mkdir()
        coordinator = Coordinator(
            folder, lease_seconds=lease_seconds, max_attempts=max_attempts, extra=extra or [],
            listen=listen or ["127.0.0.1:0"], tls=files,
        )
        self.coordinators.append(coordinator)
        return coordinator.start()

    def agent(
        self, url: str, device: str = "cpu-test", *extra: str, prefix: list[str] | None = None,
        coordinator: Coordinator | None = None,
    ) -> AgentProcess:
        """A started agent process for ``device`` (``prefix`` wraps the command, e.g. ip netns exec).

        For a TLS ``coordinator`` it trusts that coordinator's CA and enrols with ``enrol_token``.
        """
        number = len(self.agents)
        folder = self.workdir / f"agent{number}"
        folder.mkdir()
        tls = coordinator is not None and coordinator.ca is not None
        command = [
            *(prefix or []), sys.executable, "-m", "evaluators.agent", "--fleet", url, "--device", device,
            "--name", f"test-agent-{number}", "--poll-seconds", "1", "--work-dir", str(folder),
            "--drain-seconds", "20", *(["--ca", str(coordinator.ca)] if tls and coordinator else []), *extra,
        ]
        agent = AgentProcess(command, folder, folder / "agent.log", ENROL_TOKEN if tls else TOKEN)
        self.agents.append(agent)
        return agent

    def client(self, coordinator: Coordinator) -> FleetClient:
        """A client of ``coordinator``, closed afterwards."""
        client = coordinator.client()
        self.clients.append(client)
        return client

    def close(self) -> None:
        """Kill whatever still runs."""
        for client in self.clients:
            client.close()
        for agent in self.agents:
            if agent.process.poll() is None:
                agent.process.kill()
                agent.process.wait(30)
        for coordinator in self.coordinators:
            coordinator.kill()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """Real processes for one test, all killed at its end."""
    handle = Fleet(tmp_path)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A tiny real ONNX model."""
    return make_onnx(tmp_path / "tiny.onnx")


def _postgres_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database URL: ``HWSEARCH_TEST_POSTGRES_URL``, else a throwaway local server."""
    given = os.environ.get("HWSEARCH_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) and no HWSEARCH_TEST_POSTGRES_URL")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="hwsearch-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data = folder / "data"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    for command in (
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "hwsearch"],
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"could not start a throwaway PostgreSQL ({' '.join(command)}): {done.stderr[-1000:]}")
    try:
        yield f"postgresql+psycopg://hwsearch@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
