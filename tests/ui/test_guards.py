"""The guards alone: which Host names are this machine, and how failed logins are spaced."""

from __future__ import annotations

import asyncio
import time

import pytest

from workbench.ui.guards import LoginThrottle, is_loopback_name
from workbench.ui.serving import exposure_refusal, password_check


@pytest.mark.parametrize(
    "host",
    ["localhost", "localhost:7860", "LOCALHOST.", "127.0.0.1", "127.0.0.1:7860", "127.8.9.1", "[::1]:7860", "::1"],
)
def test_loopback_names(host):
    assert is_loopback_name(host)


@pytest.mark.parametrize(
    "host", ["", "evil.example", "evil.example:7860", "localhost.evil.example", "0.0.0.0", "10.0.0.2:7860", "[::]"]
)
def test_other_names(host):
    assert not is_loopback_name(host)


def test_serving_beyond_this_machine_needs_a_password_or_the_insecure_flag():
    assert exposure_refusal("127.0.0.1", share=False, auth=False, insecure_no_auth=False) is None
    assert "--auth" in exposure_refusal("0.0.0.0", share=False, auth=False, insecure_no_auth=False)
    assert "--auth" in exposure_refusal("localhost", share=True, auth=False, insecure_no_auth=False)
    assert exposure_refusal("0.0.0.0", share=True, auth=True, insecure_no_auth=False) is None
    assert exposure_refusal("0.0.0.0", share=True, auth=False, insecure_no_auth=True) is None


def test_password_check():
    check = password_check("ada", "secret")
    assert check("ada", "secret")
    assert not check("ada", "secreT") and not check("bob", "secret") and not check("", "")


def test_failures_from_one_client_double_their_wait_and_one_at_a_time():
    async def login(scope, receive, send):  # a login route: "right" succeeds, anything else fails
        ok = scope["query_string"] == b"right"
        await send({"type": "http.response.start", "status": 200 if ok else 400, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    throttle = LoginThrottle(login, base=0.05, cap=0.2)

    async def attempt(password: str, client: str = "10.0.0.1") -> tuple[int, float]:
        scope = {"type": "http", "method": "POST", "path": "/login", "query_string": password.encode(),
                 "client": (client, 1234), "headers": []}  # fmt: skip
        sent = []

        async def send(message):
            sent.append(message)

        began = time.monotonic()
        await throttle(scope, None, send)
        return sent[0]["status"], time.monotonic() - began

    async def scenario():
        waits = [(await attempt("wrong"))[1] for _ in range(4)]
        other = await attempt("wrong", client="10.0.0.2")  # another client starts from the beginning
        right = await attempt("right")
        again = await attempt("wrong")
        # Parallel guesses from one client are taken one at a time: two take the time of both waits.
        began = time.monotonic()
        await asyncio.gather(attempt("wrong"), attempt("wrong"))
        return waits, other, right, again, time.monotonic() - began

    waits, other, right, again, parallel = asyncio.run(scenario())
    assert [round(w, 2) for w in waits] == pytest.approx([0.05, 0.1, 0.2, 0.2], abs=0.03)  # doubling, capped
    assert other[1] == pytest.approx(0.05, abs=0.03)
    assert right[0] == 200 and right[1] < 0.03  # a success is not slowed, and clears the count
    assert again[1] == pytest.approx(0.05, abs=0.03)
    assert parallel >= 0.1 + 0.2 - 0.02  # the second failure in a row waits 0.1, the third 0.2
