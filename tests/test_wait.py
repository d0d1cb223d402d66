"""The wait for the hub (library/quickjh_wait.py), against a real HTTP server on this machine."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading

import quickjh_wait


def serve(handler, tls: tuple[str, str] | None = None) -> http.server.HTTPServer:
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_it_waits_through_errors_until_the_url_answers_200():
    asked = []

    class Starting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200 if len(asked) >= 4 else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = serve(Starting)
    try:
        status, error, seconds = quickjh_wait.wait(f"http://127.0.0.1:{server.server_port}/hub/health", 10, 0.05)
    finally:
        server.shutdown()
    assert (status, error, asked) == (200, "", ["/hub/health"] * 4)
    assert seconds < 2


def test_nothing_listening_ends_at_the_timeout_with_the_reason():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    status, error, seconds = quickjh_wait.wait(f"https://127.0.0.1:{port}/hub/health", 1, 0.1)
    assert status == -1
    assert "refused" in error
    assert 1 <= seconds < 2


def test_a_self_signed_hub_answers_without_a_proxy_between(tmp_path, monkeypatch):
    from test_checks import certificate

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = serve(Healthy, certificate(tmp_path, days=10, names=("localhost", "127.0.0.1")))
    with socket.socket() as free:  # a proxy that is not there: used, every try would fail
        free.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{free.getsockname()[1]}"
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, nowhere)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    try:
        status, error, _ = quickjh_wait.wait(f"https://127.0.0.1:{server.server_port}/hub/health", 3, 0.05)
    finally:
        server.shutdown()
    assert (status, error) == (200, "")


def test_a_restart_that_docker_refuses_is_named_with_dockers_words():
    said = quickjh_wait.restart("quickjh-test-no-such-container")
    assert said.startswith("docker restart quickjh-test-no-such-container failed: ")
    assert "No such container" in said or "Cannot connect to the Docker daemon" in said
