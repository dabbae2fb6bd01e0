"""The page's own wire protocol, spoken without a browser: log in, read the page's config, call an event by its
index (`fn_index`) the way the browser does, private events included."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx


def login(url: str, user: str, password: str) -> httpx.Client:
    """An HTTP client holding the session cookie of a successful login."""
    client = httpx.Client(base_url=url, timeout=120)
    answer = client.post("/login", data={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return client


def page_config(client: httpx.Client) -> dict[str, Any]:
    answer = client.get("/config")
    assert answer.status_code == 200, answer.text
    return answer.json()


def call(client: httpx.Client, fn_index: int, data: list[Any], trigger_id: int | None = None) -> list[dict]:
    """Call one event as the browser does and return every message the server sent for it, to the last."""
    session = uuid.uuid4().hex[:11]
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": trigger_id}
    joined = client.post("/gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return [{"msg": "refused", "status": joined.status_code, "text": joined.text}]
    messages = []
    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[len("data:") :])
            messages.append(message)
            if message.get("msg") in ("process_completed", "close_stream", "unexpected_error"):
                break
    return messages
