"""The docker-compose topology as real processes on 127.0.0.1.

PostgreSQL (throwaway cluster) + ``python -m evaluators.fleet serve`` + one
``python -m evaluators.agent`` + a Ray head (``ray start --head --block``, token auth) +
``python -m search.launch --backend ray --ray-address ray://... --latency remote --fleet URL``
+ ``streamlit run dashboard/app.py``, with the commands and health checks docker-compose.yml uses.
The search's trials run in the Ray head's workers, are measured by the agent through the
coordinator, and land in PostgreSQL, which the dashboard serves.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import httpx
import optuna
import pytest
import sqlalchemy

from tests.search.scaleutil import CHEAP, alive, descendants, kill_all
from tests.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
DEVICE = "topo-pi"


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """Processes this test starts; :meth:`stop` ends them (and their children) by PID."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.seen: set[int] = set()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def remember_children(self) -> None:
        for proc in self.procs.values():
            self.seen.update(descendants(proc.pid))

    def stop(self) -> None:
        self.remember_children()
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        kill_all(alive(self.seen))


def test_compose_topology_on_loopback(pg_url: str, tiny_data: Path, tmp_path: Path) -> None:
    token, ray_token = "-" + secrets.token_urlsafe(24), secrets.token_hex(32)  # a dash-leading token on purpose
    enrol_token = secrets.token_hex(32)  # as in compose: the agent enrols and keeps its own credential
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "HWSEARCH_"))}
    env.update(PYTHONUNBUFFERED="1", HWSEARCH_FLEET_TOKEN=token)
    fleet_port, gcs_port, client_port, agent_port, dash_port = (_port() for _ in range(5))
    fleet_url = f"http://127.0.0.1:{fleet_port}"
    ray_temp = Path(f"/tmp/hwsearch-ray-topo-{os.getpid()}")
    ray_env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": ray_token}
    ray_bin = str(Path(sys.executable).with_name("ray"))
    procs = Processes(tmp_path)
    try:
        procs.start("coordinator", [sys.executable, "-m", "evaluators.fleet", "serve", "--storage", pg_url,
                                    "--listen", f"127.0.0.1:{fleet_port}", "--log-level", "warning"],
                    {**env, "HWSEARCH_FLEET_ENROL_TOKEN": enrol_token})
        procs.start("ray-head", [ray_bin, "start", "--head", f"--port={gcs_port}",
                                 f"--ray-client-server-port={client_port}", "--num-cpus=2", f"--temp-dir={ray_temp}",
                                 "--node-ip-address=127.0.0.1",
                                 f"--dashboard-agent-listen-port={agent_port}", "--include-dashboard=false",
                                 "--disable-usage-stats", "--block"], ray_env)
        procs.start("dashboard", [str(Path(sys.executable).with_name("streamlit")), "run", "dashboard/app.py",
                                  "--server.address=127.0.0.1", f"--server.port={dash_port}", "--server.headless=true",
                                  "--browser.gatherUsageStats=false"], {**env, "HWSEARCH_STORAGE": pg_url})
        procs.start("agent", [sys.executable, "-m", "evaluators.agent", "--fleet", fleet_url, "--device", DEVICE,
                              "--name", "standin-agent", "--work-dir", str(tmp_path / "agent"),
                              "--poll-seconds", "5"], {**env, "HWSEARCH_FLEET_TOKEN": enrol_token})

        def coordinator_healthy() -> bool:
            assert procs.procs["coordinator"].poll() is None, procs.log("coordinator")
            try:
                response = httpx.get(f"{fleet_url}/v1/stats", headers={"Authorization": f"Bearer {token}"}, timeout=5)
            except httpx.HTTPError:
                return False
            return response.status_code == 200 and response.json()["live_agents"].get(DEVICE, 0) >= 1

        wait_for(coordinator_healthy, 180, "the coordinator with a live agent", step=0.5)

        def ray_healthy() -> bool:
            assert procs.procs["ray-head"].poll() is None, procs.log("ray-head")
            check = subprocess.run([ray_bin, "health-check", "--address", f"127.0.0.1:{gcs_port}"], check=False,
                                   env=ray_env, capture_output=True, timeout=60)
            if check.returncode != 0:
                return False
            try:
                socket.create_connection(("127.0.0.1", client_port), 5).close()
            except OSError:
                return False
            return True

        wait_for(ray_healthy, 180, "the Ray head's health check and client port (compose's healthcheck)", step=1.0)
        procs.remember_children()

        search = subprocess.Popen(
            [sys.executable, "-m", "search.launch", "--backend", "ray", "--ray-address", f"ray://127.0.0.1:{client_port}",
             "--latency", "remote", "--fleet", fleet_url, "--fleet-token", token, "--device", DEVICE,
             "--fleet-timeout", "300", "--storage", pg_url, "--study", "topology", "--data", str(tiny_data),
             "--trials", "2", "--out", str(tmp_path / "runs"), *CHEAP],
            cwd=tmp_path, env={**env, "RAY_AUTH_TOKEN": ray_token}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        head_side: set[int] = set()
        try:
            while search.poll() is None:
                head_side.update(descendants(procs.procs["ray-head"].pid))
                time.sleep(0.5)
            out = search.communicate()[0]
        finally:
            if search.poll() is None:
                search.kill()
                search.wait()
        assert search.returncode == 0, out[-4000:]
        assert f"ray: ray://127.0.0.1:{client_port}, 2 CPU" in out

        trials = optuna.load_study(study_name="topology", storage=pg_url).trials
        assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
        procs.seen |= head_side
        for trial in trials:
            latency = trial.user_attrs["latency"]
            assert latency["backend"] == "remote" and latency["device_tag"] == DEVICE and latency["agent"]
            assert trial.user_attrs["worker"]["pid"] in head_side
            assert Path(trial.user_attrs["artifact_path"]).is_file()
        with sqlalchemy.create_engine(pg_url).connect() as conn:
            done = conn.execute(sqlalchemy.text("SELECT count(*) FROM hwsearch_jobs WHERE state = 'done'")).scalar()
        assert done >= 1

        def dashboard_healthy() -> bool:
            assert procs.procs["dashboard"].poll() is None, procs.log("dashboard")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/_stcore/health", timeout=5) as response:
                    return response.status == 200 and response.read().strip() == b"ok"
            except OSError:
                return False

        wait_for(dashboard_healthy, 120, "the dashboard's health endpoint", step=0.5)
    finally:
        procs.stop()
        shutil.rmtree(ray_temp, ignore_errors=True)
