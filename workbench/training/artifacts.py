"""What a finished run leaves beside its adapter: a model card and a manifest for reproducing it."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
from pathlib import Path
from typing import Any

import yaml

from workbench.config import RunConfig
from workbench.methods import MethodSpec
from workbench.training.hardware import Hardware

_PACKAGES = ["workbench", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "bitsandbytes"]


def manifest(config: RunConfig, hw: Hardware, dataset_hashes: list[str]) -> dict[str, Any]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "hardware": hw.as_dict(),
        "seed": config.train.seed,
        "dataset_sha256": dataset_hashes,
    }


_LOADING = {
    "peft": """```python
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("path/to/this/folder")
```""",
    "model": """A whole model: every weight is here.

```python
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")
```""",
    "bottleneck": """Bottleneck adapters (Houlsby et al., 2019): `bottleneck_adapter.safetensors` holds their weights
only, `bottleneck_config.json` their shape. Add them to the base model with Workbench:

```python
from transformers import AutoModelForCausalLM
from workbench.adapters import bottleneck
model = bottleneck.load(AutoModelForCausalLM.from_pretrained("{base}"), "path/to/this/folder")
```""",
}


def model_card(
    config: RunConfig,
    spec: MethodSpec,
    base_name: str,
    dataset_hashes: list[str],
    final_loss: float | None,
    steps: int,
    best: dict[str, Any] | None = None,
) -> str:
    """A Hugging Face model card (README.md) naming base, method, hyperparameters, data and result.

    `best`: the best checkpoint's step and metric when it, not the last step, is the result (training/best.py).
    """
    library = {"peft": "peft", "model": "transformers"}.get(spec.artifact)
    meta = {"base_model": base_name, **({"library_name": library} if library else {})}
    front = yaml.safe_dump({**meta, "tags": ["workbench", config.method.name, config.stage.name]}, sort_keys=False)
    settings = yaml.safe_dump(
        {
            "stage": config.stage.model_dump(),
            "method": config.method.model_dump(),
            "train": config.train.model_dump(),
            "data": _data_summary(config),
        },
        sort_keys=False,
    )
    loss = f"{final_loss:.4f}" if final_loss is not None else "not logged"
    hashes = "\n".join(f"- `{h}`" for h in dataset_hashes)
    if best:
        ((metric, value),) = best["best_metric"].items()
        stopped = "; training stopped early" if best.get("stopped_early") else ""
        loss += (
            f". The weights are the best checkpoint's, step **{best['best_step']}** ({metric} {value:.4f}{stopped})"
        )
    return f"""---
{front}---

# {config.name or "Workbench adapter"}

**{spec.title}** fine-tuning of [`{base_name}`](https://huggingface.co/{base_name}), trained with Workbench
({config.stage.name}, {steps} steps). Final training loss: **{loss}**.

## Load it

{_LOADING[spec.artifact].replace("{base}", base_name)}

## Training data (SHA-256 of each file)

{hashes}

## Settings

```yaml
{settings}```
"""


def _data_summary(config: RunConfig) -> dict[str, Any]:
    d = config.data
    return {
        "datasets": [Path(s.path).name for s in d.datasets],
        "cutoff_len": d.cutoff_len,
        "train_on_prompt": d.train_on_prompt,
        "packing": d.packing,
        "val_size": d.val_size,
        "test_size": d.test_size,
        "uses": [s.use for s in d.datasets],
    }
