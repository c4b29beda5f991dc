"""KServe V1 over real HTTP: the spec's ``instances`` / ``predictions`` shapes."""

from __future__ import annotations

from tests.serving import server as srv
from tests.serving.conftest import Artifacts


def test_model_status(lr_server: srv.Server) -> None:
    response = lr_server.get("/v1/models/lr")
    assert response.status_code == 200
    assert response.json() == {"name": "lr", "ready": True}


def test_list_models(lr_server: srv.Server) -> None:
    assert lr_server.get("/v1/models").json() == {"models": ["lr"]}


def test_predict_instances(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[10:14]
    response = lr_server.post("/v1/models/lr:predict", {"instances": rows.tolist()})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == artifacts.lr.predict(rows).tolist()


def test_predict_inputs_alias(lr_server: srv.Server, artifacts: Artifacts) -> None:
    rows = artifacts.x[:1]
    body = lr_server.post("/v1/models/lr:predict", {"inputs": rows.tolist()}).json()
    assert body["predictions"] == artifacts.lr.predict(rows).tolist()


def test_root_liveness(lr_server: srv.Server) -> None:
    assert lr_server.get("/").json() == {"status": "alive"}
