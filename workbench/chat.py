"""The chat engine: a base model, optionally with a run's adapter, answering a conversation token by token.

Loaded on first use by whoever chats (the CLI, the UI's chat process); it is the same path the tests compare
against plain PEFT.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from workbench import models
from workbench.errors import ModelLoadError
from workbench.runs.files import RunFiles, artifact_kind


class ChatEngine:
    """Answers with the base model and a run's artifact: a PEFT adapter, a bottleneck adapter, or a whole model
    (full and freeze tuning). Base answers disable the adapter; for a whole model, the base is loaded beside it
    the first time a base answer is asked for."""

    def __init__(
        self,
        ref: models.ModelRef,
        adapter_dir: Path | None = None,
        chat_template: str | None = None,
        system_prompt: str | None = None,
    ):
        import torch

        self.ref = ref
        # The run's system prompt, as it trained with it (None: the chat template's own default).
        self.system_prompt = system_prompt
        self.base_name = ref.base_name
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tokenizer = models.load_tokenizer(ref, chat_template)
        self.kind = artifact_kind(Path(adapter_dir)) if adapter_dir is not None else None
        if adapter_dir is not None and self.kind is None:
            raise ModelLoadError(f"{adapter_dir} holds no adapter or model")
        if self.kind == "model":
            model = models.load_model(
                models.ModelRef(path=str(adapter_dir), base_name=ref.base_name), device=self.device
            )
        else:
            model = models.load_model(ref, device=self.device)
        if self.kind == "peft":
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir))
        elif self.kind == "bottleneck":
            from workbench.adapters import bottleneck

            bottleneck.load(model, Path(adapter_dir))
        self.has_adapter = adapter_dir is not None
        self.model = model.eval()
        self._base_model: Any = None

    @contextmanager
    def base(self) -> Iterator[Any]:
        """The model that gives the base model's answers (the adapter switched off, or the base loaded beside)."""
        if self.kind == "peft":
            with self.model.disable_adapter():
                yield self.model
        elif self.kind == "bottleneck":
            from workbench.adapters import bottleneck

            with bottleneck.disabled(self.model):
                yield self.model
        else:
            if self._base_model is None:
                self._base_model = models.load_model(self.ref, device=self.device).eval()
            yield self._base_model

    @classmethod
    def for_run(cls, files: RunFiles) -> ChatEngine:
        """The run's base model with its finished adapter (or the whole model it trained)."""
        if files.artifact_kind() is None:
            raise ModelLoadError(f"run {files.root.name} has no adapter yet: it has not finished")
        config = files.read_config()
        from workbench import stages
        from workbench.runs import chaining

        if stages.get(config.stage.name).head == "reward":
            raise ModelLoadError(
                f"run {files.root.name} is a reward model: it scores replies rather than writing them; pick it as "
                "a GRPO or RLOO stage's reward_model_run"
            )
        return cls(chaining.base_ref(config), files.adapter, config.model.chat_template, config.data.system_prompt)

    def encode(self, messages: list[dict[str, str]]) -> Any:
        from workbench.data.formats import with_system

        messages = with_system(messages, self.system_prompt)  # type: ignore[arg-type]
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        import torch

        return torch.tensor([ids], device=self.device)

    def logits(self, messages: list[dict[str, str]]) -> Any:
        """Next-token logits after the conversation (what tests compare with plain PEFT)."""
        import torch

        with torch.no_grad():
            return self.model(input_ids=self.encode(messages)).logits[0, -1].float().cpu()

    def stream(
        self,
        messages: list[dict[str, str]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        adapter: bool = True,
    ) -> Iterator[str]:
        """Yield the reply piece by piece as it is generated; closing the generator stops the generation.

        `adapter=False` answers with the adapter disabled (the base model's answer) without a second copy.
        """
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _StopWhenClosed(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                import torch

                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        # Temperature 0 means greedy decoding: the same prompt always gives the same reply.
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {}
        kwargs = {
            "input_ids": self.encode(messages),
            "max_new_tokens": max_new_tokens,
            "streamer": streamer,
            "pad_token_id": self.tokenizer.pad_token_id,
            "do_sample": False,
            "stopping_criteria": StoppingCriteriaList([_StopWhenClosed()]),
            **sampling,
        }
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with nullcontext(self.model) if adapter or not self.has_adapter else self.base() as model:
                    model.generate(**kwargs)
            except BaseException as err:  # noqa: B036  re-raised in the caller's thread below
                failure.append(err)
                streamer.end()  # otherwise the caller would wait for text forever

        thread = threading.Thread(target=generate, daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            stop.set()
            thread.join()
        if failure:
            raise failure[0]

    def reply(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        return "".join(self.stream(messages, **kwargs))
