"""The page as built: its events are its own (none is a public API), and it names no run until a page opens."""

from __future__ import annotations

import json

from tests.conftest import PRESETS
from workbench.config import load_config
from workbench.runs.queue import RunQueue
from workbench.runs.submission import freeze
from workbench.ui.app import build_app


def test_every_event_is_private_and_the_built_page_names_no_run():
    store = RunQueue()
    job = store.submit(freeze(load_config(PRESETS / "sft-lora-identity.yaml")), start=False)
    store.cancel(job.id)
    app = build_app()
    assert [fn.name for fn in app.fns.values() if fn.api_visibility != "private"] == []
    assert job.id not in json.dumps(app.get_config_file(), default=str)
