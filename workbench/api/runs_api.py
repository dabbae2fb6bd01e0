"""The REST API for runs, mounted at `/api` beside the web UI in the same process: submit a run config (JSON or
YAML), list runs, read one run's state, metrics and log, stop, resume, delete, download its adapter. OpenAPI docs
at `/api/docs`.

It is the designed public API (the page's own events are private): every action goes through the same queue and
the same `submission.submit` as the UI and the CLI. Datasets are read under the server's one rule
(`workbench.access`): shipped samples, datasets stored here, and files uploaded through `POST /api/datasets`.

Who may call it: with a token (`WORKBENCH_API_TOKEN`), `Authorization: Bearer <token>`; with the UI's password,
HTTP Basic with that user and password too. With neither, the API is as open as the page: served to localhost
only (the UI's Host guard covers these routes too), or to anyone with `--insecure-no-auth`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from workbench import access, models
from workbench.api.throttle import FailureThrottle
from workbench.config import apply_overrides, parse_config
from workbench.errors import ConfigError, FieldProblem, WorkbenchError
from workbench.runs.store import Job, JobError

TOKEN_ENV = "WORKBENCH_API_TOKEN"
Heavy = Callable[..., Any]  # runs a function where torch may be imported: the UI's helper process
Overrides = Annotated[
    tuple[str, ...], Query(alias="set", description="override a field, as the CLI's --set: train.max_steps=4")
]


def create_api(
    *, token: str | None = None, password: Callable[[str, str], bool] | None = None, heavy: Heavy | None = None
) -> FastAPI:
    """The API app. `token` and `password` (the UI's check) are the credentials it accepts; with neither it takes
    every request. `heavy(fn, *args)` runs what imports torch (submitting); by default the UI's helper process."""
    token = token or os.environ.get(TOKEN_ENV) or None
    throttle = FailureThrottle()
    wanted = " or ".join(
        ([f"Authorization: Bearer <{TOKEN_ENV}>"] if token else [])
        + (["the page's user:password"] if password else [])
    )

    def accepted(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token is not None:
            return hmac.compare_digest(given.encode(), token.encode())
        return scheme.lower() == "basic" and password is not None and _basic_ok(given, password)

    async def authorized(request: Request) -> None:
        if token is None and password is None:
            return
        if not await throttle.check(request, accepted):
            raise HTTPException(401, f"send {wanted}", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(
        title="Workbench API",
        description="Runs: submit, follow, stop, resume, delete, download.",
        dependencies=[Depends(authorized)],
        docs_url="/docs",
        redoc_url=None,
    )

    @app.exception_handler(ConfigError)
    async def invalid_config(request: Request, err: ConfigError) -> JSONResponse:
        problems = [{"field": p.field, "message": p.message} for p in err.problems]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(WorkbenchError)
    async def refused(request: Request, err: WorkbenchError) -> JSONResponse:
        return JSONResponse({"detail": str(err), "category": err.category}, status_code=409)

    @app.post("/runs", status_code=201, summary="Submit a run config (JSON, or YAML with a YAML content type)")
    async def submit_run(request: Request, overrides: Overrides = ()) -> Any:
        raw = _parse_body(await request.body(), request.headers.get("content-type", ""))
        config = parse_config(_with_datasets_resolved(apply_overrides(raw, list(overrides))))
        for i, spec in enumerate(config.data.datasets):
            try:
                access.readable_dataset(spec.path)
            except access.AccessError as err:
                raise ConfigError([FieldProblem(f"data.datasets.{i}.path", str(err))]) from None
        warnings: list[str] = []
        job = await run_in_threadpool(_submit, config, heavy, warnings)
        return {**_summary(job), "warnings": warnings}

    @app.get("/runs", summary="List runs, newest first")
    def list_runs() -> list[dict[str, Any]]:
        from workbench.runs.queue import RunQueue

        return [_summary(job) for job in RunQueue().reconcile()]

    @app.get("/runs/{run_id}", summary="A run's state, error and progress")
    def read_run(run_id: str) -> dict[str, Any]:
        return _summary(_job(run_id))

    @app.get("/runs/{run_id}/config", summary="The run's frozen config, as YAML", response_class=PlainTextResponse)
    def read_config(run_id: str) -> str:
        return _job(run_id).config

    @app.get("/runs/{run_id}/metrics", summary="The logged metrics, one record per logging step")
    def read_metrics(run_id: str) -> list[dict[str, Any]]:
        return _job(run_id).files.read_metrics()

    @app.get(
        "/runs/{run_id}/log", summary="The worker's log (its last `lines`, or all)", response_class=PlainTextResponse
    )
    def read_log(run_id: str, lines: Annotated[int, Query(ge=0, description="0: all")] = 0) -> str:
        files = _job(run_id).files
        if lines:
            return files.log_tail(lines)
        return files.log.read_text(encoding="utf-8", errors="replace") if files.log.is_file() else ""

    @app.post("/runs/{run_id}/stop", summary="Stop a queued or running run (a running one saves a checkpoint)")
    def stop_run(run_id: str) -> dict[str, Any]:
        from workbench.runs.queue import RunQueue

        _job(run_id)
        return _summary(RunQueue().cancel(run_id))

    @app.post("/runs/{run_id}/resume", summary="Queue a stopped or failed run again, from its last checkpoint")
    def resume_run(run_id: str) -> dict[str, Any]:
        from workbench.runs.queue import RunQueue

        _job(run_id)
        queue = RunQueue()
        queue.reconcile()
        return _summary(queue.resume(run_id))

    @app.delete("/runs/{run_id}", status_code=204, summary="Delete a run that is not training, with its folder")
    def delete_run(run_id: str) -> Response:
        from workbench.runs.queue import RunQueue

        _job(run_id)
        RunQueue().delete(run_id)
        return Response(status_code=204)

    @app.get("/runs/{run_id}/artifacts/adapter.zip", summary="The finished run's adapter (or model) as a zip")
    def download_adapter(run_id: str) -> FileResponse:
        from workbench.export import adapter_zip_name, zip_adapter

        files = _job(run_id).files
        if files.artifact_kind() is None:
            raise HTTPException(409, f"run {run_id} has no adapter yet: it has not finished")
        path = zip_adapter(files)
        return FileResponse(path, media_type="application/zip", filename=adapter_zip_name(files))

    @app.post("/datasets", status_code=201, summary="Upload a dataset file; its `path` goes in data.datasets")
    async def upload_dataset(request: Request, filename: Annotated[str, Query(description="e.g. mine.jsonl")]) -> Any:
        name = Path(filename).name
        if Path(name).suffix.lower() not in access.DATASET_SUFFIXES or name == "dataset_info.json":
            raise HTTPException(422, f"filename: a dataset is a {', '.join(access.DATASET_SUFFIXES)} file")
        body = await request.body()
        return {"path": str(await run_in_threadpool(_store_upload, name, body))}

    return app


def _submit(config: Any, heavy: Heavy | None, warnings: list[str]) -> Job:
    from workbench.runs import preflight

    if heavy is None:
        from workbench.ui import background

        heavy = background.call
    # As the Train tab does: the device is asked of the helper process, and submitting (which reads every row of
    # the data) happens there, so this process never imports torch or holds a dataset.
    folder = models.local_folder(config.model.name_or_path)
    device = heavy(preflight.method_report, config, folder).device if folder else heavy(preflight.this_device)
    job, found = heavy(_submit_collecting, config, device, dict(os.environ))
    warnings.extend(found)
    return job


def _submit_collecting(config: Any, device: str, env: dict[str, str]) -> tuple[Job, list[str]]:
    from workbench.runs.submission import submit

    found: list[str] = []
    return submit(config, device=device, env=env, warn=found.append), found


def _store_upload(name: str, body: bytes) -> Path:
    from workbench.data.reading import max_dataset_bytes
    from workbench.data.store import store_dataset

    if len(body) > max_dataset_bytes():
        raise HTTPException(413, f"the file is larger than {max_dataset_bytes() // 2**20} MB")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(body)
        return store_dataset(path).path


def _parse_body(body: bytes, content_type: str) -> dict[str, Any]:
    """A run config from JSON, or from YAML when the content type says yaml (YAML reads JSON too)."""
    try:
        raw = yaml.safe_load(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, yaml.YAMLError) as err:
        kind = "YAML" if "yaml" in content_type else "JSON"
        raise ConfigError([FieldProblem("", f"the body is not valid {kind}: {err}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError([FieldProblem("", "the body must be a run config: a mapping of sections")])
    return raw


def _with_datasets_resolved(raw: dict[str, Any]) -> dict[str, Any]:
    # A relative dataset path means a shipped sample, as in the presets (data/identity.json), so a preset's YAML
    # can be posted as it is.
    for spec in (raw.get("data") or {}).get("datasets") or []:
        if isinstance(spec, dict) and isinstance(spec.get("path"), str) and not Path(spec["path"]).is_absolute():
            spec["path"] = str(models.PRESETS / spec["path"])
    return raw


def _job(run_id: str) -> Job:
    from workbench.runs.queue import RunQueue

    queue = RunQueue()
    queue.reconcile()
    try:
        return queue.get(run_id)
    except JobError:
        raise HTTPException(404, f"no run with id {run_id!r}") from None


def _summary(job: Job) -> dict[str, Any]:
    files = job.files
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state,
        "error": job.error,
        "error_category": job.error_category,
        "stage": job.stage,
        "method": job.method,
        "model": job.model,
        "parent": job.parent,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": files.read_status(),
        "artifact": files.artifact_kind(),
        "resumable": job.resumable,
    }


def _basic_ok(given: str, password: Callable[[str, str], bool]) -> bool:
    try:
        user, sep, secret = base64.b64decode(given.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return bool(sep) and password(user, secret)
