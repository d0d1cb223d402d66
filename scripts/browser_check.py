#!/usr/bin/env python3
"""A person's round through a hub, in real Chromium: the login form (a wrong password first), JupyterLab, a notebook
cell typed and run with Shift+Enter, a terminal's `whoami`, the logout back to the login page.

  .venv/bin/python scripts/browser_check.py URL USER [--insecure] [--artifacts DIR]

URL is the hub's address as users open it (https://hub.example.org or https://hub.example.org/jupyter); the password
comes from QUICKJH_PASSWORD, else it is asked. --insecure accepts any certificate (the role's self-signed one).
Debian's chromium (/usr/bin/chromium, or $CHROMIUM) is driven by Playwright; nothing is downloaded. It prints each
step's time; on failure it names the step, saves a screenshot and the browser console's errors in DIR (default
/tmp/quickjh-browser), prints their paths and exits 1. It works in a JupyterLab workspace of its own, and removes
at the end the notebook, kernel, terminal and workspace it made: the user's own tabs and files stay as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

from playwright.sync_api import Browser, Page, sync_playwright

# Headless as root, without GPU or WebGL; none of Chromium's own calls home (this network refuses them). The
# terminal's text is read through its screen reader mode (own_workspace), whatever it paints with.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-3d-apis",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAB_WAIT = 180_000  # ms: a first login starts the user's server
WORKSPACE = "quickjh-browser-check"


class CheckFailed(Exception):
    def __init__(self, step: str, cause: BaseException, screenshot: Path, console: Path) -> None:
        super().__init__(
            f"browser check failed at {step!r}: {cause}\n  screenshot: {screenshot}\n"
            f"  browser console errors: {console}"
        )
        self.step, self.screenshot, self.console = step, screenshot, console


class Round:
    """One browser page going through the steps; each step timed, and saved as evidence when it fails."""

    def __init__(self, page: Page, artifacts: Path) -> None:
        self.page, self.artifacts = page, artifacts
        self.times: dict[str, float] = {}
        self.errors: list[str] = []
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda err: self.errors.append(str(err)))

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        except Exception as err:
            self.artifacts.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"\W+", "-", name)
            stem = self.artifacts / f"browser-check-{time.strftime('%Y%m%dT%H%M%S')}-{slug}"
            screenshot, console = stem.with_suffix(".png"), stem.with_suffix(".console.log")
            self.page.screenshot(path=str(screenshot), full_page=True)
            console.write_text("".join(f"{line}\n" for line in self.errors))
            raise CheckFailed(name, err, screenshot, console) from err
        self.times[name] = time.monotonic() - started


class Server:
    """The user's server's REST API, with the page's login (cookies and _xsrf), as JupyterLab calls it."""

    def __init__(self, page: Page, url: str, user: str) -> None:
        self.page, self.base = page, f"{url.rstrip('/')}/user/{user}"
        self.xsrf = next(
            c["value"] for c in page.context.cookies() if c["name"] == "_xsrf" and f"/user/{user}" in c["path"]
        )

    def call(self, method: str, path: str, body: object = None) -> object:
        """From the page, through the browser's own network (its name rules and trusted roots), as JupyterLab."""
        return self.page.evaluate(
            """async ([url, method, xsrf, body]) => {
                const reply = await fetch(url, {method, body, headers: {"X-XSRFToken": xsrf}});
                if (!reply.ok) throw new Error(`${method} ${url}: ${reply.status}`);
                return method === "GET" ? await reply.json() : null;
            }""",
            [self.base + path, method, self.xsrf, None if body is None else json.dumps(body)],
        )

    def sessions(self) -> dict[str, str]:
        """The notebooks with a running kernel: session id -> path."""
        return {s["id"]: s["path"] for s in self.call("GET", "/api/sessions")}

    def terminals(self) -> set[str]:
        return {t["name"] for t in self.call("GET", "/api/terminals")}


def own_workspace(page: Page, server: Server) -> Callable[[], None]:
    """Open JupyterLab in a workspace of the check's own, empty, so the user's tabs are neither in the way nor
    touched. JupyterLab's terminal paints its text on a canvas; in its screen reader mode it also writes each row
    into the page, where it can be read: that is turned on in the user's settings first. Returns what puts the
    setting back and removes the workspace."""
    setting = "/lab/api/settings/@jupyterlab/terminal-extension:plugin"
    current = server.call("GET", setting)
    if not current["settings"].get("screenReaderMode"):
        server.call("PUT", setting, {"raw": json.dumps(dict(current["settings"], screenReaderMode=True))})
    page.goto(f"{server.base}/lab/workspaces/{WORKSPACE}?reset")
    page.locator("#jp-main-dock-panel").wait_for(timeout=LAB_WAIT)

    def undo() -> None:
        server.call("PUT", setting, {"raw": current["raw"]})
        server.call("DELETE", f"/lab/api/workspaces/{WORKSPACE}")

    return undo


def new_launcher(page: Page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
    page.locator(".lm-Menu-itemLabel", has_text="New Launcher").click()


def log_in(page: Page, user: str, password: str) -> None:
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")


def log_in_to(page: Page, hub: str, user: str, password: str, landing: str = "/hub/home") -> None:
    """Logs in at hub and waits for landing (a page of the hub's: by default the home page, which starts nothing).
    After a plain login the hub starts the user's server, and its spawn page's own late redirect to JupyterLab
    replaces whatever page a test opened meanwhile."""
    base = urlsplit(hub).path.rstrip("/")
    page.goto(f"{hub.rstrip('/')}/hub/login?next={quote(base + landing)}")
    log_in(page, user, password)
    page.wait_for_url(lambda now: urlsplit(now).path == base + landing)  # the login's own URL names it in ?next=


@contextlib.contextmanager
def chromium(flags: list[str] | None = None, trust: str = "") -> Iterator[Browser]:
    """Debian's Chromium, headless, with FLAGS and these (e.g. --host-resolver-rules for names a test makes up);
    trust: a root certificate (PEM) it trusts besides its own, put in the NSS database of a home of its own
    (certutil, Debian's libnss3-tools)."""
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as home:
        env = dict(os.environ)
        if trust:
            nss = Path(home) / ".pki/nssdb"
            nss.mkdir(parents=True)
            (Path(home) / "root.pem").write_text(trust)
            subprocess.run(["certutil", "-d", f"sql:{nss}", "-N", "--empty-password"], check=True)
            subprocess.run(
                [
                    "certutil",
                    "-d",
                    f"sql:{nss}",
                    "-A",
                    "-t",
                    "C,,",
                    "-n",
                    "trusted root",
                    "-i",
                    str(Path(home) / "root.pem"),
                ],
                check=True,
            )
            env["HOME"] = home
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=FLAGS + (flags or []), env=env
        )
        try:
            yield browser
        finally:
            browser.close()


def round_trip(
    url: str,
    user: str,
    password: str,
    insecure: bool = False,
    artifacts: Path = Path("/tmp/quickjh-browser"),
    flags: list[str] | None = None,
    trust: str = "",
) -> dict[str, float]:
    """The whole round; returns each step's seconds, or raises CheckFailed. flags and trust: as chromium's."""
    with chromium(flags, trust) as browser:
        page = browser.new_context(ignore_https_errors=insecure, viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        steps = Round(page, artifacts)
        with steps.step("wrong password refused"):
            page.goto(f"{url.rstrip('/')}/hub/login")
            log_in(page, user, password + "-wrong")
            page.get_by_text("Invalid username or password").wait_for()
        with steps.step("login"):
            log_in(page, user, password)
            page.wait_for_url(lambda now: "/hub/login" not in now, timeout=LAB_WAIT)
        with steps.step("JupyterLab ready"):
            page.locator("#jp-main-dock-panel").wait_for(timeout=LAB_WAIT)  # as the user left it last time
        server = Server(page, url, user)
        before = (server.sessions(), server.terminals())
        undo = own_workspace(page, server)
        try:
            with steps.step("cell output"):
                new_launcher(page)
                page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
                # Its kernel is up, as the status bar tells a person: it spoke of the launcher (no kernel),
                # then says "No Kernel | Initializing", "Python 3 (ipykernel) | Connecting", then "| Idle".
                page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\| Idle")).first.wait_for()
                notebook = page.locator(".jp-NotebookPanel:visible")
                notebook.locator(".jp-Cell .cm-content").first.click()
                page.keyboard.type("print(6 * 7, 'from', __import__('getpass').getuser())")
                page.keyboard.press("Shift+Enter")
                notebook.locator(".jp-OutputArea-output", has_text=f"42 from {user}").wait_for()
            with steps.step("terminal"):
                new_launcher(page)
                page.locator(".jp-LauncherCard", has_text="Terminal").first.click()
                terminal = page.locator(".jp-Terminal:visible")
                terminal.locator(".xterm").click()
                page.keyboard.type('echo "i am $(whoami)"\n')
                terminal.locator(".xterm-accessibility-tree", has_text=f"i am {user}").wait_for()
        finally:  # what the check made goes: its kernel, notebook, terminal, workspace and setting
            undo()
            for session, notebook_path in server.sessions().items() - before[0].items():
                server.call("DELETE", f"/api/sessions/{session}")
                server.call("DELETE", f"/api/contents/{notebook_path}")
            for name in server.terminals() - before[1]:
                server.call("DELETE", f"/api/terminals/{name}")
        with steps.step("logout"):
            page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
            page.locator(".lm-Menu-itemLabel:visible", has_text="Log Out").click()
            page.locator("#username_input").wait_for()
        return steps.times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("user")
    parser.add_argument("--insecure", action="store_true", help="accept any certificate (a self-signed one)")
    parser.add_argument("--artifacts", type=Path, default=Path("/tmp/quickjh-browser"))
    args = parser.parse_args(argv)
    password = os.environ.get("QUICKJH_PASSWORD") or getpass.getpass(f"{args.user}'s password: ")
    try:
        times = round_trip(args.url, args.user, password, args.insecure, args.artifacts)
    except CheckFailed as err:
        print(err, file=sys.stderr)
        return 1
    print("browser check passed: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
