"""Real servers for the tests and the benchmarks: a free port, a process started and waited for
until it answers, and the HTTP requests and multipart bodies sent to it."""

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


def wait_until_answering(url: str, process: subprocess.Popen, seconds: float = 60.0) -> None:
    """Return once ``url`` answers 200; raise RuntimeError if ``process`` exits or ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            error = process.stderr.read() if process.stderr else ""
            error = error if isinstance(error, str) else error.decode("utf-8", "replace")
            raise RuntimeError(f"server exited: {error[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answered at {url} in {seconds:g} s")
        time.sleep(0.05)  # a server answers about a second after it starts: poll often


def stop(process: subprocess.Popen, seconds: float = 15.0) -> None:
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running(command: list[str], health_url: str, seconds: float = 90.0, **popen):
    """Start ``command``, wait until ``health_url`` answers, yield the process; stop it afterwards."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)
    try:
        wait_until_answering(health_url, process, seconds)
        yield process
    finally:
        stop(process)


SERVER_PIDS: dict[str, int] = {}  # base URL -> pid of the `mnist-logreg serve` process behind it


def server_pid(url: str) -> int:
    return SERVER_PIDS[url]


@contextlib.contextmanager
def serving(run_dir, startup_timeout: float = 60.0, workers: int = 1, options: tuple[str, ...] = ()):
    """``mnist-logreg serve`` on a free port (with extra command-line ``options``); yields its base URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "mnist_logreg",
        "serve",
        str(run_dir),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with running([*command, *options], f"{url}/api/health", startup_timeout, text=True) as process:
        SERVER_PIDS[url] = process.pid
        try:
            yield url
        finally:
            SERVER_PIDS.pop(url, None)


def request(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, parsed JSON or text) of one HTTP request; 4xx and 5xx are returned, not raised."""
    status, answer, _ = request_with_headers(url, body, headers, method)
    return status, answer


def request_with_headers(url: str, body: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, parsed JSON or text, response headers) of one HTTP request."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, content, answer_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, content, answer_headers = error.code, error.read(), error.headers
    kind = answer_headers.get("content-type", "")
    return status, (json.loads(content) if "json" in kind else content.decode("utf-8", "replace")), answer_headers


def multipart(field: str, filename: str, content: bytes, content_type: str = "application/octet-stream"):
    """(body, headers) of a multipart/form-data upload with one file field."""
    return multipart_files([(field, filename, content)], content_type)


def multipart_files(
    files: list[tuple[str, str, bytes]], content_type: str = "application/octet-stream", fields: dict | None = None
):
    """(body, headers) of a multipart/form-data upload with several (field, filename, content) parts,
    and text ``fields`` before them."""
    boundary = "----mnist-logreg-test-boundary"
    texts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (fields or {}).items()
    )
    body = b"".join(
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + content
        + b"\r\n"
        for field, filename, content in files
    )
    return texts + body + f"--{boundary}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def correct(url: str, content: bytes, label: str, filename: str = "drawing.png"):
    """POST /api/corrections: one image and its label, as multipart; (status, answer)."""
    body, headers = multipart_files([("file", filename, content)], "image/png", fields={"label": label})
    return request(f"{url}/api/corrections", body, headers)
