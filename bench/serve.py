"""The server under load: a real `mnist-logreg serve` against ApacheBench, beside the framework's floor.

    make bench-serve      # or, from the repository root: .venv/bin/python -m bench.serve [--requests 400]

ApacheBench (`ab`, compiled; Debian's apache2-utils) is the client: a Python client tops out at a
few hundred requests/s on its own. In the same run it measures the floor of the server stack:
the same FastAPI + uvicorn, the same body limit and multipart parsing, no prediction. It also
times the library's `preprocess_image` on 640×480 photos, and reads each worker's memory. The
results go to bench/serve-results.json and the "serve" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI, Request  # module level: FastAPI resolves the floor's annotations here

from bench.sections import update_section
from tests.servers import free_port, running

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = REPO / "data"

BOUNDARY = "----mnist-logreg-bench"
CONCURRENCY = (1, 4, 16)

# ---------------------------------------------------------------------------------------------
# The floor: the same stack and request handling as /api/predict, without the prediction.
# ---------------------------------------------------------------------------------------------


def floor_app():
    """uvicorn factory: POST /noop reads the body under the same limit and parses the multipart upload."""
    from mnist_logreg.config import Limits
    from mnist_logreg.web.bodies import images_from_multipart, read_limited_body

    app = FastAPI()

    @app.post("/noop")
    async def noop(request: Request) -> dict:
        files = await images_from_multipart(request, await read_limited_body(request, Limits()), Limits())
        return {"files": len(files)}

    return app


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def make_images(folder: Path) -> dict[str, Path]:
    """Multipart bodies of a drawing PNG (303×492), a 640×480 photo JPEG and a 12-megapixel phone JPEG."""
    import numpy as np
    from PIL import Image

    from mnist_logreg.data.splits import load_splits
    from tests.photos import image_bytes, on_paper

    digits, _ = load_splits("mnist", DATA_DIR).tensors("test")
    rng = np.random.default_rng(0)
    drawing = Image.fromarray(255 - digits[0, 0].numpy()).resize((303, 303), Image.Resampling.BICUBIC)
    page = Image.new("L", (303, 492), 255)
    page.paste(drawing, (0, 90))
    photo = on_paper(digits[1, 0].numpy(), rng).resize((640, 480))
    phone = on_paper(digits[2, 0].numpy(), rng).resize((4000, 3000))
    images = {"drawing-png": (page, "PNG", {}), "photo-jpeg": (photo, "JPEG", {"quality": 85})}
    images["phone-12mp-jpeg"] = (phone, "JPEG", {"quality": 85})
    bodies = {}
    for name, (image, fmt, options) in images.items():
        content = image_bytes(image, fmt, **options)
        body = (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        bodies[name] = folder / f"{name}.body"
        bodies[name].write_bytes(body)
        (folder / f"{name}.{fmt.lower()}").write_bytes(content)
    return bodies


def photos_640(count: int = 40) -> list[bytes]:
    import numpy as np

    from mnist_logreg.data.splits import load_splits
    from tests.photos import image_bytes, on_paper

    digits, _ = load_splits("mnist", DATA_DIR).tensors("test")
    rng = np.random.default_rng(1)
    photos = []
    for i in range(count):
        photos.append(image_bytes(on_paper(digits[i, 0].numpy(), rng).resize((640, 480)), "JPEG", quality=85))
    return photos


# ---------------------------------------------------------------------------------------------
# Servers and the client
# ---------------------------------------------------------------------------------------------


def worker_rss_mib(parent: int) -> list[float]:
    """Resident memory of each child process of ``parent`` (uvicorn's workers)."""
    result = subprocess.run(["ps", "-o", "rss=,args=", "--ppid", str(parent)], capture_output=True, text=True)
    rows = [line.split(None, 1) for line in result.stdout.splitlines() if line.strip()]
    return [int(rss) / 1024 for rss, command in rows if "resource_tracker" not in command]


def ab(url: str, body: Path, requests: int, concurrency: int, folder: Path) -> dict:
    """One ApacheBench run: requests/s, failures and latency percentiles (ms)."""
    percentiles = folder / "percentiles.csv"
    command = [
        "ab", "-q", "-n", str(requests), "-c", str(concurrency), "-s", "30", "-e", str(percentiles),
        "-p", str(body), "-T", f"multipart/form-data; boundary={BOUNDARY}", url,
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if output.returncode != 0:
        raise SystemExit(f"ab failed: {output.stderr[-1000:]}")
    text = output.stdout
    with percentiles.open() as handle:
        served_within = {int(float(row[0])): float(row[1]) for row in list(csv.reader(handle))[1:]}

    def number(pattern: str) -> float:
        return float(re.search(pattern, text).group(1))

    return {
        "requests": requests,
        "concurrency": concurrency,
        "requests_per_s": number(r"Requests per second:\s+([\d.]+)"),
        "failed": int(number(r"Failed requests:\s+(\d+)")),
        "non_2xx": int(number(r"Non-2xx responses:\s+(\d+)")) if "Non-2xx" in text else 0,
        "p50_ms": served_within[50],
        "p95_ms": served_within[95],
        "p99_ms": min(served_within[99], served_within[100]),  # ab's 99 % row is garbage under 100 requests
    }


def ensure_ab() -> None:
    if shutil.which("ab"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*sudo, "apt-get", "install", "-y", "apache2-utils"], check=True, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def library_timings(run: Path) -> dict:
    """Medians in the library: preprocess_image on 640×480 photos, and read on 640×480 photos of 4-digit numbers."""
    import numpy as np

    from mnist_logreg.data.splits import load_splits
    from mnist_logreg.images.preprocess import open_image, preprocess_image
    from mnist_logreg.infer.number import read_image_file
    from mnist_logreg.model.linear import load_weights
    from tests.photos import image_bytes
    from tests.written_numbers import compose, on_lit_paper

    photos = photos_640()
    for photo in photos[:5]:  # warm-up: first calls load code paths
        preprocess_image(open_image(photo))
    preprocess_times = []
    for photo in photos:
        image = open_image(photo)
        start = time.perf_counter()
        preprocess_image(image)
        preprocess_times.append(time.perf_counter() - start)

    weights, info = load_weights(run)
    digits, labels = load_splits("mnist", DATA_DIR).tensors("test")
    rng = np.random.default_rng(2)
    numbers = []
    for _ in range(40):
        chosen = rng.choice(len(labels), 4, replace=False)
        page = on_lit_paper(compose([digits[i, 0].numpy() for i in chosen], rng), rng)
        numbers.append(image_bytes(page.resize((640, 480)), "JPEG", quality=85))
    read_times = []
    for number in numbers:
        start = time.perf_counter()
        read_image_file(number, weights, info)
        read_times.append(time.perf_counter() - start)
    return {
        "preprocess_640x480_median_ms": statistics.median(preprocess_times) * 1000,
        "read_640x480_4_digits_median_ms": statistics.median(read_times) * 1000,
        "images": len(photos),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per concurrency level (more at 16)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="uvicorn workers for both servers")
    args = parser.parse_args()
    ensure_ab()
    cli = Path(sys.executable).parent / "mnist-logreg"
    results = {"predict": {}, "floor": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bodies = make_images(folder)
        run = folder / "run"
        print("[bench-serve] training the default preset ...", file=sys.stderr, flush=True)
        subprocess.run(
            [str(cli), "train", "--data-dir", str(DATA_DIR), "--out", str(run), "--no-report", "--no-progress"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        results["library"] = library_timings(run)
        port = free_port()
        serve = [str(cli), "serve", str(run), "--port", str(port), "--workers", str(args.workers)]
        with running(serve, f"http://127.0.0.1:{port}/api/health") as server:
            results["worker_rss_mib"] = worker_rss_mib(server.pid) or None
            url = f"http://127.0.0.1:{port}/api/predict"
            for name in ("drawing-png", "photo-jpeg"):
                for concurrency in CONCURRENCY:
                    print(f"[bench-serve] predict {name} c={concurrency} ...", file=sys.stderr, flush=True)
                    count = args.requests * (2 if concurrency == 16 else 1)
                    results["predict"][f"{name} c={concurrency}"] = ab(url, bodies[name], count, concurrency, folder)
            for concurrency in (1, 4):
                print(f"[bench-serve] predict 12 MP c={concurrency} ...", file=sys.stderr, flush=True)
                results["predict"][f"phone-12mp-jpeg c={concurrency}"] = ab(
                    url, bodies["phone-12mp-jpeg"], max(100, args.requests // 4), concurrency, folder
                )
            results["worker_rss_mib_after"] = worker_rss_mib(server.pid) or None
        port = free_port()
        floor = [
            sys.executable, "-m", "uvicorn", "bench.serve:floor_app", "--factory", "--app-dir", str(REPO),
            "--port", str(port), "--workers", str(args.workers), "--log-level", "warning",
        ]  # fmt: skip
        with running(floor, f"http://127.0.0.1:{port}/docs"):
            for concurrency in CONCURRENCY:
                print(f"[bench-serve] floor c={concurrency} ...", file=sys.stderr, flush=True)
                count = args.requests * (2 if concurrency == 16 else 1)
                results["floor"][f"drawing-png c={concurrency}"] = ab(
                    f"http://127.0.0.1:{port}/noop", bodies["drawing-png"], count, concurrency, folder
                )
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cores": os.cpu_count(), "cpu": cpu_name(), "python": platform.python_version()},
        "workers": args.workers,
        "results": results,
    }
    (HERE / "serve-results.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    update_section("serve", text)
    print(text)


def cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def markdown(report: dict) -> str:
    r, m = report["results"], report["machine"]
    rows = [
        f"| {server} | {case} | {x['requests']} | {x['requests_per_s']:.0f} | {x['p50_ms']:.1f} | {x['p95_ms']:.1f} "
        f"| {x['p99_ms']:.1f} | {x['failed'] + x['non_2xx']} |"
        for server, cases in (("`serve`", r["predict"]), ("floor (no-op upload)", r["floor"]))
        for case, x in cases.items()
    ]
    floor16 = r["floor"]["drawing-png c=16"]["requests_per_s"]
    ours16 = r["predict"]["drawing-png c=16"]["requests_per_s"]
    rss = r.get("worker_rss_mib") or []
    rss_after = r.get("worker_rss_mib_after") or []
    return "\n".join(
        [
            "## Serving: `mnist-logreg serve` under ApacheBench",
            "",
            f"Machine: {m['cores']} cores ({m['cpu']}), Python {m['python']}; client and server on it together. "
            f"Run {report['date']} with `make bench-serve`: {report['workers']} uvicorn workers, `ab` from "
            "apache2-utils, a new connection per request. Latencies in ms.",
            "",
            "| server | upload, concurrent clients | requests | requests/s | p50 | p95 | p99 | errors |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            "| measure | measured | target (aim) |",
            "| --- | --- | --- |",
            f"| sequential drawing upload, p50 | {r['predict']['drawing-png c=1']['p50_ms']:.1f} ms | ≤ 5 ms |",
            f"| 16 clients, throughput | {ours16:.0f} req/s ({100 * ours16 / floor16:.0f} % of the floor's "
            f"{floor16:.0f}) | ≥ 400 req/s (≥ 50 % of the floor) |",
            f"| 16 clients, p99 | {r['predict']['drawing-png c=16']['p99_ms']:.1f} ms | ≤ 60 ms |",
            f"| 12 MP JPEG, end to end (sequential, p50) | {r['predict']['phone-12mp-jpeg c=1']['p50_ms']:.1f} ms "
            "| ≤ 60 ms |",
            f"| `preprocess_image` on a 640×480 photo, median (library) | "
            f"{r['library']['preprocess_640x480_median_ms']:.2f} ms | ≤ 2 ms |",
            f"| `read` on a 640×480 photo of a 4-digit number, median (library) | "
            f"{r['library']['read_640x480_4_digits_median_ms']:.1f} ms | < 30 ms |",
            f"| resident memory per worker, after start / after the run | "
            f"{', '.join(f'{v:.0f}' for v in rss)} / {', '.join(f'{v:.0f}' for v in rss_after)} MiB | |",
            "",
        ]
    )


if __name__ == "__main__":
    main()
