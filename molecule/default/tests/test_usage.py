"""Running it week to week (local mode; the containers scenario checks docker mode's figures): the admins' usage
page and its JSON, the host command, /hub/metrics with the scraper's token, against what a user was made to do
(300 MB in memory, 50 MB written to their home); the collector's own cost; a user who fills the homes' file system
leaves the hub answering everyone else."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from browser_check import chromium, log_in_to
from hubfixtures import busy, converge, next_sample

ROOT = Path(__file__).resolve().parents[3]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def made_busy(login, hub):
    """user1 holds 300 MB in a running kernel and has written 50 MB into their home."""
    with busy(login("user1"), hub) as sample:
        yield sample


def test_the_figures_are_what_the_user_did_and_cost_the_collector_little(made_busy):
    user1 = made_busy["users"]["user1"]
    print(
        f"\nuser1: memory {user1['memory'] / MB:.0f} MB, home {user1['home'] / MB:.0f} MB; "
        f"collector {made_busy['collector']}"
    )
    assert user1["running"] and user1["since"]
    assert 300 * MB <= user1["memory"] < 600 * MB and user1["peak"] >= user1["memory"]
    assert user1["home"] >= 50 * MB
    assert made_busy["collector"]["share_of_a_core"] < 0.01


def test_the_page_is_for_admins_and_shows_each_user_with_charts(made_busy, login):
    admin, user1 = login("admin", start=False), login("user1", start=False)
    page = admin.http.get(f"{admin.base}/services/usage/", timeout=30)
    assert page.status_code == 200 and "user1" in page.text and "<svg" in page.text
    api = admin.http.get(f"{admin.base}/services/usage/api", timeout=30).json()
    assert api["users"]["user1"]["memory"] >= 300 * MB
    assert user1.http.get(f"{user1.base}/services/usage/", timeout=30).status_code == 403
    assert "services/usage/" in admin.http.get(f"{admin.base}/hub/admin", timeout=30).text  # the admin page's link


def test_the_host_command_prints_the_table(made_busy, hub):
    table = hub().exec_run(["quickjh-usage"]).output.decode()
    assert "user1" in table and "since" in table and "disk homes" in table


def test_metrics_need_the_scrapers_token_which_reads_nothing_else(made_busy, hub_url, verify, login):
    token = (ROOT / "molecule/shared/credentials/instance/metrics-token").read_text().strip()
    bearer = {"Authorization": f"Bearer {token}"}
    scraped = requests.get(f"{hub_url}/hub/metrics", headers=bearer, timeout=30, verify=verify)
    assert scraped.status_code == 200
    assert 'quickjh_user_memory_bytes{user="user1"}' in scraped.text and "jupyterhub_running_servers" in scraped.text
    assert requests.get(f"{hub_url}/hub/metrics", timeout=30, verify=verify).status_code == 403
    assert requests.get(f"{hub_url}/hub/api/users", headers=bearer, timeout=30, verify=verify).status_code == 403
    own = login("user1", start=False).hub_api("POST", "/users/user1/tokens", json={"note": "mine"}).json()["token"]
    assert (
        requests.get(f"{hub_url}/hub/metrics", headers={"Authorization": f"token {own}"}, timeout=30, verify=verify)
    ).status_code == 403


def test_in_chromium_the_admin_opens_the_usage_page_from_the_admin_page(made_busy, hub_url, passwords):
    with chromium() as browser:
        page = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 800}).new_page()
        page.set_default_timeout(120_000)
        log_in_to(page, hub_url, "admin", passwords["admin"], landing="/hub/admin")
        try:
            page.locator("#usage").click(timeout=60_000)
        except Exception as error:  # say what the admin saw instead (CI's log keeps only this message)
            raise AssertionError(f"no usage link on {page.url}: {page.inner_text('body')[:600]!r}") from error
        page.locator("#usage tr", has_text="user1").wait_for()
        Path("/tmp/quickjh-browser").mkdir(exist_ok=True)
        page.screenshot(path="/tmp/quickjh-browser/usage-page.png", full_page=True)


# --- A user who fills the homes' file system -----------------------------------------------------------------------


@pytest.fixture
def small_homes(hub):
    """The homes on a 64 MB file system of their own (quickjh_home_volume_options), as a site would put them on a
    partition of their own; back to the scenario's homes after."""
    small = {
        "quickjh_home_volume": "quickjh-test-default-small-homes",
        "quickjh_home_volume_options": {"type": "tmpfs", "device": "tmpfs", "o": "size=64m,mode=0755"},
        "quickjh_disk_warn_percent": 80,
    }
    converge("-e", json.dumps(small))
    try:
        yield small
    finally:
        converge()
        import docker

        docker.from_env().volumes.get(small["quickjh_home_volume"]).remove(force=True)


def test_a_user_who_fills_the_homes_leaves_the_hub_answering_everyone_else(small_homes, login, hub, hub_url, verify):
    printed = login("user1").run(
        "try:\n"
        "    with open('filler.bin', 'wb') as f:\n"
        "        while True: f.write(b'x' * 1024 * 1024)\n"
        "except OSError as e: print(type(e).__name__, e.errno)\n"
    )
    assert "28" in printed, printed  # ENOSPC
    started = time.monotonic()
    assert requests.get(f"{hub_url}/hub/health", timeout=10, verify=verify).status_code == 200
    admin = login("admin")  # logs in, starts a server and runs code
    assert admin.whoami()[0] == "admin"
    print(f"\nhomes full: the admin logged in and ran code in {time.monotonic() - started:.1f} s")
    hub().exec_run(["quickjh-usage", "homes"])
    now = next_sample(hub)
    assert now["disk"]["homes"]["warn"] and now["biggest_homes"][0] == "user1"
    said = " ".join(converge("-e", json.dumps(small_homes)).stdout.split())
    assert "WARNING: homes (/home) is" in said and "biggest homes: user1" in said
    login("user1").run("import os; os.remove('filler.bin')")
