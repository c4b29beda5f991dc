"""Ground truth against real servers: every answer's id, POST .../feedback and its answers,
the accuracy and error figures on /metrics, and feedback sent on to the process (another
server, or another worker of the same one) that answered the prediction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
import requests

from tests.serving import server as srv
from tests.serving.conftest import Artifacts
from tests.serving.grpc_v2 import infer, to_proto
from tests.support.metrics import parse, total

FEEDBACK = "/v2/models/{}/feedback"


def v2_body(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    tensor = {"name": "x", "shape": list(rows.shape), "datatype": "FP64",
              "data": rows.ravel().tolist()}  # fmt: skip
    return {"inputs": [tensor], **extra}


def predict(server: srv.Server, model: str, rows: np.ndarray, **extra: Any) -> tuple[str, list]:
    """(id, predictions) of one V2 JSON request."""
    answer = server.post(f"/v2/models/{model}/infer", v2_body(rows, **extra))
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    return doc["id"], doc["outputs"][0]["data"]


def send(server: srv.Server, model: str, *items: tuple[str, Any]) -> requests.Response:
    feedback = [{"id": id, "truth": truth} for id, truth in items]
    return server.post(FEEDBACK.format(model), {"feedback": feedback})


def figure(url: str, name: str, **labels: str) -> float:
    return total(parse(requests.get(url + "/metrics", timeout=10).text), name, **labels)


def outcome(server: srv.Server, name: str) -> float:
    return figure(server.url, "coalmine_feedback_total", outcome=name)


def json_header(answer: requests.Response) -> Any:
    """The JSON part of a response with binary outputs after it."""
    assert answer.status_code == 200, answer.text
    return orjson.loads(answer.content[: int(answer.headers["inference-header-content-length"])])


def port_of(id: str) -> int:
    return int(id.rpartition(":")[2])


def test_every_answer_carries_an_id_the_clients_or_one_naming_the_process(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    rows = artifacts.x[:2]
    given, _ = predict(lr_server, "lr", rows, id="client-1")
    generated, _ = predict(lr_server, "lr", rows)
    again, _ = predict(lr_server, "lr", rows)
    assert given == "client-1"
    assert "@127.0.0.1:" in generated
    assert port_of(generated) not in (lr_server.port, lr_server.grpc_port)
    assert generated != again
    assert generated.partition("@")[2] == again.partition("@")[2]

    binary = v2_body(rows, parameters={"binary_data_output": True})
    answer = lr_server.post("/v2/models/lr/infer", binary)
    assert "@127.0.0.1:" in json_header(answer)["id"]
    answer = lr_server.post("/v2/models/lr/infer", {**binary, "id": "client-2"})
    assert json_header(answer)["id"] == "client-2"

    v1 = lr_server.post("/v1/models/lr:predict", {"instances": rows.tolist()}).json()
    assert "@127.0.0.1:" in v1["id"]
    v1 = lr_server.post("/v1/models/lr:predict", {"instances": rows.tolist(), "id": "c3"}).json()
    assert v1["id"] == "c3"

    request = to_proto(v2_body(rows), "lr")
    assert "@127.0.0.1:" in infer(lr_server, request).id
    request.id = "client-4"
    assert infer(lr_server, request).id == "client-4"


def test_feedback_counts_matched_rows_and_correct_ones(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    rows = artifacts.x[20:28]
    id, predicted = predict(lr_server, "lr", rows)
    truth = list(predicted)
    truth[0], truth[3] = 1 - truth[0], 1 - truth[3]  # two rows the model got wrong
    labels = {"model": "lr", "version": "7", "variant": "canary"}
    before_rows = figure(lr_server.url, "coalmine_feedback_rows_total", **labels)
    before_correct = figure(lr_server.url, "coalmine_feedback_correct_rows_total", **labels)
    before_matched = outcome(lr_server, "matched")

    answer = send(lr_server, "lr", (id, truth))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"matched": 1, "duplicate": 0, "late": 0, "unknown": 0,
                             "unknownIds": []}  # fmt: skip
    assert figure(lr_server.url, "coalmine_feedback_rows_total", **labels) == before_rows + 8
    assert figure(lr_server.url, "coalmine_feedback_correct_rows_total", **labels) == (
        before_correct + 6
    )
    assert outcome(lr_server, "matched") == before_matched + 1

    again = send(lr_server, "lr", (id, truth))  # resending is safe: nothing counted twice
    assert again.status_code == 200
    assert (again.json()["matched"], again.json()["duplicate"]) == (0, 1)
    assert figure(lr_server.url, "coalmine_feedback_rows_total", **labels) == before_rows + 8


def test_a_client_id_and_the_versioned_path_work_and_labels_match_as_text(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    rows = artifacts.x[30:33]
    id = f"client-{uuid.uuid4()}"
    answer = lr_server.post("/v1/models/lr:predict", {"instances": rows.tolist(), "id": id})
    predicted = answer.json()["predictions"]
    before = figure(lr_server.url, "coalmine_feedback_correct_rows_total")
    truth = [str(label) for label in predicted]  # "1" is class 1
    answer = lr_server.post(
        "/v2/models/lr/versions/7/feedback", {"feedback": [{"id": id, "truth": truth}]}
    )
    assert answer.json()["matched"] == 1
    assert figure(lr_server.url, "coalmine_feedback_correct_rows_total") == before + 3


def test_a_regressors_abs_error_is_a_histogram(reg_server: srv.Server) -> None:
    rows = np.random.default_rng(3).normal(size=(10, 4))
    id, predicted = predict(reg_server, "reg", rows)
    series = parse(reg_server.get("/metrics").text)
    count = total(series, "coalmine_feedback_abs_error_count")
    low = total(series, "coalmine_feedback_abs_error_bucket", le="0.2")
    high = total(series, "coalmine_feedback_abs_error_bucket", le="0.5")
    error_sum = total(series, "coalmine_feedback_abs_error_sum")

    answer = send(reg_server, "reg", (id, [p + 0.25 for p in predicted]))
    assert answer.status_code == 200, answer.text
    series = parse(reg_server.get("/metrics").text)
    assert total(series, "coalmine_feedback_abs_error_count") == count + 10
    assert total(series, "coalmine_feedback_abs_error_bucket", le="0.2") == low
    assert total(series, "coalmine_feedback_abs_error_bucket", le="0.5") == high + 10
    assert total(series, "coalmine_feedback_abs_error_sum") == pytest.approx(error_sum + 2.5)
    assert total(series, "coalmine_feedback_correct_rows_total") == 0  # classifiers only


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"feedback": {"id": "x"}}', '{"feedback"'),
        (b'{"feedback": [{"truth": 1}]}', "feedback[1].id"),
        (b'{"feedback": [{"id": "x", "truth": {"a": 1}}]}', "feedback[1].truth"),
        (b'{"feedback": [{"id": "x", "truth": [1, 0]}]}', "feedback[1].truth has 2 values"),
    ],
    ids=["not-json", "not-a-list", "no-id", "truth-object", "wrong-length"],
)
def test_a_bad_body_is_400_naming_the_item_and_applies_nothing(
    lr_server: srv.Server, artifacts: Artifacts, body: bytes, message: str
) -> None:
    id, predicted = predict(lr_server, "lr", artifacts.x[40:41])
    good = b'{"id": "%s", "truth": %d}' % (id.encode(), predicted[0])
    if body.startswith(b'{"feedback": ['):  # the bad item follows a good one
        body = b'{"feedback": [' + good + b", " + body[len(b'{"feedback": [') :]
    body = body.replace(b'"x"', b'"%s"' % id.encode())
    invalid = outcome(lr_server, "invalid")
    answer = lr_server.post(FEEDBACK.format("lr"), data=body)
    assert answer.status_code == 400
    assert message in answer.json()["error"]
    assert outcome(lr_server, "invalid") > invalid
    # Nothing was applied: the good item still finds its prediction waiting.
    assert send(lr_server, "lr", (id, predicted)).json()["matched"] == 1


def test_unknown_ids_are_404_while_the_known_ones_are_applied(
    lr_server: srv.Server, artifacts: Artifacts
) -> None:
    id, predicted = predict(lr_server, "lr", artifacts.x[50:52])
    answer = send(lr_server, "lr", (id, predicted), ("nobody-asked", 1), ("x@10.0.0.1:99", 0))
    assert answer.status_code == 404
    assert answer.json() == {"matched": 1, "duplicate": 0, "late": 0, "unknown": 2,
                             "unknownIds": ["nobody-asked", "x@10.0.0.1:99"]}  # fmt: skip
    assert send(lr_server, "lr", (id, predicted)).json()["duplicate"] == 1
    assert lr_server.post(FEEDBACK.format("other"), {"feedback": []}).status_code == 404
    assert lr_server.get(FEEDBACK.format("lr")).status_code == 405


def test_predictions_beyond_the_row_bound_are_late(artifacts: Artifacts) -> None:
    server = srv.start(
        ["--name", "lr", "--uri", str(artifacts.lr_skops), "--feedback-max-rows", "4"], grpc=False
    )
    try:
        first, p1 = predict(server, "lr", artifacts.x[:3])
        second, p2 = predict(server, "lr", artifacts.x[3:6])  # 6 rows > 4: the first goes
        assert figure(server.url, "coalmine_feedback_stored_predictions") == 1
        answer = send(server, "lr", (first, p1), (second, p2))
        assert answer.status_code == 404
        assert answer.json()["late"] == 1
        assert answer.json()["matched"] == 1
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pair(artifacts: Artifacts) -> Iterator[tuple[srv.Server, srv.Server]]:
    """Two servers of the same model, as two pods behind one Service."""
    a = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops)], {"COALMINE_VARIANT": "a"})
    b = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops)], {"COALMINE_VARIANT": "b"})
    yield a, b
    a.stop()
    b.stop()


def test_feedback_reaching_another_server_is_forwarded_to_the_one_that_answered(
    pair: tuple[srv.Server, srv.Server], artifacts: Artifacts
) -> None:
    a, b = pair
    from_a, on_a = predict(a, "lr", artifacts.x[:4])
    from_b, on_b = predict(b, "lr", artifacts.x[4:6])
    grpc_a = infer(a, to_proto(v2_body(artifacts.x[6:7]), "lr"))
    assert port_of(grpc_a.id) == port_of(from_a)  # gRPC ids name the same process
    answer = send(b, "lr", (from_a, on_a), (from_b, on_b), (grpc_a.id, 0), (from_a, on_a))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"matched": 3, "duplicate": 1, "late": 0, "unknown": 0,
                             "unknownIds": []}  # fmt: skip
    assert figure(a.url, "coalmine_feedback_rows_total", variant="a") == 5
    assert figure(a.url, "coalmine_feedback_total", outcome="matched") == 2
    assert figure(a.url, "coalmine_feedback_total", outcome="duplicate") == 1
    assert figure(b.url, "coalmine_feedback_total", outcome="forwarded") == 3
    assert figure(b.url, "coalmine_feedback_rows_total", variant="b") == 2


def test_a_forwarded_item_of_the_wrong_length_is_refused_naming_the_clients_index(
    pair: tuple[srv.Server, srv.Server], artifacts: Artifacts
) -> None:
    a, b = pair
    id, _ = predict(a, "lr", artifacts.x[:2])
    answer = send(b, "lr", ("unheard-of", 1), (id, [0]))
    assert answer.status_code == 400
    assert "feedback[1].truth has 1 values for a prediction of 2 rows" in answer.json()["error"]
    assert send(b, "lr", (id, [0, 0])).json()["matched"] == 1


def test_a_process_that_is_gone_counts_its_items_unknown(
    pair: tuple[srv.Server, srv.Server],
) -> None:
    _, b = pair
    gone = f"dead-1@127.0.0.1:{srv.free_port()}"
    answer = send(b, "lr", (gone, 1))
    assert answer.status_code == 404
    assert answer.json()["unknownIds"] == [gone]
    assert figure(b.url, "coalmine_feedback_total", outcome="unreachable") >= 1


def test_workers_of_one_server_forward_feedback_to_each_other(artifacts: Artifacts) -> None:
    server = srv.start(["--name", "lr", "--uri", str(artifacts.lr_skops), "--workers", "2"])
    try:
        by_port: dict[int, list[tuple[str, list]]] = {}

        def both_answered() -> bool:
            with requests.Session() as fresh:  # a new connection may reach the other worker
                doc = fresh.post(server.url + "/v2/models/lr/infer",
                                 json=v2_body(artifacts.x[:1]), timeout=10).json()  # fmt: skip
            by_port.setdefault(port_of(doc["id"]), []).append(
                (doc["id"], doc["outputs"][0]["data"])
            )
            return len(by_port) == 2

        srv.eventually(both_answered, "both workers answered a prediction")
        items = [item for answered in by_port.values() for item in answered]
        answer = send(server, "lr", *items)  # one connection: one worker receives them all
        assert answer.status_code == 200, answer.text
        assert answer.json()["matched"] == len(items)
        for port, answered in by_port.items():  # each worker's own port shows its own figures
            url = f"http://127.0.0.1:{port}"
            assert figure(url, "coalmine_feedback_total", outcome="matched") == len(answered)
    finally:
        server.stop()
