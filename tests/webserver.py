"""Run ``mnist-logreg serve`` for real, on a free loopback port, for the web tests."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(run_dir, startup_timeout: float = 60.0):
    """Start the server on a free port; yield its base URL; stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mnist_logreg", "serve", str(run_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read()}")
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                    if json.load(response) == {"status": "ok"}:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not answer /api/health in time")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def request(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, parsed JSON or text) of one HTTP request; 4xx and 5xx are returned, not raised."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, content, kind = response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        status, content, kind = error.code, error.read(), error.headers.get("content-type", "")
    return status, (json.loads(content) if "json" in kind else content.decode("utf-8", "replace"))


def multipart(field: str, filename: str, content: bytes, content_type: str = "application/octet-stream"):
    """(body, headers) of a multipart/form-data upload with one file field."""
    boundary = "----mnist-logreg-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
