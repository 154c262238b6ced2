"""docker-compose.yml and the Dockerfiles, checked structurally (Docker does not run here).

Services and their wiring (healthchecks, ``depends_on`` conditions, ports, volumes), secrets only
as ``${VAR}`` references filled from ``.env``, and every command resolved against the code: a
``python -m X`` module exists in the repository and its ``--help`` lists every flag the command
passes; ``streamlit run PATH`` names a file of the image; ``ray start`` flags exist. The same
topology runs as real processes in ``tests/test_topology.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = {"postgres", "coordinator", "dashboard", "ray-head", "search", "agent"}
SECRET_KEYS = re.compile(r"PASSWORD|TOKEN|SECRET|STORAGE")
REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def _interpolate(text: str) -> str:
    env = {key: value or f"test-{key.lower()}-0123456789abcdef" for key, value in _env_example().items()}

    def value(match: re.Match[str]) -> str:
        name, rest = match.group(1), match.group(0)[len(match.group(1)) + 2:-1]
        if name in env:
            return env[name]
        assert rest.startswith(":-"), f"${{{name}}} has no default and is not in .env.example"
        return rest[2:]

    return REF.sub(value, text)


def _flags(command: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in command if arg.startswith("--")]


def _help(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_services_volumes_and_ports() -> None:
    services = _services()
    assert set(services) == SERVICES
    assert "pgdata" in _compose()["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "runs:/runs" in services["ray-head"]["volumes"] and "runs:/runs" in services["search"]["volumes"]
    published = {name: {str(p).rsplit(":", 1)[1] for p in spec.get("ports", [])} for name, spec in services.items()}
    assert published["postgres"] == {"5432"} and published["coordinator"] == {"8765"}
    assert published["dashboard"] == {"8501"} and published["ray-head"] == {"10001"}
    for name in ("postgres", "ray-head"):
        exposed = [p for p in services[name]["ports"] if not str(p).startswith("127.0.0.1:")]
        assert not exposed, f"{name} is published beyond localhost: {exposed}"


def test_healthchecks_and_startup_order() -> None:
    services = _services()
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name in ("postgres", "coordinator", "dashboard", "ray-head"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    expected = {"coordinator": {"postgres"}, "dashboard": {"postgres"}, "ray-head": {"postgres"},
                "search": {"postgres", "coordinator", "ray-head"}, "agent": {"coordinator"}}
    for name, needs in expected.items():
        depends = services[name]["depends_on"]
        assert set(depends) == needs, name
        assert all(depends[dep]["condition"] == "service_healthy" for dep in needs), name
    assert "8765/v1/stats" in " ".join(services["coordinator"]["healthcheck"]["test"])
    assert "8501/_stcore/health" in " ".join(services["dashboard"]["healthcheck"]["test"])
    ray_check = " ".join(services["ray-head"]["healthcheck"]["test"])
    assert "ray health-check --address 127.0.0.1:6379" in ray_check and "('127.0.0.1', 10001)" in ray_check


def test_secrets_come_from_env_file_only() -> None:
    example = _env_example()
    for name, spec in _services().items():
        for key, value in (spec.get("environment") or {}).items():
            if SECRET_KEYS.search(key):
                literal = REF.sub("", str(value))
                assert REF.search(str(value)), f"{name}.{key} must come from .env"
                assert not re.search(r"://[^/]*:[^@$]+@", literal), f"{name}.{key} has a literal password"
                for ref in REF.findall(str(value)):
                    assert ref in example, f"{ref} is missing from .env.example"
    for key in ("POSTGRES_PASSWORD", "HWSEARCH_FLEET_TOKEN", "HWSEARCH_FLEET_ENROL_TOKEN", "RAY_AUTH_TOKEN"):
        assert example[key] == "", f".env.example must not ship a value for {key}"
    text = COMPOSE.read_text()
    assert ":?" in text, "secrets should be required (${VAR:?...}) so compose refuses to start without them"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"


def test_agents_enrol_and_keep_their_credential() -> None:
    services = _services()
    coordinator, agent = services["coordinator"]["environment"], services["agent"]["environment"]
    assert "HWSEARCH_FLEET_ENROL_TOKEN" in coordinator["HWSEARCH_FLEET_ENROL_TOKEN"]
    assert "HWSEARCH_FLEET_ENROL_TOKEN" in agent["HWSEARCH_FLEET_TOKEN"], "the agent gets the enrolment token"
    command = _command("agent")
    assert command[command.index("--work-dir") + 1].startswith("/work") and "agent-state:/work" in services["agent"][
        "volumes"]
    for name in ("coordinator", "search", "agent"):
        assert "./fleet-tls:/tls:ro" in services[name]["volumes"], name


def _command(name: str) -> list[str]:
    return [_interpolate(str(arg)) for arg in _services()[name]["command"]]


@pytest.mark.parametrize("service", ["coordinator", "search", "agent"])
def test_python_commands_exist_and_accept_their_flags(service: str) -> None:
    command = _command(service)
    assert command[:2] == ["python", "-m"]
    module = command[2]
    path = ROOT / module.replace(".", "/")
    assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), f"{module} is not in the repo"
    sub = [arg for arg in command[3:4] if not arg.startswith("-")]
    text = _help(sys.executable, "-m", module, *sub, "--help")
    for flag in _flags(command):
        assert flag in text, f"{service}: {module} has no {flag}"


def test_search_joins_the_ray_head_coordinator_and_database() -> None:
    services = _services()
    command = _command("search")
    assert command[command.index("--backend") + 1] == "ray"
    assert command[command.index("--ray-address") + 1] == "ray://ray-head:10001"
    assert "--ray-client-server-port=10001" in services["ray-head"]["command"]
    assert command[command.index("--fleet") + 1] == "http://coordinator:8765"
    assert "0.0.0.0:8765" in services["coordinator"]["command"]
    assert "http://coordinator:8765" in _command("agent")
    for name in ("search", "dashboard", "ray-head"):
        assert "@postgres:5432/" in services[name]["environment"]["HWSEARCH_STORAGE"]
    assert "@postgres:5432/" in services["coordinator"]["environment"]["HWSEARCH_FLEET_STORAGE"]
    for name in ("search", "ray-head"):
        assert services[name]["environment"]["RAY_AUTH_MODE"] == "token"
        assert services[name]["environment"]["RAY_AUTH_TOKEN"] == services["search"]["environment"]["RAY_AUTH_TOKEN"]


def test_dashboard_and_ray_head_commands_exist() -> None:
    services = _services()
    dashboard = _command("dashboard")
    assert dashboard[:2] == ["streamlit", "run"] and services["dashboard"]["working_dir"] == "/app"
    assert (ROOT / dashboard[2]).is_file()
    ray_head = _command("ray-head")
    assert ray_head[:3] == ["ray", "start", "--head"] and "--block" in ray_head
    text = _help(str(Path(sys.executable).with_name("ray")), "start", "--help")
    for flag in _flags(ray_head):
        assert flag in text, f"ray start has no {flag}"


def _dockerfile(name: str) -> str:
    """The Dockerfile's instructions, without comment lines."""
    lines = (ROOT / "docker" / name).read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("#"))


def test_main_image_installs_the_pinned_stack() -> None:
    text = _dockerfile("Dockerfile")
    pinned = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
                  ["search"] if d.startswith("torch=="))
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert f'"{pinned}"' in text
    assert "pip install \".[search,dashboard,ray]\"" in text
    for source in re.findall(r"^COPY (\S+) ", text, re.MULTILINE):
        assert (ROOT / source).exists(), source
    for name in ("coordinator", "dashboard", "ray-head", "search"):
        assert _services()[name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_agent_image_is_slim_and_multi_arch() -> None:
    text = _dockerfile("Dockerfile.agent")
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.MULTILINE)
    assert "--platform" not in text and "amd64" not in text and "x86" not in text
    assert 'pip install ".[agent]"' in text
    assert "torch" not in text and "search," not in text
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras["optional-dependencies"]["agent"] == []
    assert not any(d.split(">")[0].split("=")[0] in {"torch", "ray", "optuna"} for d in extras["dependencies"])
    for source in re.findall(r"^COPY (\S+) ", text, re.MULTILINE):
        assert (ROOT / source).exists(), source
    assert _services()["agent"]["build"]["dockerfile"] == "docker/Dockerfile.agent"
