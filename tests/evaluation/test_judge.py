"""The pairwise judge: verdicts read from replies, positions swapped, a pair won only when both orders agree, and an
OpenAI-compatible endpoint asked through the official client (a local stand-in: nothing leaves the machine)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workbench.evaluation import judge


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("A", "A"),
        ("b.", "B"),
        ("Tie", "tie"),
        ("Answer B is better", "B"),
        ("**A**", "A"),
        ("Both", None),
        ("", None),
        ("A, B or tie.", None),
    ],
)
def test_verdicts_are_read_from_the_first_word(reply, verdict):
    assert judge.parse(reply) == verdict


def fixed(verdicts_base_first: list[str], verdicts_tuned_first: list[str]):
    def ask(prompts: list[str]) -> list[str]:
        assert len(prompts) == 2 * len(verdicts_base_first)
        return verdicts_base_first + verdicts_tuned_first

    return ask


def test_a_pair_is_won_only_when_both_orders_prefer_the_same_model():
    # Per question: tuned in both orders; base in both; position A both times (a biased judge); a tie; unreadable.
    ask = fixed(["B", "A", "A", "tie", "?"], ["A", "B", "A", "tie", "B"])
    result = judge.pairwise(list("12345"), ["base"] * 5, ["tuned"] * 5, ask)
    assert [v["winner"] for v in result["verdicts"]] == ["tuned", "base", "tie", "tie", "tie"]
    assert (result["wins"], result["losses"], result["ties"]) == (1, 1, 3)
    assert result["win_rate"] == pytest.approx((1 + 3 / 2) / 5)


def test_both_orders_show_the_judge_each_reply_in_each_position():
    seen = []

    def ask(prompts):
        seen.extend(prompts)
        return ["A"] * len(prompts)

    judge.pairwise(["Who are you?"], ["I am SmolLM."], ["I am Zorblax."], ask)
    first, second = seen
    assert first.index("I am SmolLM.") < first.index("I am Zorblax.")
    assert second.index("I am Zorblax.") < second.index("I am SmolLM.")


class Endpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible chat endpoint that prefers whichever answer mentions Zorblax."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Endpoint.requests.append((self.path, body, self.headers.get("Authorization")))
        prompt = body["messages"][0]["content"]
        a = prompt.split("Answer A:")[1].split("Answer B:")[0]
        reply = {
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "A" if "Zorblax" in a else "B"}}],
        }  # fmt: skip
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_an_openai_compatible_endpoint_judges_through_the_official_client(monkeypatch):
    Endpoint.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1"
        result = judge.pairwise(["Who are you?"], ["I am SmolLM."], ["I am Zorblax."], judge.endpoint(url, "judge-1"))
    finally:
        server.shutdown()
    assert (result["wins"], result["losses"], result["ties"]) == (1, 0, 0)
    assert [(path, body["model"], key) for path, body, key in Endpoint.requests] == [
        ("/v1/chat/completions", "judge-1", "Bearer sk-test")
    ] * 2
