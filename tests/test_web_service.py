"""Bounded load and exposure: a real server past its capacity, its time limit, and who may call it."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.helpers import untrained_run
from tests.photos import image_bytes, seven
from tests.servers import free_port, multipart, request, request_with_headers, serving


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return untrained_run(tmp_path_factory.mktemp("limits") / "run")


def large_photo() -> bytes:
    """A 3000×2000 PNG (PNG has no reduced decoding): each prediction takes tens of milliseconds."""
    page = Image.new("L", (3000, 2000), 230)
    ImageDraw.Draw(page).line([(900, 400), (2000, 400), (1300, 1700)], fill=25, width=120)
    return image_bytes(page, compress_level=1)


def test_past_its_queue_the_server_answers_503_at_once_and_keeps_answering_health(run_dir):
    upload = multipart("file", "big.png", large_photo())
    with serving(run_dir, options=("--queue", "2")) as url:

        def predict(_):
            return request_with_headers(f"{url}/api/predict", *upload)

        with ThreadPoolExecutor(max_workers=64) as pool:
            burst = [pool.submit(predict, i) for i in range(64)]
            time.sleep(0.3)  # the burst is under way
            started = time.perf_counter()
            health = request(f"{url}/api/health")
            health_seconds = time.perf_counter() - started
            answers = [future.result() for future in burst]
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 2 and statuses.count(503) >= 1, statuses
    for status, answer, headers in answers:
        if status == 503:
            assert headers["Retry-After"] == "1" and answer["error"].startswith("busy: 2 predictions queued")
    assert health == (200, {"status": "ok"})
    print(
        f"\n64 clients, queue 2: {statuses.count(503)} of 64 answered 503; health answered in {health_seconds * 1000:.0f} ms"
    )


def test_a_prediction_past_the_time_limit_is_answered_not_left_hanging(run_dir):
    with serving(run_dir, options=("--prediction-timeout", "0.000001")) as url:
        status, answer, headers = request_with_headers(
            f"{url}/api/predict", *multipart("file", "7.png", image_bytes(seven()))
        )
        assert request(f"{url}/api/health") == (200, {"status": "ok"})
    assert status == 503 and headers["Retry-After"] == "1"
    assert answer["error"] == "the prediction took longer than 1e-06 s; retry shortly"


def test_no_cors_headers_unless_an_origin_is_allowed(run_dir):
    origin = {"Origin": "http://elsewhere.test"}
    with serving(run_dir) as url:
        _, _, headers = request_with_headers(f"{url}/api/health", headers=origin)
        assert "access-control-allow-origin" not in {k.lower() for k in headers}
    with serving(run_dir, options=("--cors", "http://elsewhere.test")) as url:
        _, _, headers = request_with_headers(f"{url}/api/health", headers=origin)
        assert headers["access-control-allow-origin"] == "http://elsewhere.test"
        _, _, headers = request_with_headers(f"{url}/api/health", headers={"Origin": "http://other.test"})
        assert "access-control-allow-origin" not in {k.lower() for k in headers}


def test_binding_beyond_loopback_warns_that_the_demo_has_no_authentication(run_dir):
    """192.0.2.1 is a documentation address this machine does not have: the bind fails, and no
    packet is sent anywhere, but the warning comes first."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_logreg",
            "serve",
            str(run_dir),
            "--host",
            "192.0.2.1",
            "--port",
            str(free_port()),
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "warning: serving on 192.0.2.1, beyond this machine: the demo has no authentication" in done.stderr
    assert done.returncode != 0


def worker_rss_mib(server_pid: int) -> float:
    """Resident memory of the server's one worker process (uvicorn runs it as a child)."""
    children = subprocess.run(["ps", "-o", "rss=,args=", "--ppid", str(server_pid)], capture_output=True, text=True)
    sizes = [int(line.split()[0]) for line in children.stdout.splitlines() if "resource_tracker" not in line]
    status = Path(f"/proc/{server_pid}/status").read_text().splitlines()
    own = int(next(line.split()[1] for line in status if line.startswith("VmRSS")))
    return max([*sizes, own]) / 1024


@pytest.mark.fuzz
def test_memory_stays_flat_over_5000_requests(run_dir, tmp_path):
    """ApacheBench (make test installs apache2-utils) sends 1,000 requests to warm up, then 4,000 more."""
    import shutil

    assert shutil.which("ab"), "make test installs apache2-utils for ab"
    body, headers = multipart("file", "7.png", image_bytes(seven()))
    (tmp_path / "body").write_bytes(body)

    def ab(url: str, count: int) -> str:
        command = [
            "ab",
            "-q",
            "-n",
            str(count),
            "-c",
            "4",
            "-p",
            str(tmp_path / "body"),
            "-T",
            headers["Content-Type"],
            url,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=300).stdout

    with serving(run_dir) as url:
        from tests.servers import server_pid

        pid = server_pid(url)
        warm = ab(f"{url}/api/predict", 1000)
        before = worker_rss_mib(pid)
        rest = ab(f"{url}/api/predict", 4000)
        after = worker_rss_mib(pid)
    for output in (warm, rest):
        assert "Failed requests:        0" in output and "Non-2xx" not in output, output[-800:]
    print(f"\nserver RSS after 1,000 requests {before:.1f} MiB, after 5,000 {after:.1f} MiB")
    assert after - before < 10, (before, after)


def test_serve_hands_each_worker_the_whole_of_its_limits(tmp_path):
    import json

    from mnist_logreg.config import Limits
    from mnist_logreg.web.app import serve_settings

    limits = Limits(queue=3, timeout_s=0.5, cors=("http://a.example",), upload_bytes=1000, files=2, drain_bytes=5000)
    settings = json.loads(serve_settings(tmp_path, limits))
    assert Limits.from_json(settings["limits"]) == limits and settings["run_dir"] == str(tmp_path.resolve())
