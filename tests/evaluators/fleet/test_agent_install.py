"""The agent runs with the base install only, and both CLIs fail with one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

FORBIDDEN = ("torch", "sqlalchemy", "fastapi", "pydantic", "pydantic_settings", "starlette", "uvicorn", "onnx")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)


def test_the_agent_imports_nothing_beyond_numpy_onnxruntime_and_httpx() -> None:
    probe = (
        "import sys, json, evaluators.agent.__main__, evaluators.agent.worker; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(_run("-c", probe).stdout.splitlines()[-1]))
    assert {"numpy", "onnxruntime", "httpx"} <= loaded
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))


def test_the_agent_cli_explains_bad_flags_in_one_line() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    missing = _run("-m", "evaluators.agent", "--fleet", "http://127.0.0.1:9", "--device", "rpi4b", env=env)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "error: no fleet token: pass --token TOKEN or set HWSEARCH_FLEET_TOKEN"
    )
    cores = _run("-m", "evaluators.agent", "--fleet", "http://127.0.0.1:9", "--device", "rpi4b", "--token", "t" * 20,
                 "--cores", "0-x", env=env)
    assert cores.returncode == 2 and cores.stderr.strip().startswith("error: --cores '0-x'")
    url = _run("-m", "evaluators.agent", "--fleet", "127.0.0.1:9", "--device", "rpi4b", "--token", "t" * 20, env=env)
    assert url.returncode == 2 and "must start with http://" in url.stderr
    ca = _run("-m", "evaluators.agent", "--fleet", "http://127.0.0.1:9", "--device", "rpi4b", "--token", "t" * 20,
              "--ca", "/etc/hostname", env=env)
    assert ca.returncode == 2 and "only used with an https:// fleet URL" in ca.stderr


def test_the_coordinator_cli_explains_bad_settings_in_one_line(tmp_path: object) -> None:
    storage = f"sqlite:///{tmp_path}/fleet.db"
    short = _run("-m", "evaluators.fleet", "serve", "--storage", storage, "--token", "short")
    assert short.returncode == 2
    assert short.stderr.strip().splitlines() == [short.stderr.strip()]
    assert "at least 16 characters" in short.stderr and "-- fix:" in short.stderr
    listen = _run("-m", "evaluators.fleet", "serve", "--storage", storage, "--token", "t" * 20, "--listen", "nowhere")
    assert listen.returncode == 2 and "expected HOST:PORT" in listen.stderr
    database = _run("-m", "evaluators.fleet", "serve", "--storage", "postgresql+psycopg://u:p@127.0.0.1:9/x",
                    "--token", "t" * 20)
    assert database.returncode == 2 and "cannot use storage" in database.stderr
    pem = Path(str(tmp_path)) / "not-a-cert.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    tls = _run("-m", "evaluators.fleet", "serve", "--storage", storage, "--token", "t" * 20, "--enrol-token", "e" * 20,
               "--tls-cert", str(pem), "--tls-key", str(pem), "--listen", "127.0.0.1:0")
    assert tls.returncode == 2 and f"cannot serve TLS with {pem}" in tls.stderr and "-- fix:" in tls.stderr
