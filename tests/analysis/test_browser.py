"""What a user sees, in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium): the MLflow UI served by a real ``mlflow server`` on 127.0.0.1 over the session's finished smoke
sweep, and ``rsng report``'s HTML page. ``RSNG_SCREENSHOTS=DIR`` also saves the screenshots there
(``docs/mlflow-compare.png``, ``docs/mlflow-runs.png`` and ``docs/report.png`` were made so)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver)",
)


@pytest.fixture()
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1600,1000",
    ):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    from selenium.webdriver.common.by import By

    for close in driver.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):  # MLflow's assistant panel
        if close.is_displayed():
            close.click()
    path = tmp_path / name
    assert driver.save_screenshot(str(path)) and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("RSNG_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["RSNG_SCREENSHOTS"]) / name)
    return path


def _mlflow_value(v: float) -> str:
    """How MLflow's comparison table prints a metric (3 decimals; below 1e-3 as 1.588e-4)."""
    return f"{v:.3e}".replace("e-0", "e-") if abs(v) < 1e-3 else repr(round(v, 3))


@pytest.mark.slow  # ≈ 60 s on 2 busy cores: the server's start and the JS app's loads
def test_mlflow_ui_shows_the_parent_run_its_children_and_their_metrics(smoke_sweep_dir, smoke_n, browser, tmp_path):
    from mlflow import MlflowClient
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from rsng.tracking import start_server

    db = tmp_path / "mlflow.db"
    shutil.copy(smoke_sweep_dir / "mlflow.db", db)  # the server never touches the session's sweep
    with start_server(f"sqlite:///{db}", tmp_path / "artifacts", timeout=180) as server:
        assert server.host == "127.0.0.1"
        client = MlflowClient(tracking_uri=server.uri)
        exp = client.get_experiment_by_name("rsng/sparsity-smoke")
        runs = client.search_runs([exp.experiment_id], max_results=1000)
        parent = next(r for r in runs if r.data.tags.get("rsng.kind") == "parent")
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert len(children) == smoke_n
        wait = WebDriverWait(browser, 120)

        # the experiment's runs: the parent, expanded, shows every child
        browser.get(f"{server.uri}/#/experiments/{exp.experiment_id}/runs")

        def parent_link(d):
            return [
                a
                for a in d.find_elements(By.CSS_SELECTOR, "a")
                if a.text == parent.info.run_name and f"/runs/{parent.info.run_id}" in (a.get_attribute("href") or "")
            ]

        link = wait.until(parent_link)[0]
        row = link.find_element(By.XPATH, "./ancestor::div[@role='row']")
        row.find_element(By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']").click()  # expand
        names = {r.info.run_name for r in children}
        wait.until(lambda d: names <= {a.text for a in d.find_elements(By.CSS_SELECTOR, "a")})
        _screenshot(browser, tmp_path, "mlflow-runs.png")

        # the comparison of the children: every run and its rel_l2 in the metrics table
        browser.set_window_size(4200, 1200)  # wide enough that the table renders all runs' columns
        ids = [r.info.run_id for r in children]
        browser.get(
            f"{server.uri}/#/compare-runs?runs={quote(json.dumps(ids))}"
            f"&experiments={quote(json.dumps([exp.experiment_id]))}"
        )
        want = [_mlflow_value(r.data.metrics["rel_l2"]) for r in children]

        def metrics_table(d):
            text = d.find_element(By.TAG_NAME, "body").text
            if "\nMetrics\n" not in text or "\nArtifacts\n" not in text:
                return None
            cells = text[text.index("\nMetrics\n") : text.index("\nArtifacts\n")].split("\n")
            return cells if all(r.info.run_name in text for r in children) and "rel_l2" in cells else None

        cells = wait.until(metrics_table)
        # the rel_l2 row holds the children's values, in the order of the runs' columns
        assert any(cells[i : i + len(want)] == want for i in range(len(cells))), (want, cells)
        browser.set_window_size(1600, 1000)
        browser.execute_script("window.scrollTo(0, 0)")
        _screenshot(browser, tmp_path, "mlflow-compare.png")


def test_report_page_loads_every_image(smoke_sweep_dir, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out = tmp_path / "report"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "rsng.cli",
            "report",
            str(smoke_sweep_dir),
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    browser.get((out / "index.html").as_uri())
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
    imgs = browser.find_elements(By.TAG_NAME, "img")
    assert len(imgs) >= 3
    for img in imgs:
        ok = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
        assert ok, img.get_attribute("src")
    assert "sparsity-smoke" in browser.title + browser.find_element(By.TAG_NAME, "body").text
    _screenshot(browser, tmp_path, "report.png")
