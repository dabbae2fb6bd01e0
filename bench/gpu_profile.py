"""Where a 1B LoRA step's time goes on the GPU, bf16 against fp32: torch.profiler around steps 3-5 of the real
worker (run in this process), for the anomaly bench/gpu.py found: bf16 0.62 s/step against fp32's 0.16, which
was cuDNN's attention planning every example length (bench/results/gpu-profile-cudnn.txt).

    python bench/gpu_profile.py      (on a CUDA machine)
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"

import argparse  # noqa: E402

from bench.gpu import CASES, SHAPES, build_model, make_config  # noqa: E402


def main() -> None:
    import torch
    import transformers

    work = Path(tempfile.mkdtemp(dir="/dev/shm"))
    os.environ["WORKBENCH_HOME"] = str(work / "home")
    os.environ["WORKBENCH_MODELS"] = str(work / "models")
    folder = work / "model-1b"
    build_model("1b", SHAPES["1b"], folder, "cuda")
    print("tf32 matmul:", torch.backends.cuda.matmul.allow_tf32, "cudnn tf32:", torch.backends.cudnn.allow_tf32)
    args = argparse.Namespace(steps=8, tiny=False)
    original = transformers.Trainer.training_step
    state = {}

    def profiled_step(self, *a, **k):
        step = self.state.global_step
        if step == 3:
            torch.cuda.synchronize()
            state["prof"] = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
            )
            state["prof"].__enter__()
            state["t"] = time.time()
        out = original(self, *a, **k)
        if step == 5:
            torch.cuda.synchronize()
            wall = time.time() - state["t"]
            prof = state.pop("prof")
            prof.__exit__(None, None, None)
            avg = prof.key_averages()
            print(f"=== {state['case']}: 3 micro-steps (fwd+bwd, no optimizer) in {wall:.3f} s wall")
            print(avg.table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=60))
            print(avg.table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60))
        return out

    transformers.Trainer.training_step = profiled_step
    from workbench.runs import worker
    from workbench.runs.queue import RunQueue
    from workbench.runs.submission import freeze

    queue = RunQueue()
    for case in [c for c in CASES if c.name in ("1b-lora-bf16", "1b-lora-fp32")]:
        state["case"] = case.name
        job = queue.submit(freeze(make_config(case, folder, args)), start=False)
        claimed = queue.store.claim_next(1)  # this process is the worker: profiled in place
        began = time.time()
        code = worker.main([job.run_dir, "--db", str(queue.store.db), "--claim", claimed.claim])
        print(f"=== {case.name}: worker rc {code} in {time.time() - began:.1f} s", flush=True)


if __name__ == "__main__":
    main()
