"""The wait for the hub (library/quickjh_wait.py), against a real HTTP server on this machine."""

from __future__ import annotations

import http.server
import socket
import threading

import quickjh_wait


def test_it_waits_through_errors_until_the_url_answers_200():
    asked = []

    class Starting(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200 if len(asked) >= 4 else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Starting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
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
