"""The Chat tab: talk to a base model with a finished run's adapter, or to both side by side.

The model lives in the chat service's own process; this tab only sends messages and streams text back. What the
tab says is in the page's language (`workbench/ui/i18n.py`); the replies are the model's own.
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from workbench import models, ratings
from workbench.chat_service import ChatService, plain_messages
from workbench.errors import WorkbenchError
from workbench.runs.store import JobStore
from workbench.ui import i18n, serve_panel
from workbench.ui.i18n import EN, Translator, _

NO_ADAPTER = "none (base model only)"
_service = ChatService()


def adapter_choices(t: Translator = EN) -> list[tuple[str, str]]:
    # Reward models score replies rather than write them: they are not offered here.
    finished = [job for job in JobStore().list() if job.state == "finished" and job.stage != "reward"]
    return [(t(NO_ADAPTER), "")] + [(f"{job.id} · {job.name or job.method}", job.id) for job in finished]


def build() -> dict[str, Any]:
    with gr.Row():
        base = gr.Dropdown(
            list(models.bundled_models()),
            value=next(iter(models.bundled_models())),
            allow_custom_value=True,
            label=_("Base model"),
            elem_id="chat-base",
        )
        # The finished runs come on page load (`adapters`): the page served before login names no run.
        adapter = gr.Dropdown(
            [(_(NO_ADAPTER), "")], value="", label=_("Adapter (a finished run)"), elem_id="chat-adapter"
        )
        refresh = gr.Button(_("↻ runs"), scale=0)
        side_by_side = gr.Checkbox(label=_("Side by side: base and tuned"), elem_id="chat-side-by-side")
    with gr.Row():
        tuned_bot = gr.Chatbot(label=_("Tuned model"), height=380, elem_id="chat-tuned")
        base_bot = gr.Chatbot(label=_("Base model"), height=380, visible=False, elem_id="chat-base-bot")
    with gr.Row():
        prompt = gr.Textbox(
            placeholder=_("Type a message and press Enter"), show_label=False, scale=5, elem_id="chat-input"
        )
        send = gr.Button(_("Send"), variant="primary", scale=1, elem_id="chat-send")
        clear = gr.Button(_("Clear"), scale=1, elem_id="chat-clear")
    with gr.Row(visible=False) as rating_row:
        prefer_tuned = gr.Button(_("Tuned reply is better"), elem_id="chat-prefer-tuned")
        prefer_base = gr.Button(_("Base reply is better"), elem_id="chat-prefer-base")
        rating_status = gr.Markdown(
            _(
                "Rate the last two replies: each rating is saved as a preference pair (Data tab: your ratings), "
                "ready for DPO, KTO, ORPO or a reward model."
            ),
            elem_id="chat-rating-status",
        )
    with gr.Accordion(_("Sampling"), open=False):
        with gr.Row():
            temperature = gr.Slider(0, 2, value=0.0, step=0.05, label=_("temperature"),
                                    info=_("0 = always the likeliest"), elem_id="chat-temperature")  # fmt: skip
            top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label=_("top-p"))
            max_new = gr.Slider(1, 2048, value=256, step=1, label=_("max new tokens"), elem_id="chat-max-new")
    status = gr.Markdown(elem_id="chat-status")
    serve = serve_panel.build()
    return locals()


def wire(tab: dict[str, Any], language) -> None:
    """The tab's events; `language` is the page's, which what they say follows."""
    tab["refresh"].click(adapters, language, tab["adapter"], api_visibility="private")
    tab["side_by_side"].change(
        lambda on: (gr.update(visible=on), gr.update(visible=on)), tab["side_by_side"],
        [tab["base_bot"], tab["rating_row"]], api_visibility="private",
    )  # fmt: skip
    rate_inputs = [tab["tuned_bot"], tab["base_bot"], tab["base"], tab["adapter"], language]
    tab["prefer_tuned"].click(
        lambda *v: rate(*v, tuned_better=True), rate_inputs, tab["rating_status"], api_visibility="private"
    )
    tab["prefer_base"].click(
        lambda *v: rate(*v, tuned_better=False), rate_inputs, tab["rating_status"], api_visibility="private"
    )
    inputs = [
        tab["prompt"], tab["tuned_bot"], tab["base_bot"], tab["base"], tab["adapter"], tab["side_by_side"],
        tab["temperature"], tab["top_p"], tab["max_new"], language,
    ]  # fmt: skip
    outputs = [tab["prompt"], tab["tuned_bot"], tab["base_bot"], tab["status"]]
    tab["send"].click(respond, inputs, outputs, api_visibility="private")
    tab["prompt"].submit(respond, inputs, outputs, api_visibility="private")
    tab["clear"].click(
        lambda: ([], [], ""), None, [tab["tuned_bot"], tab["base_bot"], tab["status"]], api_visibility="private"
    )
    serve_panel.wire(tab["serve"], language)


def adapters(language: str | None = None):
    """The finished runs to chat with, as an update of the adapter picker (named in the page's `language`)."""
    return gr.update(choices=adapter_choices(i18n.translator(language)))


def respond(
    prompt, tuned_history, base_history, base, run_id, side_by_side, temperature, top_p, max_new, language=None
):
    """Stream the tuned reply (and, side by side, the base reply) into the chat windows."""
    t = i18n.translator(language)
    if not prompt.strip():
        yield "", tuned_history, base_history, ""
        return
    run_dir = JobStore().get(run_id).run_dir if run_id else None
    settings = {"temperature": temperature, "top_p": top_p, "max_new_tokens": int(max_new)}
    # Gradio hands history back with content as lists of parts; the chat service reads those as they are.
    tuned_history = [*(tuned_history or []), {"role": "user", "content": prompt}]
    base_history = [*(base_history or []), {"role": "user", "content": prompt}] if side_by_side else base_history
    began = time.time()
    try:
        loaded = _service.loaded
        if loaded is None or (loaded.base, loaded.run_dir) != (base, run_dir):
            yield "", tuned_history, base_history, t("Loading the model…")
        _service.load(base, run_dir)
        panes = [(tuned_history, run_dir is not None)] + ([(base_history, False)] if side_by_side else [])
        for history, with_adapter in panes:
            history.append({"role": "assistant", "content": ""})
            for text in _service.stream(history[:-1], adapter=with_adapter, **settings):
                history[-1] = {"role": "assistant", "content": text}
                yield "", tuned_history, base_history, ""
        yield "", tuned_history, base_history, t("Done in {seconds:.1f} s", seconds=time.time() - began)
    except WorkbenchError as err:
        yield "", tuned_history, base_history, f"**{t.error(err)}**"


def rate(
    tuned_history, base_history, base: str, run_id: str, language: str | None = None, *, tuned_better: bool
) -> str:
    """Save the last exchange as a preference pair: the better reply chosen, the other rejected.

    The prompt is the conversation as the tuned pane shows it, up to the last question (both panes share it in
    a one-question exchange; later turns follow the tuned model's own earlier replies).
    """
    t = i18n.translator(language)
    tuned, other = plain_messages(tuned_history or []), plain_messages(base_history or [])
    if len(tuned) < 2 or len(other) < 2 or tuned[-1]["role"] != "assistant" or other[-1]["role"] != "assistant":
        return t("**Nothing to rate yet:** send a message in side-by-side mode first.")
    chosen, rejected = (tuned[-1]["content"], other[-1]["content"])
    if not tuned_better:
        chosen, rejected = rejected, chosen
    try:
        total = ratings.save_rating(tuned[:-1], chosen, rejected, run=run_id or None, base=base)
    except WorkbenchError as err:
        return t("**Not saved:** {problem}", problem=t.error(err))
    if tuned_better:
        saved = "Saved: the tuned reply preferred. **{total}** rated pairs in `{file}` (Data tab)."
    else:
        saved = "Saved: the base reply preferred. **{total}** rated pairs in `{file}` (Data tab)."
    return t(saved, total=total, file=ratings.RATINGS_FILE)
