"""The REST API for runs, driven over plain HTTP as a script would: upload a dataset, submit a run, follow it,
read its metrics and log, download its adapter, stop, resume and delete — with the token, and refused without it."""

from __future__ import annotations

import io
import json
import time
import zipfile

import httpx
import pytest
import yaml

from tests.conftest import PRESETS, kill_workers
from tests.ui.browser import App

TOKEN = "api-token-for-tests"
QUICK = ["train.max_steps=2", "train.threads=1", "data.cutoff_len=64", "train.per_device_train_batch_size=2"]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_API_TOKEN", TOKEN)
        served = App(home).start()
    try:
        yield served
    finally:
        served.stop()
        kill_workers(home)


@pytest.mark.slow
def test_submit_follow_download_and_delete_a_run(app):
    api = httpx.Client(base_url=app.url + "/api", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300)

    # A dataset of the caller's own goes up first; the run config names it by the path the server gives back.
    upload = api.post(
        "/datasets", params={"filename": "mine.json"}, content=(PRESETS / "data/alpaca_en_demo.json").read_bytes()
    )
    assert upload.status_code == 201, upload.text
    config = yaml.safe_load((PRESETS / "sft-lora-identity.yaml").read_text())
    config["data"]["datasets"] = [{"path": upload.json()["path"], "max_samples": 8}]
    submitted = api.post("/runs", params={"set": QUICK}, json=config)
    assert submitted.status_code == 201, submitted.text
    run = submitted.json()
    assert run["state"] in ("queued", "starting", "running") and run["method"] == "lora"

    # A second run, posted as the preset's YAML text, waits in the queue behind the first: stop it, resume, stop.
    queued = api.post("/runs", params={"set": QUICK}, content=(PRESETS / "sft-lora-identity.yaml").read_bytes(),
                      headers={"Content-Type": "application/yaml"})  # fmt: skip
    assert queued.status_code == 201 and queued.json()["state"] == "queued", queued.text
    second = queued.json()["id"]
    assert api.post(f"/runs/{second}/stop").json()["state"] == "stopped"
    assert api.post(f"/runs/{second}/resume").json()["state"] in ("queued", "starting", "running")
    assert api.post(f"/runs/{second}/stop").json()["state"] in ("stopped", "running")

    assert {r["id"] for r in api.get("/runs").json()} == {run["id"], second}
    deadline = time.time() + 600
    while (state := api.get(f"/runs/{run['id']}").json())["state"] not in ("finished", "failed", "stopped"):
        assert time.time() < deadline
        time.sleep(1)
    assert state["state"] == "finished", state["error"]
    assert state["progress"]["step"] == 2 and state["artifact"] == "peft"
    metrics = api.get(f"/runs/{run['id']}/metrics").json()
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2]
    assert "train_loss" in api.get(f"/runs/{run['id']}/log").text
    assert len(api.get(f"/runs/{run['id']}/log", params={"lines": 2}).text.splitlines()) == 2
    assert "max_steps: 2" in api.get(f"/runs/{run['id']}/config").text

    download = api.get(f"/runs/{run['id']}/artifacts/adapter.zip")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert f"{run['id']}-adapter.zip" in download.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors", "loss.png"} <= set(names)

    # What does not fit the run's state is refused with a reason; a deleted run is gone.
    assert api.post(f"/runs/{run['id']}/stop").status_code == 409
    assert "only stopped or failed" in api.post(f"/runs/{run['id']}/resume").json()["detail"]
    while api.get(f"/runs/{second}").json()["state"] not in ("stopped", "failed", "finished"):
        assert time.time() < deadline
        time.sleep(1)
    for run_id in (run["id"], second):
        assert api.delete(f"/runs/{run_id}").status_code == 204
        assert api.get(f"/runs/{run_id}").status_code == 404
    assert api.get("/runs").json() == []


def test_invalid_configs_name_their_fields(app):
    api = httpx.Client(base_url=app.url + "/api", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    bad = api.post("/runs", json={"method": {"name": "lora", "r": -1}, "train": {"learning_rate": "fast"}})
    assert bad.status_code == 422
    fields = {p["field"] for p in bad.json()["detail"]}
    assert {"method.r", "train.learning_rate", "data"} <= fields, fields  # data is required
    # Only the server's own datasets: a path elsewhere is refused like one that does not exist.
    for path in ("/etc/passwd", "/no/such/file.json"):
        outside = api.post("/runs", json={"data": {"datasets": [{"path": path}]}})
        assert outside.status_code == 422 and outside.json()["detail"][0]["field"] == "data.datasets.0.path"
    assert api.post("/runs", content=b"model: [", headers={"Content-Type": "application/yaml"}).status_code == 422
    assert api.get("/runs/no-such-run").status_code == 404


def test_without_the_token_nothing_is_answered_but_the_docs(app):
    anonymous = httpx.Client(base_url=app.url + "/api", timeout=60)
    wrong = httpx.Client(base_url=app.url + "/api", headers={"Authorization": "Bearer guess"}, timeout=60)
    right = httpx.Client(base_url=app.url + "/api", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    refused = [
        lambda: anonymous.get("/runs"),
        lambda: wrong.post("/runs", json={}),
        lambda: anonymous.get("/runs/x/artifacts/adapter.zip"),
        lambda: wrong.post("/datasets", params={"filename": "a.json"}, content=b"[]"),
    ]
    took = []
    for i, attempt in enumerate(refused):
        began = time.monotonic()
        assert attempt().status_code == 401
        took.append(time.monotonic() - began)
        if i == 1:
            assert right.get("/runs").status_code == 200  # a success starts the count again
    # Guessing is slowed as the page's login is: 1 s, then 2 s, ...; after a success 1 s again.
    assert took[0] >= 0.9 and took[1] >= 1.8 and 0.9 <= took[2] < 1.8 and took[3] >= 1.8, took
    docs = anonymous.get("/docs")
    assert docs.status_code == 200 and "/api/openapi.json" in docs.text
    paths = anonymous.get("/openapi.json").json()["paths"]
    assert "/runs/{run_id}/artifacts/adapter.zip" in paths and "/runs" in paths
    assert right.get("/runs").status_code == 200


def test_the_ui_password_opens_the_api_too(tmp_path):
    served = App(tmp_path / "home", args=("--auth", "ada:lovelace")).start()
    try:
        ok = httpx.get(served.url + "/api/runs", auth=("ada", "lovelace"), timeout=60)
        refused = [httpx.get(served.url + "/api/runs", auth=("ada", "guess"), timeout=60),
                   httpx.get(served.url + "/api/runs", timeout=60)]  # fmt: skip
    finally:
        served.stop()
    assert ok.status_code == 200 and json.loads(ok.text) == []
    assert [r.status_code for r in refused] == [401, 401]
