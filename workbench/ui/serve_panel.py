"""The Chat tab's server panel: start and stop the OpenAI-compatible server (`python -m workbench serve`, in a
process of its own: `serve_process.py`) for chosen finished runs, and say how to call it (its URL, the models it
serves, a curl command and the OpenAI client's lines). What it says is in the page's language."""

from __future__ import annotations

import json
import os
from typing import Any

import gradio as gr

from workbench.api.serve import API_KEY_ENV
from workbench.errors import WorkbenchError
from workbench.ui import i18n, serve_process
from workbench.ui.i18n import Translator, _

DEFAULT_PORT = 8000


def build() -> dict[str, Any]:
    with gr.Accordion(_("OpenAI-compatible server"), open=False, elem_id="serve-panel"):
        gr.Markdown(
            _(
                "Serve finished runs' adapters on their base model through OpenAI's API (`python -m workbench "
                "serve`, in a process of its own): any OpenAI client can then use them. The runs must share one base "
                "model; a request's `model` picks the run (or the base). The server stops with this app."
            )
        )
        with gr.Row():
            # Choices come on page load, as the other run pickers' do.
            runs = gr.Dropdown([], multiselect=True, label=_("Runs to serve"), elem_id="serve-runs", scale=3)
            port = gr.Number(DEFAULT_PORT, precision=0, minimum=1024, maximum=65535, label=_("Port"),
                             elem_id="serve-port", scale=1)  # fmt: skip
            start = gr.Button(_("Start server"), variant="primary", elem_id="serve-start", scale=1)
            stop = gr.Button(_("Stop server"), elem_id="serve-stop", scale=1)
        status = gr.Markdown(elem_id="serve-status")
    return locals()


def wire(panel: dict[str, Any], language) -> None:
    """The panel's events; `language` is the page's."""
    inputs = [panel["runs"], panel["port"], language]
    panel["start"].click(start, inputs, panel["status"], api_visibility="private")
    panel["stop"].click(stop, language, panel["status"], api_visibility="private")


def start(runs: list[str] | None, port: float | None, language: str | None = None):
    """Start the server, say so, and once it answers, how to call it (a generator: two updates)."""
    t = i18n.translator(language)
    try:
        server = serve_process.start(list(runs or []), int(port or DEFAULT_PORT))
        yield t("Starting the server for {runs}: loading the model…", runs=", ".join(server.runs))
        models = serve_process.wait_ready(server)
    except WorkbenchError as err:
        yield f"**{t.error(err)}**"
        return
    yield describe(server, models, t)


def stop(language: str | None = None) -> str:
    t = i18n.translator(language)
    stopped = serve_process.stop()
    if stopped is None:
        return t("No server is running.")
    return t("Stopped the server at `{url}`.", url=stopped.url)


def status(language: str | None = None) -> str:
    """What the panel shows as a page opens: the running server, if any, and how to call it."""
    server = serve_process.current()
    if server is None:
        return ""
    import httpx

    try:
        models = [
            m["id"] for m in httpx.get(f"{server.url}/models", headers=_headers(server), timeout=2).json()["data"]
        ]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return i18n.translator(language)("A server for {runs} is starting at `{url}`.", runs=", ".join(server.runs),
                                         url=server.url)  # fmt: skip
    return describe(server, models, i18n.translator(language))


def _headers(server: serve_process.Server) -> dict[str, str]:
    key = os.environ.get(API_KEY_ENV)
    return {"Authorization": f"Bearer {key}"} if server.api_key and key else {}


def describe(server: serve_process.Server, models: list[str], t: Translator) -> str:
    """The running server in words, with a curl command and the OpenAI client's lines that call it."""
    model = server.runs[0] if server.runs else models[0]
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "Who are you?"}], "max_tokens": 64})
    auth = f' -H "Authorization: Bearer ${API_KEY_ENV}"' if server.api_key else ""
    key = f'os.environ["{API_KEY_ENV}"]' if server.api_key else '"none"'
    imports = "import os\n\n" if server.api_key else ""
    where = (
        t("It listens on every interface; each request needs the key in `{variable}`.", variable=API_KEY_ENV)
        if server.api_key
        else t("It listens on 127.0.0.1: this machine only.")
    )
    return "\n\n".join(
        [
            t("**Serving** at `{url}`: {models}.", url=server.url, models=", ".join(f"`{m}`" for m in models)),
            where,
            f'```bash\ncurl -s {server.url}/chat/completions -H "Content-Type: application/json"{auth} \\\n'
            f"  -d '{body}'\n```",
            f"```python\n{imports}from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{server.url}", api_key={key})\n'
            f"reply = client.chat.completions.create(\n"
            f'    model="{model}", messages=[{{"role": "user", "content": "Who are you?"}}], max_tokens=64\n)\n'
            f"print(reply.choices[0].message.content)\n```",
        ]
    )
