"""One base model with the adapters of several runs, switched per request: what `serve` generates with.

The runs' PEFT adapters are loaded once onto one copy of the base, each under its run id; a request names the
adapter (or the base, which answers with every adapter disabled), so switching costs nothing and nothing reloads.
Prompts are built as the chat engine builds them (each run's chat template and system prompt), and greedy decoding
gives the chat engine's reply token for token.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from workbench import models
from workbench.errors import ModelLoadError, WorkbenchError
from workbench.runs.files import RunFiles


class UnknownModel(WorkbenchError):
    """A request named a model this server does not serve."""

    category = "model_not_found"


class PromptTooLong(WorkbenchError):
    """The prompt and the reply asked for do not fit the model's context."""

    category = "context_length_exceeded"


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens and when to stop. Temperature 0 is greedy decoding (the same prompt, the same reply)."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass
class Outcome:
    """Filled in as a generation runs: token counts and why it ended ("stop" or "length")."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass(frozen=True)
class _Served:
    name: str  # what a request's `model` says: a run id, or the base's names
    adapter: str | None  # the PEFT adapter name (the run id); None for the base
    tokenizer: Any
    system_prompt: str | None


class AdapterEngine:
    """The base model `base` (a models.resolve reference) with the adapters of `runs`, all of them PEFT adapters
    trained on that same base; `threads` caps torch's threads."""

    def __init__(self, base: str, runs: Sequence[RunFiles] = (), threads: int | None = None):
        import torch
        from peft import PeftModel

        if threads:
            torch.set_num_threads(threads)
        self.ref = models.resolve(base)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        tokenizer = models.load_tokenizer(self.ref)
        self._served = {name: _Served(name, None, tokenizer, None) for name in (base, self.ref.base_name)}
        model = models.load_model(self.ref, device=self.device)
        for files in {files.root.name: files for files in runs}.values():
            config = _check_run(files, self.ref)
            run_id = files.root.name
            if isinstance(model, PeftModel):
                model.load_adapter(str(files.adapter), adapter_name=run_id)
            else:
                model = PeftModel.from_pretrained(model, str(files.adapter), adapter_name=run_id)
            # Each run's own chat template and system prompt, as the chat engine answers with them.
            run_tokenizer = models.load_tokenizer(self.ref, config.model.chat_template)
            self._served[run_id] = _Served(run_id, run_id, run_tokenizer, config.data.system_prompt)
        self.model = model.eval()
        self.context_length = getattr(model.config, "max_position_embeddings", None)
        # One generation at a time: the active adapter is the model's state, shared by every caller.
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        """What a request may name: the base (by its reference and its canonical name), then each run id."""
        return list(self._served)

    def chat_prompt(self, model: str, messages: list[dict[str, str]]) -> list[int]:
        """The token ids the chat engine would feed `model` for this conversation."""
        from workbench.data.formats import with_system

        served = self._get(model)
        messages = with_system(messages, served.system_prompt)  # type: ignore[arg-type]
        encoded = served.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return list(encoded["input_ids"])

    def text_prompt(self, model: str, prompt: str) -> list[int]:
        """The token ids of a plain-text prompt (no chat template)."""
        return list(self._get(model).tokenizer(prompt)["input_ids"])

    def generate(
        self, model: str, prompt: list[int], sampling: Sampling, outcome: Outcome, cancel: threading.Event
    ) -> Iterator[str]:
        """Yield the reply piece by piece, cut before the first stop sequence; `outcome` gets the counts and the
        finish reason. Setting `cancel` (or closing the iterator) ends the generation after the current token."""
        served = self._get(model)
        self.check_fits(prompt, sampling.max_tokens)
        outcome.prompt_tokens = len(prompt)
        with self._lock, self._selected(served):
            yield from self._stream(served.tokenizer, prompt, sampling, outcome, cancel)

    def check_fits(self, prompt: list[int], max_tokens: int) -> None:
        """PromptTooLong unless the prompt and `max_tokens` more fit the model's context."""
        if self.context_length and len(prompt) + max_tokens > self.context_length:
            raise PromptTooLong(
                f"this model's context is {self.context_length} tokens; the prompt has {len(prompt)} and "
                f"max_tokens asks for {max_tokens} more"
            )

    def _get(self, model: str) -> _Served:
        try:
            return self._served[model]
        except KeyError:
            raise UnknownModel(f"the model {model!r} is not served here; served: {', '.join(self.names)}") from None

    @contextmanager
    def _selected(self, served: _Served) -> Iterator[None]:
        if served.adapter is not None:
            self.model.set_adapter(served.adapter)
            yield
        else:
            with self.model.disable_adapter() if hasattr(self.model, "disable_adapter") else nullcontext():
                yield

    def _stream(
        self, tokenizer: Any, prompt: list[int], sampling: Sampling, outcome: Outcome, cancel: threading.Event
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        tokens = _TokenQueue()
        # The chat engine's settings exactly: greedy unless a temperature is given.
        sampling_kwargs = (
            {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
            if sampling.temperature > 0
            else {"do_sample": False}
        )
        kwargs = {
            "input_ids": torch.tensor([prompt], device=self.device),
            "max_new_tokens": sampling.max_tokens,
            "streamer": tokens,
            "pad_token_id": tokenizer.pad_token_id,
            "stopping_criteria": StoppingCriteriaList([_Cancelled()]),
            **sampling_kwargs,
        }
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                with torch.no_grad():
                    self.model.generate(**kwargs)
            except BaseException as err:  # noqa: B036  re-raised in the caller's thread below
                failure.append(err)
            finally:
                tokens.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        ids: list[int] = []
        sent, stopped = "", False
        try:
            for chunk in iter(tokens.queue.get, None):
                ids += chunk
                text = tokenizer.decode(ids, skip_special_tokens=True)
                if text.endswith("\ufffd"):
                    continue  # half of a character: wait for the rest
                cut = _first_stop(text, sampling.stop)
                if cut is not None:
                    text, stopped = text[:cut], True
                    cancel.set()
                # A tail that may be the start of a stop sequence waits until it is known not to be one.
                safe = len(text) if stopped else len(text) - _held_back(text, sampling.stop)
                if safe > len(sent):
                    yield text[len(sent) : safe]
                    sent = text[:safe]
                if stopped:
                    break
            if not stopped:
                text = tokenizer.decode(ids, skip_special_tokens=True)
                if len(text) > len(sent):
                    yield text[len(sent) :]
        finally:
            cancel.set()
            thread.join()
        if failure:
            raise failure[0]
        outcome.completion_tokens = len(ids)
        ended_on_eos = bool(ids) and ids[-1] in _eos_ids(self.model, tokenizer)
        outcome.finish_reason = (
            "length" if not stopped and not ended_on_eos and len(ids) >= sampling.max_tokens else "stop"
        )


class _TokenQueue:
    """A transformers streamer that hands each new token id to the consuming thread (the prompt is skipped)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[list[int] | None] = queue.Queue()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        self.queue.put(None)


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that begins some stop sequence."""
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if stop.startswith(text[-n:]):
                longest = n
                break
    return longest


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _check_run(files: RunFiles, ref: models.ModelRef) -> Any:
    """The run's config, once it is known that its adapter can share the base `ref` with others."""
    from workbench import stages
    from workbench.runs import chaining

    run_id = files.root.name
    if not files.config.is_file():
        raise ModelLoadError(f"{files.root} is not a run folder (no config.yaml)")
    kind = files.artifact_kind()
    if kind is None:
        raise ModelLoadError(f"run {run_id} has no adapter yet: it has not finished")
    if kind != "peft":
        raise ModelLoadError(
            f"run {run_id} left a {kind} artifact, not a PEFT adapter: only PEFT adapters can share one base model"
        )
    config = files.read_config()
    if stages.get(config.stage.name).head == "reward":
        raise ModelLoadError(f"run {run_id} is a reward model: it scores replies rather than writing them")
    from peft import PeftConfig

    if PeftConfig.from_pretrained(str(files.adapter)).is_prompt_learning:
        raise ModelLoadError(
            f"run {run_id} trained virtual tokens (prompt learning), which cannot switch per request with other "
            "adapters on one base: serve it alone with `python -m workbench chat`"
        )
    run_base = chaining.base_ref(config)
    if run_base.path != ref.path:
        raise ModelLoadError(
            f"run {run_id} applies to {run_base.base_name!r} at {run_base.path}, not to this server's base "
            f"{ref.base_name!r} at {ref.path}: serve it separately, with its own base"
        )
    return config
