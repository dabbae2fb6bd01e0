"""Heavy calls from the UI (tokenizing a dataset) run in one helper process, so the UI process stays light."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def call(fn: Callable[..., Any], *args: Any, timeout: float = 600) -> Any:
    """Run `fn(*args)` in the helper process (started on first use) and return its result or raise its error."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        pool = _pool
    try:
        return pool.submit(fn, *args).result(timeout)
    except BrokenProcessPool:
        with _lock:
            _pool = None  # the next call starts a fresh helper
        raise


def _exit_with_parent(parent: int) -> None:
    # A killed UI server leaves its pool's process behind (it holds a tokenizer and torch): watch for that.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def shutdown() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
