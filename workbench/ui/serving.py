"""Who may reach the app: the password, whether a public address or share link is allowed, and the guards.

A workbench reads datasets, trains and writes files on the machine that serves it: served beyond this machine it
needs a password, unless the user says in so many words that anyone may use it (`--insecure-no-auth`).
"""

from __future__ import annotations

import argparse
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass

from starlette.middleware import Middleware

from workbench.ui.guards import LoginThrottle, LoopbackHostOnly, is_loopback_name


def password_check(user: str, password: str) -> Callable[[str, str], bool]:
    """Gradio's `auth=` callable for one account; compares in constant time, so timing tells nothing."""
    expected_user, expected_password = user.encode(), password.encode()

    def check(given_user: str, given_password: str) -> bool:
        # Both compared always (no early return): a wrong name takes as long as a wrong password.
        user_ok = hmac.compare_digest(given_user.encode(), expected_user)
        password_ok = hmac.compare_digest(given_password.encode(), expected_password)
        return user_ok and password_ok

    return check


@dataclass(frozen=True)
class Options:
    """How `python app.py` serves: where, with which password check (None: no password), a share link or not."""

    host: str = "127.0.0.1"
    port: int = 7860
    auth: Callable[[str, str], bool] | None = None
    share: bool = False
    insecure_no_auth: bool = False


def parse_args(argv: list[str] | None = None) -> Options:
    """Read `python app.py`'s arguments; a public address or share link without a password exits with code 2.

    Light on purpose (no Gradio import): a refused command ends at once."""
    parser = argparse.ArgumentParser(prog="python app.py", description="Open the Workbench in a browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--auth",
        default=os.environ.get("WORKBENCH_AUTH"),
        help="user:password required to open the page (or set WORKBENCH_AUTH); needed to serve other machines",
    )
    parser.add_argument("--share", action="store_true", help="also open a public Gradio share link (needs --auth)")
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow --share or a non-loopback --host without a password, and requests to any Host: anyone who "
        "reaches the server may then read its datasets, train and download",
    )
    args = parser.parse_args(argv)
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            parser.error("--auth must look like user:password")
        auth = password_check(user, password)
    refusal = exposure_refusal(args.host, args.share, auth is not None, args.insecure_no_auth)
    if refusal:
        parser.error(refusal)  # exit code 2, before anything starts
    return Options(args.host, args.port, auth, args.share, args.insecure_no_auth)


def exposure_refusal(host: str, share: bool, auth: bool, insecure_no_auth: bool) -> str | None:
    """Why serving this way is refused (other machines could use it without a password), or None."""
    if auth or insecure_no_auth:
        return None
    fix = "set --auth user:password (or WORKBENCH_AUTH), or pass --insecure-no-auth to let anyone use it"
    if share:
        return f"--share opens a public link to this workbench, which anyone could then use: {fix}"
    if not is_loopback_name(host):
        return f"--host {host} serves this workbench to other machines, which could then use it: {fix}"
    return None


def middleware(options: Options) -> list[Middleware]:
    """The guards for this way of serving: failed logins slowed with a password; without one (and without
    --insecure-no-auth, which opens the server to any Host) only requests addressed to localhost."""
    if options.auth:
        return [Middleware(LoginThrottle)]
    if options.insecure_no_auth:
        return []
    return [Middleware(LoopbackHostOnly)]
