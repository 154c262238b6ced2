"""Helpers for the end-to-end test: run ``streamlit run`` on loopback, drive headless Chromium.

Chromium and its driver are Debian's (``scripts/install_chromium.sh``); nothing downloads a
browser. Selenium is told the driver's path, so Selenium Manager never goes online.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_SCRIPT = REPO / "scripts" / "install_chromium.sh"
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1600,2200",
)


def ensure_chromium() -> str | None:
    """Install Chromium with the project script when missing; None when ready, else why not."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    if not INSTALL_SCRIPT.exists() or shutil.which("bash") is None:
        return f"{INSTALL_SCRIPT} cannot run here"
    result = subprocess.run(["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return f"Chromium could not be installed with {INSTALL_SCRIPT.name}: {' | '.join(tail)}"
    return None


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def streamlit_server(storage_url: str, workdir: Path, timeout_s: float = 120.0) -> Iterator[str]:
    """Run ``streamlit run dashboard/app.py -- --storage URL`` on loopback; yields its base URL.

    Raises:
        RuntimeError: When the server exits or is not healthy within ``timeout_s``; the message
            carries the end of its log.
    """
    port = free_port()
    log = workdir / "streamlit.log"
    env = dict(os.environ, HOME=str(workdir), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    command = [
        sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
        "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
        "--", "--storage", storage_url,
    ]
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def chrome(profile_dir: Path):  # type: ignore[no-untyped-def]
    """A headless Chromium WebDriver with a fresh profile in ``profile_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile_dir.parent / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    return driver
