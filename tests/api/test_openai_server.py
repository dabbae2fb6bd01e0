"""`python -m workbench serve` as a user starts it, talked to with the official `openai` client: two runs'
adapters on one base, alternating across requests, answer as the chat engine answers for the same adapter and
prompt; streaming gives the same text; bad requests get OpenAI's errors."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import openai
import pytest

from tests.api.runs import finished_lora_run
from tests.conftest import REPO, kill_workers

KEY = "sk-test-key"
BASE = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "Name three colours."}]
TOKENS = 10  # short replies: the bundled model writes ~15 tokens/s on this CPU


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Two finished runs of the bundled model and `serve` on both; yields (base URL, [run ids], home)."""
    home = tmp_path_factory.mktemp("serve") / "home"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        runs = [finished_lora_run(seed) for seed in (1, 2)]
    with _serving(home, runs) as url:
        yield url, runs, home
    kill_workers(home)


@contextmanager
def _serving(home, runs: list[str], *args: str) -> Iterator[str]:
    port = free_port()
    log_path = home / f"serve-{port}.log"
    command = [sys.executable, "-m", "workbench", "serve", *runs, "--port", str(port), "--api-key", KEY, *args]
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, "--threads", "1"], cwd=REPO, env=env, stdout=log, stderr=log)
    try:
        _wait_for_port(port, process, log_path)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server):
    url, _, _ = server
    return openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def chat_replies(server):
    """What the chat engine answers QUESTION with, greedily, for each run's adapter and for the base."""
    from workbench.chat import ChatEngine
    from workbench.runs.store import JobStore

    _, runs, home = server
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        replies = {}
        for run in runs:
            engine = ChatEngine.for_run(JobStore().get(run).files)
            replies[run] = engine.reply(QUESTION, max_new_tokens=TOKENS)
        replies[BASE] = engine.reply(QUESTION, max_new_tokens=TOKENS, adapter=False)
        del engine
    return replies


def test_models_lists_the_base_and_each_run(client, server):
    _, runs, _ = server
    names = [model.id for model in client.models.list()]
    assert names[0] == BASE and set(runs) <= set(names)


def test_adapters_alternate_on_one_base_and_answer_as_the_chat_engine(client, server, chat_replies):
    _, (first, second), _ = server
    assert len({chat_replies[first], chat_replies[second], chat_replies[BASE]}) == 3, chat_replies  # all differ
    for model in (first, second, BASE, second, first):
        reply = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=TOKENS, temperature=0)
        assert reply.choices[0].message.content == chat_replies[model], model
        assert reply.model == model and reply.usage.completion_tokens <= TOKENS
        assert reply.choices[0].finish_reason in ("stop", "length")


def test_a_streamed_reply_is_the_same_text_in_pieces(client, server, chat_replies):
    _, (first, _), _ = server
    stream = client.chat.completions.create(
        model=first, messages=QUESTION, max_tokens=TOKENS, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces) == chat_replies[first]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == TOKENS


def test_text_completions_stop_at_a_stop_sequence(client, server):
    _, (_, second), _ = server
    whole = client.completions.create(model=second, prompt="One, two, three,", max_tokens=TOKENS, temperature=0)
    text = whole.choices[0].text
    assert text and whole.choices[0].finish_reason == "length"
    stop = text.strip().split()[1]  # a word inside the reply: generation must end before it
    cut = client.completions.create(model=second, prompt="One, two, three,", max_tokens=TOKENS, temperature=0,
                                    stop=[stop])  # fmt: skip
    assert cut.choices[0].text == text[: text.index(stop)] and cut.choices[0].finish_reason == "stop"
    streamed = client.completions.create(model=second, prompt="One, two, three,", max_tokens=TOKENS, temperature=0,
                                         stop=[stop], stream=True)  # fmt: skip
    assert "".join(c.choices[0].text for c in streamed) == cut.choices[0].text


def test_sampling_with_a_seed_repeats(client, server):
    _, (first, _), _ = server
    ask = dict(model=first, messages=QUESTION, max_tokens=6, temperature=1.5, top_p=0.9, seed=7)
    replies = [client.chat.completions.create(**ask).choices[0].message.content for _ in range(2)]
    assert replies[0] == replies[1]


def test_bad_requests_get_openai_errors(client, server):
    url, _, _ = server
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-run", messages=QUESTION)
    assert unknown.value.code == "model_not_found" and "no-such-run" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as hot:
        client.chat.completions.create(model=BASE, messages=QUESTION, temperature=3)
    assert hot.value.body["param"] == "temperature" and hot.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as many:
        client.chat.completions.create(model=BASE, messages=QUESTION, n=2)
    assert many.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model=BASE, messages=[])
    assert empty.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as long:
        client.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=10**6)
    assert long.value.code == "context_length_exceeded"
    stranger = openai.OpenAI(base_url=url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as wrong:
        stranger.models.list()
    assert wrong.value.code == "invalid_api_key"


def test_concurrent_requests_wait_their_turn(client, server, chat_replies):
    _, (first, second), _ = server
    models = [first, second, first, second]

    def ask(model: str) -> str:
        reply = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=TOKENS, temperature=0)
        return reply.choices[0].message.content

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(ask, models))
    assert replies == [chat_replies[m] for m in models]


def test_a_full_line_is_refused_and_batches_take_alike_requests():
    from workbench.api.dispatch import Dispatcher, QueueFull
    from workbench.api.request import Request, Sampling

    class Engine:
        """Records each batch and holds it until released."""

        def __init__(self):
            self.batches, self.release = [], threading.Event()

        def generate(self, batch):
            self.batches.append([r.model for r in batch])
            self.release.wait(10)
            for request in batch:
                request.send("end", None)

    async def scenario(engine: Engine) -> list[str]:
        dispatcher = Dispatcher(engine, max_batch=2, waiting=4)
        greedy, sampled = Sampling(temperature=0), Sampling(temperature=0.7)

        def request(name: str, sampling: Sampling) -> Request:
            return Request(name, [1], sampling, lambda kind, value: None)

        dispatcher.submit(request("a", greedy))  # starts at once
        gone = request("gone", greedy)
        for waiting in (request("c1", greedy), gone, request("b", sampled), request("c2", greedy)):
            dispatcher.submit(waiting)
        outcomes = [f"{dispatcher.queued} waiting"]
        try:
            dispatcher.submit(request("d", greedy))
        except QueueFull:
            outcomes.append("refused")
        dispatcher.withdraw(gone)  # its client left while it waited
        while len(engine.batches) < 3:
            engine.release.set()
            await asyncio.sleep(0.05)
        return outcomes

    engine = Engine()
    assert asyncio.run(scenario(engine)) == ["4 waiting", "refused"]
    # The oldest first, with later requests sampled alike (c2) but not others (b); the one gone never runs.
    assert engine.batches == [["a"], ["c1", "c2"], ["b"]]


def test_a_public_address_without_a_key_is_refused(tmp_path):
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")}
    env.pop("WORKBENCH_SERVE_API_KEY", None)
    out = subprocess.run([sys.executable, "-m", "workbench", "serve", "--host", "0.0.0.0"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "--api-key" in out.stderr and "--insecure-no-auth" in out.stderr


def _wait_for_port(port: int, process: subprocess.Popen, log) -> None:
    deadline = time.time() + 180
    while time.time() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("serve did not start:\n" + log.read_text())


def test_a_client_gone_mid_stream_stops_its_generation(server):
    url, (first, _), _ = server
    import httpx

    long = {"model": first, "messages": QUESTION, "max_tokens": 300, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{url}/chat/completions", json=long, headers={"Authorization": f"Bearer {KEY}"},
                      timeout=60) as response:  # fmt: skip
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))  # generation has begun
    began = time.monotonic()  # the connection is closed: the next request need not wait ~20 s for 300 tokens
    short = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=120)
    short.chat.completions.create(model=first, messages=QUESTION, max_tokens=2, temperature=0)
    assert time.monotonic() - began < 8


def test_batched_requests_answer_as_they_do_alone(server):
    """With --max-batch 4, concurrent requests for different adapters and prompts of different lengths generate as
    batches (padded on the left, each row through its own adapter), and each reply is still its own."""
    from workbench.chat import ChatEngine
    from workbench.runs.store import JobStore

    _, (first, second), home = server
    longer = [{"role": "user", "content": "In one sentence, what is a language model and what is it good for?"}]
    asks = [(first, QUESTION), (second, longer), (BASE, longer), (second, QUESTION)]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_HOME", str(home))
        engines = {run: ChatEngine.for_run(JobStore().get(run).files) for run in (first, second)}
        alone = [
            engines[second if model == BASE else model].reply(messages, max_new_tokens=TOKENS, adapter=model != BASE)
            for model, messages in asks
        ]
        del engines
    with _serving(home, [first, second], "--max-batch", "4") as url:
        client = openai.OpenAI(base_url=url, api_key=KEY, max_retries=0, timeout=300)

        def ask(pair) -> str:
            model, messages = pair
            reply = client.chat.completions.create(model=model, messages=messages, max_tokens=TOKENS, temperature=0)
            return reply.choices[0].message.content

        ask(asks[0])  # the first request of a burst goes alone; this warms the server up
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(ask, asks))
    assert together == alone
