"""End to end: `streamlit run` on loopback, headless Chromium, the Pareto chart renders and refreshes live.

Installs Debian's Chromium with ``scripts/install_chromium.sh`` when missing; skips only when that
cannot be done. The screenshot is saved as ``<pytest tmp dir>/pareto.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dashboard_browser import chrome, ensure_chromium, streamlit_server
from dashboard_seed import append_trial

pytestmark = pytest.mark.slow

POINT_SELECTOR = ".js-plotly-plot .scatterlayer .point"
WAIT_S = 120


def _body_text(driver) -> str:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def test_pareto_chart_renders_in_chromium(fresh_db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    reason = ensure_chromium()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("selenium", reason="selenium is needed to drive Chromium (test extra)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    screenshot = tmp_path / "pareto.png"
    with streamlit_server(fresh_db.url, tmp_path) as base:
        driver = chrome(tmp_path / "chromium-profile")
        try:
            driver.get(f"{base}/?page=Pareto&study=esfair-demo")
            wait = WebDriverWait(driver, WAIT_S)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, POINT_SELECTOR)) >= 20)
            total = fresh_db.demo.trials
            wait.until(lambda d: f"{total} trials in all" in _body_text(d))
            text = _body_text(driver)
            assert "Pareto front — esfair-demo" in text and "FAKE" in text
            assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
            titles = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .xtitle")]
            assert any("latency_ms (FAKE" in t for t in titles), titles
            time.sleep(1.0)
            driver.save_screenshot(str(screenshot))

            append_trial(fresh_db.url, "esfair-demo", fresh_db.out_root,
                         {"backbone": "lcnet", "width": 0.35, "resolution": 64, "quant": "fp32", "prune_ratio": 0.0},
                         seed=11)
            wait.until(lambda d: f"{total + 1} trials in all" in _body_text(d))
            assert "page=Pareto" in driver.current_url and "study=esfair-demo" in driver.current_url
        finally:
            driver.quit()
    assert screenshot.stat().st_size > 20_000
    print(f"screenshot: {screenshot}")
