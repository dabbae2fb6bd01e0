"""The OpenAI-compatible server: `GET /v1/models`, `POST /v1/chat/completions` and `POST /v1/completions`, streamed
as server-sent events or not, over one AdapterEngine. A request's `model` picks a run's adapter or the base.

Generation runs in a worker thread, never on the event loop, one batch at a time with a bounded line of waiting
requests (dispatch.py). Errors have OpenAI's shape, so its clients raise their own typed exceptions
(`openai.NotFoundError`, `openai.RateLimitError`, ...).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from workbench.api.dispatch import Dispatcher, QueueFull
from workbench.api.engine import AdapterEngine, PromptTooLong, UnknownModel
from workbench.api.openai_schema import ChatCompletionRequest, CompletionRequest, error_body
from workbench.api.request import Request as Generation
from workbench.api.request import Sampling
from workbench.api.throttle import FailureThrottle
from workbench.errors import WorkbenchError, describe

# A request that names no max_tokens gets at most this many tokens (OpenAI's is the model's context).
DEFAULT_MAX_TOKENS = 256


class Unauthorized(WorkbenchError):
    category = "invalid_api_key"


def create_app(
    engine: AdapterEngine,
    *,
    api_key: str | None = None,
    max_batch: int = 1,
    waiting: int = 16,
    middleware: list[Middleware] | None = None,
) -> FastAPI:
    """The server's ASGI app. With `api_key`, every request needs `Authorization: Bearer <api_key>`; up to
    `max_batch` requests generate together, and `waiting` more may wait."""
    dispatcher = Dispatcher(engine, max_batch=max_batch, waiting=waiting)
    created = int(time.time())

    throttle = FailureThrottle()

    def accepted(request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), str(api_key).encode())

    async def authorized(request: Request) -> None:
        if api_key is not None and not await throttle.check(request, accepted):
            raise Unauthorized("a valid API key is needed: send the header Authorization: Bearer <key>")

    app = FastAPI(
        title="Workbench OpenAI-compatible server",
        dependencies=[Depends(authorized)],
        middleware=middleware or [],
        docs_url=None,
        redoc_url=None,
    )
    _add_error_handlers(app)

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        data = [{"id": name, "object": "model", "created": created, "owned_by": "workbench"} for name in engine.names]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest) -> Any:
        messages = [m.plain() for m in body.messages]
        prompt = await run_in_threadpool(engine.chat_prompt, body.model, messages)
        return await _answer(engine, dispatcher, body, prompt, chat=True)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Any:
        prompt = await run_in_threadpool(engine.text_prompt, body.model, body.text)
        return await _answer(engine, dispatcher, body, prompt, chat=False)

    return app


async def _answer(
    engine: AdapterEngine, dispatcher: Dispatcher, body: ChatCompletionRequest | CompletionRequest, prompt: list[int],
    *, chat: bool,
) -> Any:  # fmt: skip
    sampling = Sampling(
        max_tokens=body.limit or DEFAULT_MAX_TOKENS,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stops,
        seed=body.seed,
    )
    engine.check_fits(prompt, sampling.max_tokens)  # refused before a stream starts, as a plain error
    reply = _Reply(body.model, chat)
    generation, messages = _submit(dispatcher, body.model, prompt, sampling)  # QueueFull: a plain 429
    if body.stream:
        events = _events(generation, messages, body, reply)
        return _Stream(events, on_close=lambda: dispatcher.withdraw(generation))
    try:
        text = "".join([piece async for piece in _pieces(messages)])
    finally:
        dispatcher.withdraw(generation)  # a client gone meanwhile frees its place (nothing to do once ended)
    return reply.whole(text, generation)


def _submit(
    dispatcher: Dispatcher, model: str, prompt: list[int], sampling: Sampling
) -> tuple[Generation, asyncio.Queue]:
    """Queue a generation whose pieces, end or error arrive, from the worker thread, on an asyncio queue."""
    loop = asyncio.get_running_loop()
    messages: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def send(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(messages.put_nowait, (kind, value))
        except RuntimeError:  # the loop has closed: nobody is reading any more
            pass

    generation = Generation(model, prompt, sampling, send)
    dispatcher.submit(generation)
    return generation, messages


async def _pieces(messages: asyncio.Queue) -> AsyncIterator[str]:
    while True:
        kind, value = await messages.get()
        if kind == "piece":
            yield value
        elif kind == "end":
            return
        else:
            raise value


async def _events(
    generation: Generation, messages: asyncio.Queue, body: Any, reply: _Reply
) -> AsyncGenerator[str, None]:
    try:
        if reply.chat:
            yield _sse(reply.chunk({"role": "assistant", "content": ""}))
        async for piece in _pieces(messages):
            yield _sse(reply.chunk({"content": piece} if reply.chat else piece))
        yield _sse(reply.chunk({} if reply.chat else "", generation.finish_reason))
        if body.include_usage:
            yield _sse({**reply.chunk(None), "choices": [], "usage": _usage(generation)})
    except Exception as err:  # noqa: BLE001  the status line has gone: the error travels as an event
        yield _sse(_error_of(err)[1])
    yield "data: [DONE]\n\n"


class _Reply:
    """The response bodies of one request, in OpenAI's shapes."""

    def __init__(self, model: str, chat: bool):
        self.model, self.chat = model, chat
        self.id = ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12)
        self.created = int(time.time())

    def whole(self, text: str, outcome: Generation) -> dict[str, Any]:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text}
        choice |= {"logprobs": None, "finish_reason": outcome.finish_reason}
        kind = "chat.completion" if self.chat else "text_completion"
        return {**self._head(kind), "choices": [choice], "usage": _usage(outcome)}

    def chunk(self, delta: Any, finish_reason: str | None = None) -> dict[str, Any]:
        if self.chat:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**self._head("chat.completion.chunk"), "choices": [choice]}
        choice = {"index": 0, "text": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._head("text_completion"), "choices": [choice]}

    def _head(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}


class _Stream(StreamingResponse):
    """A server-sent event stream that withdraws its generation however it ends, even if it never started."""

    def __init__(self, events: AsyncGenerator[str, None], on_close: Callable[[], None]):
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._events, self._on_close = events, on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A client gone mid-stream leaves its generation running for nobody: it stops now.
            self._on_close()
            await self._events.aclose()


def _usage(outcome: Generation) -> dict[str, int]:
    total = outcome.prompt_tokens + outcome.completion_tokens
    return {
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "total_tokens": total,
    }


def _sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _error_of(err: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI error body for a failure."""
    if isinstance(err, Unauthorized):
        return 401, error_body(str(err), "invalid_request_error", "invalid_api_key")
    if isinstance(err, UnknownModel):
        return 404, error_body(str(err), "invalid_request_error", "model_not_found", "model")
    if isinstance(err, PromptTooLong):
        return 400, error_body(str(err), "invalid_request_error", "context_length_exceeded", "messages")
    if isinstance(err, QueueFull):
        return 429, error_body(str(err), "rate_limit_error", "rate_limit_exceeded")
    _, message = describe(err)
    return 500, error_body(message, "server_error")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(WorkbenchError)
    async def workbench_error(request: Request, err: WorkbenchError) -> JSONResponse:
        status, body = _error_of(err)
        return JSONResponse(body, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = err.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg'].removeprefix('Value error, ')}"
            for e in problems
        )
        return JSONResponse(error_body(message, "invalid_request_error", None, param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if err.status_code == 404 else None
        message = f"{request.method} {request.url.path}: {err.detail}"
        return JSONResponse(error_body(message, "invalid_request_error", code), status_code=err.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        status, body = _error_of(err)
        return JSONResponse(body, status_code=status)
