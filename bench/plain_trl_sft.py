"""The baseline: a plain TRL SFTTrainer script, as a user would write it, on the workbench's settings.

Usage: python bench/plain_trl_sft.py MODEL_DIR DATA.json SETTINGS.json OUT.json
Settings are the benchmark's shared ones; TRL's own defaults are kept except where they cannot run sensibly on
a CPU (bf16, which is ~50x slower without native support). Prints nothing; writes per-step records to OUT.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # the same as the workbench worker sets

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

LAUNCHED = time.time()

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: E402
from trl import SFTConfig, SFTTrainer  # noqa: E402


class StepTimes(TrainerCallback):
    def __init__(self):
        self.records = []
        self.train_began = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.train_began = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        self.records.append({"step": state.global_step, "time": time.time()})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.records[-1].update(loss=logs["loss"], num_tokens=logs.get("num_tokens"))


def main(model_dir: str, data_path: str, settings_path: str, out_path: str) -> None:
    s = json.loads(open(settings_path).read())
    torch.set_num_threads(s["threads"])
    rows = json.loads(open(data_path).read())[: s["rows"]]
    # The mapping of LLaMA-Factory's alpaca converter: instruction + "\n" + input as the user turn.
    dataset = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["instruction"] + ("\n" + r["input"] if r["input"] else "")}],
                "completion": [{"role": "assistant", "content": r["output"]}],
            }
            for r in rows
        ]
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = SFTConfig(
        output_dir=s["output_dir"],
        max_steps=s["max_steps"],
        learning_rate=s["learning_rate"],
        lr_scheduler_type=s["lr_scheduler_type"],
        per_device_train_batch_size=s["batch_size"],
        max_length=s["cutoff_len"],
        seed=s["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        gradient_checkpointing=s["plain_gradient_checkpointing"],
    )
    peft_config = LoraConfig(
        task_type="CAUSAL_LM", r=s["lora_r"], lora_alpha=s["lora_alpha"], lora_dropout=0.0, target_modules="all-linear"
    )
    times = StepTimes()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[times],
    )
    trainer.train()
    result = {
        "launched": LAUNCHED,
        "train_began": times.train_began,
        "steps": times.records,
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(*sys.argv[1:5])
