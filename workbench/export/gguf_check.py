"""The check after a GGUF is written, run in the export child (`python -m workbench.export gguf-check ...`).

A model file loads back through transformers' GGUF loader (which dequantizes it) and answers a few prompts
greedily beside the model folder it was made from: the report gives the replies that are the same token for token,
the share of reply tokens before the first difference, and the share of the reference reply's tokens the GGUF
model also ranks first when fed that reply (which, unlike the first, does not let one early difference decide
the rest). A LoRA file's tensors are compared with the adapter's, value for value.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from workbench.runs.files import write_json_atomic

# Short, varied chat prompts; enough tokens to see drift without making the check slow on a CPU.
PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain gravity in one sentence.",
    "Name three colours.",
)
MAX_NEW_TOKENS = 24


def check_files(model_dir: Path, ggufs: list[Path], report: Path) -> None:
    """Compare each GGUF model file with `model_dir`; write {file name: findings} to `report`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]
        for text in PROMPTS
    ]
    reference = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    expected = [_greedy(reference, ids, tokenizer.eos_token_id) for ids in prompts]
    del reference
    findings = {}
    for path in ggufs:
        metadata = read_metadata(path)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
        replies = [_greedy(model, ids, tokenizer.eos_token_id) for ids in prompts]
        ranked_first = [_ranked_first(model, ids, want) for ids, want in zip(prompts, expected, strict=True)]
        del model
        before_difference = [_common_prefix(got, want) for got, want in zip(replies, expected, strict=True)]
        findings[path.name] = {
            "prompts": len(PROMPTS),
            "max_new_tokens": MAX_NEW_TOKENS,
            "identical_replies": sum(got == want for got, want in zip(replies, expected, strict=True)),
            "tokens_before_first_difference": round(sum(before_difference) / sum(map(len, expected)), 4),
            "reference_tokens_ranked_first": round(sum(ranked_first) / sum(map(len, expected)), 4),
            "chat_template_in_file": metadata["chat_template"] == tokenizer.chat_template,
            "stop_token_in_file": metadata["eos_token"],
            "stop_token_matches": metadata["eos_token"] == tokenizer.eos_token,
            "replies": [tokenizer.decode(reply) for reply in replies],
            "reference_replies": [tokenizer.decode(reply) for reply in expected],
        }
    write_json_atomic(report, findings)


def read_metadata(path: Path) -> dict[str, Any]:
    """The chat template and end-of-sequence token a GGUF file carries."""
    from gguf import GGUFReader

    fields = GGUFReader(path).fields

    def value(key: str) -> Any:
        return fields[key].contents() if key in fields else None

    eos = value("tokenizer.ggml.eos_token_id")
    tokens = fields.get("tokenizer.ggml.tokens")
    return {
        "chat_template": value("tokenizer.chat_template"),
        "eos_token": tokens.contents(eos) if tokens is not None and eos is not None else None,
    }


def check_lora(adapter_dir: Path, gguf: Path, report: Path) -> None:
    """Compare a GGUF LoRA's tensors with the adapter's LoRA A and B matrices; write the findings to `report`.

    The converter stores them in f16 and reorders the rows of the query and key B matrices into llama.cpp's
    rotary layout, so each adapter matrix must equal a file tensor exactly after rounding to f16, or up to the
    order of its rows.
    """
    import numpy as np
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    reader = GGUFReader(gguf)
    weights = load_file(adapter_dir / "adapter_model.safetensors")
    lora = {name: array for name, array in weights.items() if ".lora_A." in name or ".lora_B." in name}

    def digest(array: Any) -> str:
        return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()

    def rows_digest(array: Any) -> str:
        matrix = np.asarray(array).reshape(array.shape[0], -1)
        return digest(matrix[np.lexsort(matrix.T[::-1])])

    exact = [digest(t.data) for t in reader.tensors]
    reordered = [rows_digest(t.data) for t in reader.tensors]
    same, same_rows, unmatched = 0, 0, []
    for name, array in sorted(lora.items()):
        half = array.astype(np.float16)
        if digest(half) in exact:
            exact.remove(digest(half))
            same += 1
        elif rows_digest(half) in reordered:
            reordered.remove(rows_digest(half))
            same_rows += 1
        else:
            unmatched.append(name)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    alpha = reader.fields["adapter.lora.alpha"].contents() if "adapter.lora.alpha" in reader.fields else None
    write_json_atomic(
        report,
        {
            gguf.name: {
                "adapter_tensors": len(lora),
                "file_tensors": len(reader.tensors),
                "identical": same,
                "identical_but_row_order": same_rows,
                "unmatched": unmatched,
                "alpha": alpha,
                "alpha_matches": alpha == config.get("lora_alpha"),
                "general_type": reader.fields["general.type"].contents() if "general.type" in reader.fields else None,
            }
        },
    )


def _greedy(model: Any, ids: Any, eos_token_id: int) -> list[int]:
    import torch

    with torch.no_grad():
        output = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            pad_token_id=eos_token_id,
        )
    return output[0, ids.shape[1] :].tolist()


def _ranked_first(model: Any, ids: Any, reply: list[int]) -> int:
    """How many of `reply`'s tokens the model ranks first when fed the prompt and the reply so far."""
    import torch

    if not reply:
        return 0
    sequence = torch.cat([ids, torch.tensor([reply])], dim=1)
    with torch.no_grad():
        logits = model(input_ids=sequence).logits[0]
    predicted = logits[ids.shape[1] - 1 : -1].argmax(-1).tolist()
    return sum(p == r for p, r in zip(predicted, reply, strict=True))


def _common_prefix(got: list[int], want: list[int]) -> int:
    count = 0
    for a, b in zip(got, want, strict=False):
        if a != b:
            break
        count += 1
    return count
