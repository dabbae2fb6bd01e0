"""Chat for the web UI, served by a child process so the UI process never imports torch, transformers or peft.

The child is started with multiprocessing's "spawn" method (forking a process that holds threads, as a Gradio
server does, can deadlock) and talks over one duplex pipe. The parent sends ("load", base, run_dir),
("chat", messages, adapter, params), ("cancel",) or ("quit",); the child answers a load with ("ready", info) or
("error", category, message), and a chat with ("piece", text)... then exactly one ("done",) or ("error", ...).
One model is loaded with the run's adapter; the base model's answers come from the same weights with the
adapter disabled. Note that "spawn" re-imports the parent's main script in the child (without running its
`if __name__ == "__main__"` block), as every spawned process does.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from workbench.errors import ModelLoadError, OutOfMemoryError, WorkbenchError, describe
from workbench.runs.files import RunFiles

# How often a waiting parent checks that the child is still alive, in seconds.
_POLL_SECONDS = 0.5
# Seconds the child gets to exit on its own before it is terminated, then killed.
_QUIT_GRACE_SECONDS = 10


class ChatError(WorkbenchError):
    """The chat process failed or stopped; `category` is the child's category for errors raised there."""

    category = "chat"

    def __init__(self, message: str, category: str | None = None):
        super().__init__(message)
        if category:
            self.category = category


@dataclass(frozen=True)
class LoadedModel:
    """What the chat process has loaded: the reference given, the base's canonical name, the run, the device."""

    base: str
    base_name: str
    run_dir: str | None
    adapter: bool
    device: str
    pid: int


class ChatService:
    """A chat model in a child process, for one caller at a time (concurrent callers wait their turn).

    `threads` caps the child's torch threads (None keeps torch's default).
    """

    def __init__(self, *, threads: int | None = None):
        self.threads = threads
        # A plain Lock, not an RLock: Gradio may resume (or close) a streaming generator on another thread than
        # the one that started it, and only a plain Lock may be released from a different thread.
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self._offline = False
        self._loaded: LoadedModel | None = None

    @property
    def loaded(self) -> LoadedModel | None:
        """The model being served, or None (nothing loaded, or the child has died)."""
        if self._loaded is not None and not self._alive():
            return None
        return self._loaded

    def load(self, base: str, run_dir: str | Path | None = None) -> LoadedModel:
        """Load `base` (a models.resolve reference), with the finished adapter of `run_dir` if given.

        Blocks until the model is ready; returns at once if this model and run are already loaded. A live child
        is reused (the previous model is dropped first); a dead one is replaced. Raises ModelLoadError for a bad
        model or run.
        """
        from workbench import models

        problem = models.check_model_ref(base)
        if problem:
            raise ModelLoadError(f"chat model: {problem}")
        run = str(Path(run_dir).resolve()) if run_dir is not None else None
        if run is not None:
            _check_run(RunFiles(Path(run)))
        with self._lock:
            if self._loaded is not None and self._alive() and (self._loaded.base, self._loaded.run_dir) == (base, run):
                return self._loaded
            # Hub libraries read the offline switch once, at import: a child must serve local or hub models only.
            offline = models.is_local(base)
            if not self._alive() or offline != self._offline:
                self._stop_child()
                self._start_child(offline)
            self._loaded = None
            self._send(("load", base, run))
            reply = self._receive()
            if reply[0] != "ready":
                raise _child_error(reply)
            self._loaded = LoadedModel(**reply[1])
            return self._loaded

    def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        adapter: bool = True,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
    ) -> Iterator[str]:
        """Yield the reply so far, growing piece by piece (accumulated text, as Gradio's streaming wants).

        `adapter=False` answers with the base model (the adapter disabled); with no adapter loaded both
        answer with the base. Messages may carry Gradio's content parts. Closing the generator early stops
        the generation in the child.
        """
        plain = plain_messages(messages)
        params = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        with self._lock:
            if self._loaded is None or not self._alive():
                self._loaded = None
                raise ChatError("no chat model is loaded: load a model first")
            self._send(("chat", plain, adapter, params))
            finished = False
            text = ""
            try:
                while True:
                    reply = self._receive()
                    if reply[0] == "piece":
                        text += reply[1]
                        yield text
                    elif reply[0] == "done":
                        finished = True
                        return
                    else:
                        finished = True
                        raise _child_error(reply)
            finally:
                if not finished and self._alive():
                    # The caller stopped reading: stop the generation and read up to its end marker, so the
                    # next request starts on a clean pipe.
                    self._send(("cancel",))
                    while self._receive()[0] == "piece":
                        pass

    def reply(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        """The whole reply at once (see `stream` for the arguments)."""
        text = ""
        for partial in self.stream(messages, **kwargs):
            text = partial
        return text

    def unload(self) -> None:
        """End the child process, giving back all its memory (GPU memory too). Safe to call when idle."""
        with self._lock:
            self._stop_child()

    # -- the child process -----------------------------------------------------------------------------

    def _alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _start_child(self, offline: bool) -> None:
        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe()
        process = context.Process(
            target=_serve, args=(child_conn, self.threads, offline), name="workbench-chat", daemon=True
        )
        process.start()
        # Only the child may hold its end: once it exits, our reads then fail at once instead of waiting.
        child_conn.close()
        self._process, self._conn, self._offline = process, parent_conn, offline

    def _stop_child(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = self._loaded = None
        if process is None:
            return
        if conn is not None:
            try:
                conn.send(("quit",))
            except OSError:
                pass
            conn.close()
        process.join(_QUIT_GRACE_SECONDS)
        if process.is_alive():
            process.terminate()
            process.join(_QUIT_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()

    def _send(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except OSError as err:
            raise self._crashed() from err

    def _receive(self) -> tuple:
        try:
            while not self._conn.poll(_POLL_SECONDS):
                if not self._process.is_alive():
                    raise self._crashed()
            return self._conn.recv()
        except (EOFError, OSError) as err:
            raise self._crashed() from err

    def _crashed(self) -> ChatError:
        self._process.join(_QUIT_GRACE_SECONDS)
        code = self._process.exitcode
        self._stop_child()
        return ChatError(
            f"the chat process stopped unexpectedly (exit code {code}; out of memory?): load the model again"
        )


def _check_run(files: RunFiles) -> None:
    if not files.root.is_dir():
        raise ModelLoadError(f"run folder {files.root} does not exist")
    if files.artifact_kind() is None:
        raise ModelLoadError(f"run {files.root.name} has no adapter yet: it has not finished")
    if not files.config.is_file():
        raise ModelLoadError(f"{files.root} has no config.yaml: not a run folder")


def plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Role and text only: Gradio's chatbot sends content as a list of parts and adds keys of its own."""
    plain = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            parts = content if isinstance(content, list) else [content]
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in parts)
        plain.append({"role": message["role"], "content": content})
    return plain


def _child_error(reply: tuple) -> WorkbenchError:
    _, category, message = reply
    if category == "model":
        return ModelLoadError(message)
    if category == "oom":
        return OutOfMemoryError(message)
    return ChatError(message, category)


def _serve(conn: Connection, threads: int | None, offline: bool) -> None:
    """The child's loop: answer requests until told to quit or the parent goes away."""
    # Ctrl-C in the UI's terminal reaches the whole process group: the parent decides when the child ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Set before torch loads OpenMP: busy-waiting threads slow everything else on a small machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"  # everything is on disk: no hub look-ups that could stall
    engine = None
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if request[0] == "load":
                engine = None  # drop the previous model before the next one takes memory
                _release_memory()
                engine, info = _load(request[1], request[2], threads)
                conn.send(("ready", info))
            elif request[0] == "chat":
                if engine is None:
                    raise ChatError("no chat model is loaded: load a model first")
                _chat(conn, engine, *request[1:])
            elif request[0] == "quit":
                return
            # A "cancel" that arrives after its reply ended has nothing left to stop.
        except (BrokenPipeError, EOFError):
            return
        except Exception as err:
            traceback.print_exc()
            try:
                conn.send(("error", *describe(err)))
            except OSError:
                return


def _load(base: str, run_dir: str | None, threads: int | None) -> tuple[Any, dict[str, Any]]:
    import torch

    from workbench import models
    from workbench.chat import ChatEngine

    if threads:
        torch.set_num_threads(threads)
    ref = models.resolve(base)
    if run_dir is None:
        engine = ChatEngine(ref)
    else:
        files = RunFiles(Path(run_dir))
        _check_run(files)
        config = files.read_config()
        trained_on = models.resolve(config.model.name_or_path).base_name
        if trained_on != ref.base_name:
            raise ModelLoadError(f"run {files.root.name} was trained on {trained_on!r}, not {ref.base_name!r}")
        engine = ChatEngine.for_run(files)
    info = {
        "base": base,
        "base_name": engine.base_name,
        "run_dir": run_dir,
        "adapter": engine.has_adapter,
        "device": engine.device,
        "pid": os.getpid(),
    }
    return engine, info


def _chat(conn: Connection, engine: Any, messages: list[dict[str, str]], adapter: bool, params: dict) -> None:
    pieces = engine.stream(messages, adapter=adapter, **params)
    try:
        for piece in pieces:
            if piece:
                conn.send(("piece", piece))
            if conn.poll() and conn.recv()[0] == "cancel":
                break
    finally:
        pieces.close()  # stops the generation thread
    conn.send(("done",))


def _release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
