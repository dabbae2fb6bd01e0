"""One base model with the adapters of several runs, switched per request: what `serve` generates with.

The runs' PEFT adapters are loaded once onto one copy of the base, each under its run id; a request names the
adapter (or the base, which answers with every adapter disabled), so switching costs nothing and nothing reloads.
Several requests may generate as one batch, each row through its own adapter (PEFT's mixed-adapter batches).
Prompts are built as the chat engine builds them (each run's chat template and system prompt); a request alone in
its batch, decoded greedily, gets the chat engine's reply token for token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from workbench import models
from workbench.api.request import Request
from workbench.errors import ModelLoadError, WorkbenchError
from workbench.runs.files import RunFiles


class UnknownModel(WorkbenchError):
    """A request named a model this server does not serve."""

    category = "model_not_found"


class PromptTooLong(WorkbenchError):
    """The prompt and the reply asked for do not fit the model's context."""

    category = "context_length_exceeded"


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

    def generate(self, requests: Sequence[Request]) -> None:
        """Generate the replies of `requests` together, one row each (see Sampling.batch_key for which may share a
        batch); each request's `send` gets its pieces as they come, then its end or the error."""
        try:
            for request in requests:
                self.check_fits(request.prompt, request.sampling.max_tokens)
                request.prompt_tokens = len(request.prompt)
            with self._lock:
                self._generate([(r, self._get(r.model)) for r in requests])
        except BaseException as err:  # noqa: B036  every waiting client hears of it
            for request in requests:
                request.send("error", err)
            raise
        for request in requests:
            request.send("end", None)

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

    def _generate(self, rows: list[tuple[Request, _Served]]) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _RowsDone(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.tensor([r.done or r.cancel.is_set() for r, _ in rows], device=input_ids.device)

        eos = _eos_ids(self.model, rows[0][1].tokenizer)
        # Left padding: every row's next token comes at the same position. A lone row has none, and so answers
        # exactly as the chat engine does.
        pad = rows[0][1].tokenizer.pad_token_id
        width = max(len(r.prompt) for r, _ in rows)
        ids = [[pad] * (width - len(r.prompt)) + r.prompt for r, _ in rows]
        mask = [[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r, _ in rows]
        sampling = rows[0][0].sampling
        kwargs: dict[str, Any] = {
            "input_ids": torch.tensor(ids, device=self.device),
            "attention_mask": torch.tensor(mask, device=self.device),
            "max_new_tokens": max(r.sampling.max_tokens for r, _ in rows),
            "streamer": _Rows(rows, eos),
            "pad_token_id": pad,
            "stopping_criteria": StoppingCriteriaList([_RowsDone()]),
            # The chat engine's settings exactly: greedy unless a temperature is given.
            **(
                {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p}
                if sampling.temperature > 0
                else {"do_sample": False}
            ),
        }
        adapters = {served.adapter for _, served in rows}
        if len(adapters) == 1:
            selected = self._selected(rows[0][1])
        else:
            # PEFT's mixed batches: each row through its own adapter in the same forward pass.
            selected = nullcontext()
            kwargs["adapter_names"] = [served.adapter or "__base__" for _, served in rows]
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with selected, torch.no_grad():
            self.model.generate(**kwargs)
        for request, served in rows:
            request.finish(served.tokenizer)


class _Rows:
    """A transformers streamer that hands each row's new token to its request (the prompt is skipped)."""

    def __init__(self, rows: list[tuple[Request, _Served]], eos: set[int]):
        self.rows, self.eos, self._prompt_seen = rows, eos, False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for (request, served), token in zip(self.rows, value.reshape(-1).tolist(), strict=True):
            request.take(token, served.tokenizer, self.eos)

    def end(self) -> None:
        pass


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
