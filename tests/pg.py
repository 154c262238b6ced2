"""A throwaway PostgreSQL server on 127.0.0.1 for tests and benches.

``postgres_server()`` finds the server binaries (``initdb``/``pg_ctl`` on PATH or
``/usr/lib/postgresql/*/bin``, which ``scripts/install_test_services.sh`` apt-installs), creates a
cluster in a temporary folder with password authentication, starts it on a free loopback port (as
the ``postgres`` OS user when running as root: the server refuses to run as root), creates a
database and yields its ``postgresql+psycopg://`` URL; the server is stopped and the folder
removed afterwards. ``HWSEARCH_TEST_POSTGRES_URL`` names an existing server instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_URL = "HWSEARCH_TEST_POSTGRES_URL"
USER = "hwsearch"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why and how to fix it."""


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailable("running as root and there is no 'postgres' OS user to run the server as") from exc
    return ["runuser", "-u", "postgres", "--"]


def _create_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def postgres_server(database: str = "hwsearch") -> Iterator[str]:
    """A running server with database ``database``; yields its SQLAlchemy URL.

    Raises:
        PostgresUnavailable: No server binaries, or the server does not start (message says why).
    """
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed; run "
                                  f"scripts/install_test_services.sh as root, or set {ENV_URL}")
    as_user = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="hwsearch-pg-"))
    password = secrets.token_hex(12)
    (folder / "pw").write_text(password + "\n")
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(folder / "pw", "postgres")
    data, port = folder / "data", _free_port()
    started = False
    try:
        try:
            subprocess.run([*as_user, initdb, "-D", str(data), "-U", USER, "-A", "scram-sha-256",
                            f"--pwfile={folder / 'pw'}", "-E", "UTF8"], check=True, capture_output=True, text=True)
            options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
                            "-t", "60", "start"], check=True, capture_output=True, text=True)
            started = True
        except subprocess.CalledProcessError as exc:
            log = (folder / "log").read_text()[-500:] if (folder / "log").exists() else ""
            tool = Path(exc.cmd[len(as_user)]).name
            raise PostgresUnavailable(f"{tool} failed: {(exc.stderr or '').strip()[-300:]} {log}") from exc
        _create_database(f"postgresql://{USER}:{password}@127.0.0.1:{port}/postgres", database)
        yield f"postgresql+psycopg://{USER}:{password}@127.0.0.1:{port}/{database}"
    finally:
        if started:
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
