"""Served to other people, as `python app.py --auth user:password` starts it: the page before login tells nothing,
a logged-in user reads no server file through any event, password guesses slow down; without a password the
workbench refuses to be served publicly and answers only requests addressed to localhost."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import PRESETS, REPO, kill_workers
from tests.ui.browser import App, free_port
from tests.ui.protocol import call, login, page_config
from workbench.config import load_config
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze

USER, PASSWORD = "ada", "correct horse battery"
# Components through which a path could come in: file inputs, and fields that name a file, path or dataset.
PATH_LIKE = re.compile(r"file|path|dataset|sample", re.IGNORECASE)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A workbench with one run (queued, then stopped: nothing trains), served with a password."""
    home = tmp_path_factory.mktemp("served") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        store = RunQueue()
        job = store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml")), start=False)
        store.cancel(job.id)
    app = App(home, args=("--auth", f"{USER}:{PASSWORD}")).start()
    try:
        yield app, job.id
    finally:
        app.stop()
        kill_workers(home)


def test_the_page_before_login_names_no_run_and_no_server_path(served):
    app, run_id = served
    anonymous = httpx.Client(base_url=app.url, timeout=30)
    page = anonymous.get("/")
    assert page.status_code == 200
    # What the login page loads, and the addresses that describe an app.
    assets = [path.removeprefix(".") for path in re.findall(r'(?:src|href)="(\./[^"]+|/[^/"][^"]*)"', page.text)]
    described = ["/config", "/gradio_api/info", "/gradio_api/openapi.json", "/gradio_api/runs", "/manifest.json"]
    paths = [*described, "/gradio_api/startup-events", "/theme.css", "/gradio_api/app_id", "/gradio_api/user", *assets]
    answers = {path: anonymous.get(path) for path in paths}
    assert answers["/config"].status_code == 401 and answers["/gradio_api/info"].status_code == 401
    for path, answer in [("/", page), *answers.items()]:
        for secret in (run_id, str(app.home), str(REPO)):
            assert secret not in answer.text, f"{path} shows {secret}"

    # Logged in, the Runs tab lists the run: the checks above could have seen it.
    client = login(app.url, USER, PASSWORD)
    ticks = [d for d in page_config(client)["dependencies"] if any(t[1] == "tick" for t in d["targets"])]
    listed = [call(client, d["id"], [None] * len(d["inputs"]), trigger_id=d["targets"][0][0])[-1] for d in ticks]
    assert run_id in json.dumps(listed)


def test_the_page_events_are_no_public_api(served):
    from gradio_client import Client

    app, _ = served
    assert Client(app.url, auth=(USER, PASSWORD), verbose=False).view_api(return_format="dict", print_info=False) == {
        "named_endpoints": {},
        "unnamed_endpoints": {},
    }


def test_no_event_reads_a_server_file_for_a_logged_in_user(served, tmp_path):
    from gradio_client import Client

    app, _ = served
    marker = f"not-for-you-{uuid.uuid4().hex}"
    secret_json = tmp_path / "secret.json"
    secret_json.write_text(json.dumps([{"instruction": marker, "output": marker}]), encoding="utf-8")
    secret_csv = tmp_path / "secret.csv"
    secret_csv.write_text(f"instruction,output\n{marker},{marker}\n", encoding="utf-8")
    existing = [secret_json, secret_csv, Path("/etc/passwd")]
    others = [tmp_path / "missing.json", tmp_path]  # missing, and a folder
    passwd_line = Path("/etc/passwd").read_text().splitlines()[0]

    outcomes: dict[tuple[str, str], str] = {}  # (endpoint, path given) -> what came back, the path masked
    # Every named endpoint that takes a path, through the client library...
    client = Client(app.url, auth=(USER, PASSWORD), verbose=False)
    for name, endpoint in client.view_api(return_format="dict", print_info=False)["named_endpoints"].items():
        params = endpoint["parameters"]
        if not any(PATH_LIKE.search(p["label"]) or "filepath" in json.dumps(p["type"]) for p in params):
            continue
        for probe in [*existing, *others]:
            values = [str(probe) if PATH_LIKE.search(p["label"]) else p["parameter_default"] for p in params]
            try:
                result = json.dumps(client.predict(*values, api_name=name), default=str)
            except Exception as err:  # noqa: BLE001  a refusal is an answer too
                result = f"error: {err}"
            outcomes[name, str(probe)] = result.replace(str(probe), "<path>")

    # ...and every event of the page whose inputs could carry a path, by index as the browser calls it.
    session = login(app.url, USER, PASSWORD)
    config = page_config(session)
    components = {c["id"]: c for c in config["components"]}
    called = 0
    for dependency in config["dependencies"]:
        inputs = [components[i] for i in dependency["inputs"]]
        if not any(_path_like(c) for c in inputs):
            continue
        called += 1
        for probe in [*existing, *others]:
            data = [_value(c, probe) if _path_like(c) else c["props"].get("value") for c in inputs]
            messages = call(session, dependency["id"], data, trigger_id=dependency["targets"][0][0])
            outcomes[f"#{dependency['id']}", str(probe)] = _outcome(messages).replace(str(probe), "<path>")
    assert called >= 2  # the upload and the dataset picker at least

    for (event, probe), outcome in outcomes.items():
        assert marker not in outcome, f"{event} showed {probe}"
        assert passwd_line not in outcome, f"{event} showed /etc/passwd"
    # A refusal tells nothing: a file that exists reads the same as one that does not, or a folder.
    for event in {event for event, _ in outcomes}:
        assert len({outcomes[event, str(probe)] for probe in [*existing, *others]}) == 1, event


def test_failed_logins_slow_down_and_a_right_one_still_works(served):
    app, _ = served
    client = httpx.Client(base_url=app.url, timeout=120)
    took = []
    for _ in range(3):
        began = time.monotonic()
        answer = client.post("/login", data={"username": USER, "password": "guess"})
        took.append(time.monotonic() - began)
        assert answer.status_code == 400
    assert took[0] >= 0.9 and took[1] >= took[0] + 0.8 and took[2] >= took[1] + 1.5, took
    began = time.monotonic()
    assert client.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 200
    assert time.monotonic() - began < took[2]
    # Counted per client and cleared by the success: a wrong guess now waits a second again.
    began = time.monotonic()
    assert client.post("/login", data={"username": USER, "password": "guess"}).status_code == 400
    assert time.monotonic() - began < took[1]


@pytest.mark.parametrize("public", [["--host", "0.0.0.0"], ["--share"]])
def test_a_public_server_without_a_password_is_refused(public, tmp_path):
    command = [sys.executable, "app.py", "--port", str(free_port()), *public]
    env = {"WORKBENCH_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    began = time.monotonic()
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "--auth user:password" in out.stderr and "--insecure-no-auth" in out.stderr
    assert time.monotonic() - began < 10  # refused at once: nothing is started
    assert not (tmp_path / "home").exists()


def test_insecure_no_auth_serves_any_host(tmp_path):
    app = App(tmp_path / "home", args=("--host", "0.0.0.0", "--insecure-no-auth")).start()
    try:
        answer = httpx.get(app.url, headers={"Host": f"workbench.lan:{app.port}"}, timeout=30)
    finally:
        app.stop()
    assert answer.status_code == 200 and "Workbench" in answer.text


def test_without_a_password_only_requests_to_localhost_are_answered(tmp_path):
    app = App(tmp_path / "home").start()
    try:
        evil = {"Host": f"evil.example:{app.port}"}
        refused = [httpx.get(app.url + path, headers=evil, timeout=30) for path in ("/", "/config")]
        refused.append(httpx.post(app.url + "/gradio_api/queue/join", headers=evil, json={}, timeout=30))
        answered = [
            httpx.get(app.url + "/config", headers={"Host": host}, timeout=30)
            for host in (f"localhost:{app.port}", f"127.0.0.1:{app.port}", f"[::1]:{app.port}", "localhost")
        ]
    finally:
        app.stop()
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert all("Workbench" not in r.text and "components" not in r.text for r in refused)
    assert [r.status_code for r in answered] == [200] * 4


def _path_like(component: dict) -> bool:
    props = component["props"]
    if component["type"] in ("file", "uploadbutton"):
        return True
    return component["type"] in ("textbox", "dropdown", "code") and any(
        PATH_LIKE.search(str(props.get(key) or "")) for key in ("label", "elem_id")
    )


def _value(component: dict, probe: Path):
    if component["type"] in ("file", "uploadbutton"):
        return {"path": str(probe), "orig_name": probe.name, "meta": {"_type": "gradio.FileData"}}
    return str(probe)


def _outcome(messages: list[dict]) -> str:
    """What an event answered, without timings and ids: its data, or its error."""
    last = messages[-1]
    output = last.get("output") or {}
    if last.get("success"):
        return json.dumps(output.get("data"), default=str)
    return "error: " + str(output.get("error") or last)
