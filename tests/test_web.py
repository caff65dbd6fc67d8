"""The JSON API, against a real server on a loopback port: every route and every bad input."""

from __future__ import annotations

import base64
import io
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from mnist_logreg.model.run_folder import write_json
from tests.helpers import DIGITS_INFO, rejecting_run, untrained_run
from tests.photos import image_bytes, seven
from tests.servers import multipart, multipart_files, request, serving


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run_dir = untrained_run(tmp_path_factory.mktemp("web") / "run", preset="test")
    write_json(
        run_dir / "metrics.json",
        {"test_acc": 0.5, "test_loss": 1.0, "val_acc": 0.5, "val_loss": 1.0, "train_seconds": 1.0},
    )
    with serving(run_dir) as url:
        yield url


def check_prediction(answer: dict) -> None:
    assert set(answer) >= {"accepted", "label", "class", "probability", "top_k", "probabilities"}
    assert len(answer["probabilities"]) == 10
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert answer["label"] == max(range(10), key=lambda k: answer["probabilities"][k])
    assert answer["class"] == str(answer["label"])
    assert next(t["label"] for t in answer["top_k"]) == answer["label"]
    assert answer["preprocessed"].startswith("data:image/png;base64,")
    seen = Image.open(io.BytesIO(base64.b64decode(answer["preprocessed"].split(",", 1)[1])))
    assert seen.size == (28, 28)


def test_health_model_page_and_docs(server):
    assert request(f"{server}/api/health") == (200, {"status": "ok"})
    status, model = request(f"{server}/api/model")
    assert status == 200
    assert model["model"]["classes"] == DIGITS_INFO["classes"] and model["metrics"]["test_acc"] == 0.5
    status, page = request(f"{server}/")
    assert status == 200
    for testid in ("canvas", "clear", "prediction", "upload", "upload-button", "preprocessed"):
        assert f'data-testid="{testid}"' in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from the network
    assert request(f"{server}/docs")[0] == 200
    status, spec = request(f"{server}/openapi.json")
    assert status == 200 and "/api/predict" in spec["paths"]


def test_the_schema_is_generated_from_the_routes_declarations(server):
    spec = request(f"{server}/openapi.json")[1]
    predict = spec["paths"]["/api/predict"]["post"]
    assert set(predict["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    answers = predict["responses"]
    one_or_batch = answers["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert one_or_batch[0] == {"$ref": "#/components/schemas/Prediction"}
    assert one_or_batch[1]["items"]["anyOf"] == [
        {"$ref": "#/components/schemas/FilePrediction"},
        {"$ref": "#/components/schemas/FileError"},
    ]
    for status in ("400", "413", "415", "422", "500"):
        assert answers[status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorAnswer"}
    prediction = spec["components"]["schemas"]["Prediction"]
    assert set(prediction["required"]) >= {"label", "class", "probability", "top_k", "probabilities", "preprocessed"}
    model = spec["paths"]["/api/model"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert model == {"$ref": "#/components/schemas/ModelAnswer"}


def test_an_error_of_our_own_is_logged_and_answered_500_not_4xx(tmp_path, monkeypatch, caplog):
    """A bug in the server (here: prediction raising RuntimeError) must not pass for the client's fault."""
    import threading

    import uvicorn

    import mnist_logreg.web.app as app_module
    import mnist_logreg.web.service as service_module
    from tests.servers import free_port

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of ours")

    untrained_run(tmp_path / "run", preset="test")
    monkeypatch.setattr(service_module, "predict_image_file", broken)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app_module.create_app(tmp_path / "run"), port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with caplog.at_level("ERROR", logger="mnist_logreg.web"):
            status, answer = request(
                f"http://127.0.0.1:{port}/api/predict", *multipart("file", "7.png", image_bytes(seven()))
            )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert status == 500 and answer == {"error": "internal server error (logged)"}
    assert "a bug of ours" in caplog.text


def test_predict_a_multipart_upload(server):
    body, headers = multipart("file", "seven.png", image_bytes(seven()), "image/png")
    status, answer = request(f"{server}/api/predict", body, headers)
    assert status == 200, answer
    check_prediction(answer)


@pytest.mark.parametrize("prefix", ["", "data:image/png;base64,"])
def test_predict_base64_json(server, prefix):
    payload = {"image": prefix + base64.b64encode(image_bytes(seven())).decode()}
    status, answer = request(
        f"{server}/api/predict", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200, answer
    check_prediction(answer)


def test_both_ways_give_the_same_answer(server):
    content = image_bytes(seven())
    body, headers = multipart("file", "a.png", content)
    _, by_upload = request(f"{server}/api/predict", body, headers)
    _, by_json = request(
        f"{server}/api/predict",
        json.dumps({"image": base64.b64encode(content).decode()}).encode(),
        {"Content-Type": "application/json"},
    )
    assert by_upload["probabilities"] == by_json["probabilities"]


JSON = {"Content-Type": "application/json"}
BOMB = image_bytes(Image.new("1", (8000, 6000), 1))  # 48 megapixels in a few kB


@pytest.mark.parametrize(
    "body, headers, status, message",
    [
        (*multipart("file", "notes.txt", b"just text"), 422, "not an image Pillow can read"),
        (*multipart("file", "empty.png", b""), 422, "empty file"),
        (*multipart("file", "cut.png", image_bytes(seven())[:300]), 422, "truncated or corrupt image"),
        (*multipart("file", "bomb.png", BOMB), 413, "48 megapixels, over the limit of 40"),
        (*multipart("picture", "seven.png", image_bytes(seven())), 400, "no 'file' field"),
        (
            b"--xyz\r\nnot really multipart",
            {"Content-Type": "multipart/form-data; boundary=xyz"},
            400,
            "malformed multipart body",
        ),
        (b"--x", {"Content-Type": "multipart/form-data"}, 400, "malformed multipart body"),
        (b"{not json", JSON, 400, "malformed JSON"),
        (b"[1, 2]", JSON, 400, "an object with an 'image' field"),
        (b'{"picture": "abc"}', JSON, 400, "an object with an 'image' field"),
        (b'{"image": 42}', JSON, 400, "'image' must be a base64 string"),
        (b'{"image": "not base64!!"}', JSON, 400, "'image' is not valid base64"),
        (json.dumps({"image": base64.b64encode(b"GIF89a garbage").decode()}).encode(), JSON, 422, "image:"),
        (b"\xff\xfe\x00", JSON, 400, "malformed JSON"),
        (b"hello", {"Content-Type": "text/plain"}, 415, "send multipart/form-data"),
        (b"", {}, 415, "send multipart/form-data"),
        (b"x" * (5 * 1024 * 1024 + 1), {"Content-Type": "application/octet-stream"}, 413, "request body over 5 MB"),
        (*multipart("file", "big.png", b"\x89PNG" + b"\x00" * (5 * 1024 * 1024)), 413, "request body over 5 MB"),
    ],
    ids=[
        "text",
        "empty",
        "truncated",
        "bomb",
        "wrong-field",
        "bad-multipart",
        "no-boundary",
        "bad-json",
        "json-list",
        "json-no-image",
        "image-not-string",
        "bad-base64",
        "base64-not-image",
        "json-not-utf8",
        "text-plain",
        "no-content-type",
        "too-large",
        "too-large-upload",
    ],
)
def test_bad_input_answers_4xx_with_a_json_error(server, body, headers, status, message):
    answer_status, answer = request(f"{server}/api/predict", body, headers, method="POST")
    assert answer_status == status, answer
    assert isinstance(answer, dict) and message in answer["error"]
    assert request(f"{server}/api/health") == (200, {"status": "ok"})  # and the server is still up


def test_a_chunked_body_over_the_limit_is_refused(server):
    """A body sent without Content-Length is counted as it arrives."""
    import http.client
    from urllib.parse import urlparse

    where = urlparse(server)
    connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
    chunks = (b"x" * 65536 for _ in range(100))  # 6.25 MB
    connection.request(
        "POST", "/api/predict", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True
    )
    response = connection.getresponse()
    assert response.status == 413
    assert "request body over 5 MB" in json.loads(response.read())["error"]
    connection.close()


def test_wrong_method_and_unknown_route_are_4xx(server):
    assert request(f"{server}/api/predict")[0] == 405
    assert request(f"{server}/nowhere")[0] == 404


def test_concurrent_requests_all_succeed(server):
    """A few hundred requests from several threads: no errors, and latency to report."""
    content = image_bytes(seven())
    upload = multipart("file", "seven.png", content)
    as_json = (json.dumps({"image": base64.b64encode(content).decode()}).encode(), JSON)

    def one(i):
        start = time.perf_counter()
        status, answer = request(f"{server}/api/predict", *(upload if i % 2 else as_json))
        return status, answer, time.perf_counter() - start

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(300)))
    wall = time.perf_counter() - started
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 300, [a for s, a, _ in results if s != 200][:3]
    labels = {answer["label"] for _, answer, _ in results}
    assert len(labels) == 1  # the same image always gets the same answer
    latencies = sorted(t for _, _, t in results)
    print(
        f"\n300 requests, 8 threads: {wall:.2f} s, {300 / wall:.0f} req/s, "
        f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {latencies[284] * 1000:.0f} ms, 0 errors"
    )


def test_serve_refuses_a_bad_run_folder(tmp_path):
    from tests.helpers import cli

    result = cli("serve", tmp_path / "absent", "--port", "0")
    assert result.returncode == 1
    assert "no run folder at" in result.stderr


def test_a_batch_mixing_good_and_bad_files_gets_one_answer_per_file_in_order(server):
    good = image_bytes(seven())
    files = [
        ("file", "a.png", good),
        ("file", "notes.txt", b"not an image"),
        ("file", "blank.png", image_bytes(Image.new("L", (50, 50), 255))),
        ("file", "b.png", good),
    ]
    status, answers = request(f"{server}/api/predict", *multipart_files(files))
    assert status == 200 and isinstance(answers, list)
    assert [a["filename"] for a in answers] == ["a.png", "notes.txt", "blank.png", "b.png"]
    assert "not an image Pillow can read" in answers[1]["error"]
    assert answers[2]["accepted"] is False and answers[2]["class"] == "not a digit"
    assert answers[2]["reason"].startswith("no ink found")
    check_prediction(answers[0])
    single = request(f"{server}/api/predict", *multipart("file", "a.png", good))[1]
    assert answers[0]["probabilities"] == answers[3]["probabilities"] == single["probabilities"]
    assert "filename" not in single  # one file: the answer is the same object as ever


def test_two_worker_processes_start_and_answer(tmp_path):
    untrained_run(tmp_path / "run", preset="test")
    content = image_bytes(seven())
    with serving(tmp_path / "run", workers=2) as url, ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda _: request(f"{url}/api/predict", *multipart("file", "7.png", content)), range(20))
        )
    assert [status for status, _ in answers] == [200] * 20
    assert len({tuple(answer["probabilities"]) for _, answer in answers}) == 1


@pytest.mark.parametrize(
    "path, method, status, message",
    [("/no/such/route", "GET", 404, "Not Found"), ("/api/predict", "GET", 405, "Method Not Allowed")],
)
def test_unknown_routes_and_methods_answer_the_apis_error_shape(server, path, method, status, message):
    assert request(f"{server}{path}", method=method) == (status, {"error": message})


def test_a_bad_query_parameter_is_named_in_a_sentence_not_a_repr(server):
    body, headers = multipart("file", "seven.png", image_bytes(seven()))
    status, answer = request(f"{server}/api/predict?explain=banana", body, headers)
    assert status == 400
    said = "query parameter 'explain': Input should be a valid boolean, unable to interpret input"
    assert answer == {"error": f"invalid request: {said}"}


def test_reading_a_number_explains_each_digit_when_asked(server):
    body, headers = multipart("file", "seven.png", image_bytes(seven()))
    status, plain = request(f"{server}/api/read", body, headers)
    assert status == 200 and all("evidence" not in digit for digit in plain["digits"])
    status, explained = request(f"{server}/api/read?explain=1", body, headers)
    assert status == 200 and explained["text"] == plain["text"]
    for digit in explained["digits"]:
        assert digit["evidence"]["predicted"] == digit["label"]
        assert digit["evidence"]["captions"]["for_predicted"] == f"for {digit['label']}"  # the page shows these
        for name in ("input", "for_predicted", "for_runner_up", "difference"):
            assert digit["evidence"][name].startswith("data:image/png;base64,")


def test_a_malformed_multipart_body_leaves_no_parser_noise_on_the_console(tmp_path):
    """The client gets its 400; the server's console gets no 'Expected boundary character' warning."""
    import subprocess
    import sys

    from tests.servers import free_port

    run = untrained_run(tmp_path / "run")
    port = free_port()
    command = [sys.executable, "-m", "mnist_logreg", "serve", str(run), "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while request_or_none(f"http://127.0.0.1:{port}/api/health") is None:
            assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
            time.sleep(0.2)
        for body in (b"xx--zz\r\nbad", b"--zz\r\nContent-Disposition: nonsense\r\n\r\n--zz--"):
            headers = {"Content-Type": "multipart/form-data; boundary=zz"}
            status, answer = request(f"http://127.0.0.1:{port}/api/predict", body, headers)
            assert status == 400 and answer["error"].startswith("malformed multipart body")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "Expected boundary" not in stderr and "boundary character" not in stderr, stderr


def request_or_none(url: str):
    try:
        return request(url)
    except OSError:
        return None


def test_the_api_answers_accepted_and_documents_it(tmp_path):
    rejecting_run(tmp_path / "run")
    with serving(tmp_path / "run") as url:
        status, answer = request(f"{url}/api/predict", *multipart("file", "seven.png", image_bytes(seven())))
        assert status == 200
        assert answer["accepted"] is False and answer["label"] is None and answer["class"] == "not a digit"
        assert len(answer["probabilities"]) == 11 and len(answer["top_k"]) == 3
        status, reading = request(f"{url}/api/read", *multipart("file", "seven.png", image_bytes(seven())))
        assert status == 200 and reading["text"] == ""
        assert all(digit["accepted"] is False for digit in reading["digits"])
        status, explained = request(
            f"{url}/api/predict?explain=1", *multipart("file", "seven.png", image_bytes(seven()))
        )
        assert explained["evidence"]["predicted"] == 10  # why: the evidence for "not a digit"
        assert explained["evidence"]["captions"]["difference"].startswith("not a digit rather than ")
        _, schema = request(f"{url}/openapi.json")
    schemas = schema["components"]["schemas"]
    for name in ("Prediction", "DigitReading"):
        assert "accepted" in schemas[name]["required"]
        assert schemas[name]["properties"]["accepted"]["type"] == "boolean"
        assert {"type": "null"} in schemas[name]["properties"]["label"]["anyOf"]


def test_an_old_run_is_answered_accepted(server):
    status, answer = request(f"{server}/api/predict", *multipart("file", "seven.png", image_bytes(seven())))
    assert status == 200 and answer["accepted"] is True and answer["label"] == answer["top_k"][0]["label"]
