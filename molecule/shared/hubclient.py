"""A scripted browser for the tests: log in through the hub's form, start the server, run code in a kernel.

It does what JupyterLab does: cookies and the `_xsrf` token of the path it talks to (the hub's under /hub/, the
user server's under /user/NAME/), kernels started through /api/sessions with a notebook path.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import ssl
import time
import uuid
from urllib.parse import urlsplit

import requests
import websocket


def wait_healthy(hub_url: str, timeout: float = 120) -> None:
    """Wait until the hub answers /hub/health (any certificate: this only waits, it sends nothing secret)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{hub_url}/hub/health", timeout=5, verify=False).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    raise TimeoutError(f"{hub_url} not healthy after {timeout} s")


class LoginFailed(Exception):
    pass


class KernelDied(Exception):
    """The kernel died while running the code (e.g. killed past a memory limit): the server restarts it, and
    JupyterLab says that the kernel appears to have died and will restart automatically."""


class HubUser:
    def __init__(self, base_url: str, name: str, verify: bool | str = True) -> None:
        self.base = base_url.rstrip("/")  # may have a path: a hub under quickjh_base_url, or behind a proxy
        self.path = urlsplit(self.base).path
        self.name = name
        self.server = name  # whose server run, kernel and terminal use: one's own, or one shared (open_server)
        self.http = requests.Session()
        self.http.verify = verify
        self.http.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment beats `verify`

    def xsrf(self, path: str) -> str:
        """The _xsrf cookie of a path under the hub's base URL (/hub/ or /user/NAME/)."""
        for cookie in self.http.cookies:
            if cookie.name == "_xsrf" and cookie.path.rstrip("/") == (self.path + path).rstrip("/"):
                return cookie.value
        raise KeyError(f"no _xsrf cookie for {path}")

    def login(self, password: str) -> None:
        self.http.get(f"{self.base}/hub/login", timeout=30).raise_for_status()
        reply = self.http.post(
            f"{self.base}/hub/login?next=",
            data={"username": self.name, "password": password, "_xsrf": self.xsrf("/hub/")},
            allow_redirects=False,
            timeout=30,
        )
        if reply.status_code != 302:
            raise LoginFailed(f"{self.name}: login answered {reply.status_code}")

    def login_with_provider(self, form: dict) -> requests.Response:
        """Log in through the hub's identity provider as a browser does: the hub's button sends the browser to the
        provider's login page, whose form (`form`: its fields) sends it back to the hub's callback. Returns the last
        answer; raises LoginFailed unless the hub let the person in."""
        page = self.http.get(f"{self.base}/hub/oauth_login", timeout=30)
        page.raise_for_status()
        reply = self.http.post(page.url, data=form, timeout=60)
        if not reply.ok or "/hub/login" in reply.url:
            raise LoginFailed(f"{self.name}: the hub answered {reply.status_code} at {reply.url}: {reply.text}")
        return reply

    def login_with_code(self, password: str, code: str) -> None:
        """The login form with a one-time code after the password (quickjh_otp)."""
        self.http.get(f"{self.base}/hub/login", timeout=30).raise_for_status()
        reply = self.http.post(
            f"{self.base}/hub/login?next=",
            data={"username": self.name, "password": password, "otp": code, "_xsrf": self.xsrf("/hub/")},
            allow_redirects=False,
            timeout=30,
        )
        if reply.status_code != 302:
            raise LoginFailed(f"{self.name}: login answered {reply.status_code}: {reply.text}")

    def change_password(self, current: str, new: str, again: str | None = None) -> requests.Response:
        """Through the hub's password page (/hub/password), as its form sends it."""
        self.http.get(f"{self.base}/hub/password", timeout=30).raise_for_status()
        return self.http.post(
            f"{self.base}/hub/password",
            data={
                "current": current,
                "new": new,
                "again": new if again is None else again,
                "_xsrf": self.xsrf("/hub/"),
            },
            timeout=60,
        )

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-XSRFToken": self.xsrf("/hub/")}
        return self.http.request(method, f"{self.base}/hub/api{path}", headers=headers, **{"timeout": 30, **kwargs})

    def model(self) -> dict:
        reply = self.hub_api("GET", f"/users/{self.name}")
        reply.raise_for_status()
        return reply.json()

    def start_server(self, timeout: float = 90, options: dict | None = None) -> None:
        """Start the user's server (options: what the spawn form would send, e.g. a profile) and open it."""
        reply = self.hub_api("POST", f"/users/{self.name}/server", json=options or {})
        if reply.status_code not in (201, 202, 400):  # 400: already running
            reply.raise_for_status()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._follow_progress(deadline - time.monotonic())
            server = self.model().get("servers", {}).get("")
            if server is None:  # it was being stopped (the idle culler) when asked: ask again
                self.hub_api("POST", f"/users/{self.name}/server")
            elif server.get("ready"):
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"{self.name}: server not ready after {timeout} s")
        # Follow the OAuth dance like a browser opening the server: it sets the server's cookies.
        self.http.get(f"{self.base}/user/{self.name}/lab", timeout=30).raise_for_status()

    def open_server(self, owner: str) -> requests.Response:
        """Open another user's server as a browser does (the hub asks once to authorize the visit: the form is
        sent), and use it from then on for run, kernel and terminal. Returns the last answer (403 when not shared)."""
        reply = self.http.get(f"{self.base}/user/{owner}/lab", timeout=30)
        if reply.ok and "/oauth2/authorize" in reply.url:
            fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', reply.text)
            reply = self.http.post(reply.url, data=[(k, html.unescape(v)) for k, v in fields], timeout=30)
        if reply.ok:
            self.server = owner
        return reply

    def _follow_progress(self, timeout: float) -> None:
        """Read the spawn's progress events, as the hub's spawn page does, until the last one (ready or failed)."""
        try:
            with self.hub_api(
                "GET", f"/users/{self.name}/server/progress", stream=True, timeout=(30, min(max(timeout, 1), 60))
            ) as reply:
                for line in reply.iter_lines() if reply.ok else ():
                    if line.startswith(b"data:") and {"ready", "failed"} & {
                        k for k, v in json.loads(line[5:]).items() if v is True
                    }:
                        return
        except requests.RequestException:
            pass  # a stream cut short: the caller asks the user model

    def stop_server(self, timeout: float = 60) -> None:
        self.hub_api("DELETE", f"/users/{self.name}/server")
        deadline = time.monotonic() + timeout
        while self.model().get("servers") and time.monotonic() < deadline:
            time.sleep(0.5)

    def server_api(self, method: str, path: str, **kwargs) -> requests.Response:
        prefix = f"/user/{self.server}/"
        headers = {"X-XSRFToken": self.xsrf(prefix)}
        return self.http.request(method, f"{self.base}{prefix}api{path}", headers=headers, timeout=60, **kwargs)

    def run(self, code: str, kernel: str = "python3", path: str = "quickjh-test.ipynb", timeout: float = 120) -> str:
        """Run code in a new kernel of a notebook at `path` (relative to ~/notebook); return what it printed."""
        with self.kernel(kernel, path, timeout) as execute:
            return execute(code)

    @contextlib.contextmanager
    def kernel(self, kernel: str = "python3", path: str = "quickjh-test.ipynb", timeout: float = 120):
        """A new kernel of a notebook that stays up for several cells, as in JupyterLab: yields execute(code),
        which returns what the cell printed; the session ends after."""
        reply = self.server_api(
            "POST", "/sessions", json={"path": path, "type": "notebook", "name": path, "kernel": {"name": kernel}}
        )
        reply.raise_for_status()
        session = reply.json()
        try:
            yield lambda code: self._execute(session["kernel"]["id"], code, timeout)
        finally:
            self.server_api("DELETE", f"/sessions/{session['id']}")

    def whoami(self) -> tuple[str, int, str]:
        """Who a new kernel runs as, and where: (user name, UID, working folder)."""
        name, uid, cwd = self.run("import os, getpass; print(getpass.getuser(), os.getuid(), os.getcwd())").split()
        return name, int(uid), cwd

    def can_sudo(self, password: str) -> bool:
        """Whether `sudo id -u` with this password answers 0 from the user's kernel."""
        printed = self.run(
            "import subprocess\n"
            f"r = subprocess.run(['sudo', '-S', '-k', '-p', '', 'id', '-u'], input={password!r} + '\\n',"
            " capture_output=True, text=True)\n"
            "print(r.returncode, r.stdout.strip())\n"
        )
        return printed.split() == ["0", "0"]

    def terminal(self, command: str, timeout: float = 300) -> str:
        """Type a command into a new JupyterLab terminal (a bash login shell); return what it printed."""
        reply = self.server_api("POST", "/terminals")
        reply.raise_for_status()
        name = reply.json()["name"]
        ws = self._connect(f"/user/{self.server}/terminals/websocket/{name}", timeout)
        marker = uuid.uuid4().hex
        ws.send(json.dumps(["stdin", f"{command}; echo {marker[:16]}-$?-{marker[16:]}\r"]))
        out = ""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                kind, *data = json.loads(ws.recv())
                if kind == "stdout":
                    out += data[0]
                    found = re.search(f"{marker[:16]}-(\\d+)-{marker[16:]}", out)
                    if found:
                        return out[: found.start()] + f"[exit {found.group(1)}]"
        finally:
            ws.close()
            self.server_api("DELETE", f"/terminals/{name}")
        raise TimeoutError(f"{self.name}: terminal command did not finish in {timeout} s; printed {out!r}")

    def _connect(self, path: str, timeout: float) -> websocket.WebSocket:
        url = f"{self.base}{path}".replace("http", "ws", 1)
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        sslopt = (
            {"ca_certs": self.http.verify}
            if isinstance(self.http.verify, str)
            else {}
            if self.http.verify
            else {"cert_reqs": ssl.CERT_NONE}
        )
        return websocket.create_connection(url, cookie=cookies, timeout=timeout, sslopt=sslopt)

    def _execute(self, kernel_id: str, code: str, timeout: float) -> str:
        ws = self._connect(f"/user/{self.server}/api/kernels/{kernel_id}/channels", timeout)
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.name,
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        out: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                # Frame by frame, pings too, so the deadline holds while the server only pings (a plain recv()
                # answers pings itself and waits on: a lost message would hang the test for good).
                ws.settimeout(max(deadline - time.monotonic(), 0.1))
                try:
                    opcode, data = ws.recv_data(control_frame=True)
                except websocket.WebSocketTimeoutException:
                    break
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    break
                if opcode != websocket.ABNF.OPCODE_TEXT:
                    continue
                msg = json.loads(data)
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] in ("restarting", "dead"):
                    raise KernelDied(
                        f"{self.name}: the kernel {msg['content']['execution_state']}; printed {''.join(out)!r}"
                    )  # the server's word, about no request in particular
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    out.append(f"{content['ename']}: {content['evalue']}\n")
                elif kind == "status" and content["execution_state"] == "idle":
                    return "".join(out)
        finally:
            ws.close()
        raise TimeoutError(f"{self.name}: code did not finish in {timeout} s; printed {''.join(out)!r}")
