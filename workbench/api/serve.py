"""`python -m workbench serve [RUN ...]`: load the base model with the runs' adapters and serve the OpenAI API.

The same policy as the web UI (workbench/ui/serving.py): bound to 127.0.0.1 by default; an address other machines
reach needs an API key (or, said in so many words, `--insecure-no-auth`); without a key only requests addressed to
localhost are answered, so a web page cannot reach the server through DNS rebinding.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from workbench.errors import WorkbenchError

# Where `serve` reads its key when --api-key is not given (keys on a command line show in `ps`).
API_KEY_ENV = "WORKBENCH_SERVE_API_KEY"


class ExposureRefused(WorkbenchError):
    category = "config"


@dataclass(frozen=True)
class ServeOptions:
    runs: list[str]
    base: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    insecure_no_auth: bool = False
    max_waiting: int = 16
    max_batch: int = 1
    threads: int | None = None
    exit_with: int | None = None  # a pid: the server exits when that process ends (the app that started it)


def exposure_refusal(host: str, api_key: str | None, insecure_no_auth: bool) -> str | None:
    """Why serving on `host` is refused (other machines could use it without a key), or None."""
    from workbench.ui.guards import is_loopback_name

    if api_key or insecure_no_auth or is_loopback_name(host):
        return None
    return (
        f"--host {host} serves the model to other machines, which could then use it: set --api-key (or "
        f"{API_KEY_ENV}), or pass --insecure-no-auth to let anyone use it"
    )


def run(options: ServeOptions) -> int:
    """Load the model, then serve until interrupted."""
    refusal = exposure_refusal(options.host, options.api_key, options.insecure_no_auth)
    if refusal:
        raise ExposureRefused(refusal)
    if options.exit_with is not None:
        _exit_with(options.exit_with)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see STACK-NOTES, thread waiting
    import uvicorn
    from starlette.middleware import Middleware

    from workbench.api.engine import AdapterEngine
    from workbench.api.openai_server import create_app
    from workbench.runs.store import JobStore
    from workbench.ui.guards import LoopbackHostOnly

    store = JobStore()
    runs = [store.get(run_id).files for run_id in options.runs]
    base = options.base or (runs[0].read_config().model.name_or_path if runs else "smollm2-135m-instruct")
    engine = AdapterEngine(base, runs, threads=options.threads)
    guard = [] if options.api_key or options.insecure_no_auth else [Middleware(LoopbackHostOnly)]
    app = create_app(
        engine, api_key=options.api_key, max_batch=options.max_batch, waiting=options.max_waiting, middleware=guard
    )
    served = ", ".join(engine.names)
    sys.stderr.write(f"serving {served} at http://{options.host}:{options.port}/v1 (on {engine.device})\n")
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
    return 0


def _exit_with(pid: int) -> None:
    """End this process once `pid` has ended (checked every second by a daemon thread), whatever killed it."""
    import threading
    import time

    from workbench.runs import processes

    started = processes.created(pid)

    def watch() -> None:
        while processes.alive(pid, started):
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with").start()
