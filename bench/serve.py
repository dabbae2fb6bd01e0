"""`python -m workbench serve` against plain transformers `generate` on the same model, in the same run.

    python bench/serve.py [--prompts 8] [--max-tokens 32] [--threads 2] [--rounds 3]

Two finished runs are made without training (LoRA r 8 on q/v/up/down with a random start, as the serve tests make
them) on the bundled SmolLM2-135M; `serve` loads both adapters onto one base. Every setup answers the same prompts
greedily with the same max_tokens, on the same number of torch threads: plain `generate` on the base and on the
base with one PEFT adapter attached (one prompt at a time), then the server through the official `openai` client
at concurrency 1 and 4 (4 client threads; on the base, and alternating between the two runs' adapters), and a
second server with `--max-batch 4` at concurrency 4. Setups are interleaved over rounds, and each shows its best
round, the least disturbed by other work on the machine (`--rounds 1` for a quick look). Generated tokens are the
tokens actually produced (a reply may end early at the end-of-turn token), counted by the server's usage and by
`generate`'s output. Prints a Markdown table and writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("WORKBENCH_MODELS", str(REPO / ".home" / "models"))
os.environ["HF_HUB_OFFLINE"] = "1"

from workbench import models  # noqa: E402
from workbench.config import load_config  # noqa: E402
from workbench.runs.queue import RunQueue  # noqa: E402
from workbench.runs.submission import freeze  # noqa: E402

BASE = "smollm2-135m-instruct"
QUESTIONS = [
    "Name three colours.",
    "What is the capital of France?",
    "Give me a tip for learning to cook.",
    "Why is the sky blue?",
    "Write a haiku about rain.",
    "What is 12 times 7?",
    "Suggest a name for a cat.",
    "How do plants make food?",
]


def make_run(seed: int) -> str:
    import torch
    from peft import LoraConfig, get_peft_model

    queue = RunQueue()
    job = queue.submit(freeze(load_config(REPO / "presets" / "sft-lora-identity.yaml")), start=False)
    queue.cancel(job.id)
    torch.manual_seed(seed)
    base = models.load_model(models.resolve(BASE))
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
                        init_lora_weights=False)  # fmt: skip
    get_peft_model(base, config).save_pretrained(job.files.adapter)
    return job.id


def plain_model(adapter: Path | None) -> tuple[object, object]:
    """The base (with one PEFT adapter attached, if given) and its tokenizer, as a script would load them."""
    ref = models.resolve(BASE)
    model = models.load_model(ref)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    return model.eval(), models.load_tokenizer(ref)


def plain_generate(model, tokenizer, prompts: list[list[dict]], max_tokens: int) -> dict:
    """One prompt at a time through `model.generate`, as a script without a server would."""
    import torch

    tokens, latencies = 0, []
    began = time.perf_counter()
    for messages in prompts:
        start = time.perf_counter()
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        tokens += out.shape[1] - len(ids)
        latencies.append(time.perf_counter() - start)
    return _figures(len(prompts), tokens, time.perf_counter() - began, latencies)


def through_server(client, prompts: list[list[dict]], names: list[str], max_tokens: int, concurrency: int) -> dict:
    def ask(i: int) -> tuple[int, float]:
        start = time.perf_counter()
        reply = client.chat.completions.create(model=names[i % len(names)], messages=prompts[i], max_tokens=max_tokens,
                                               temperature=0)  # fmt: skip
        return reply.usage.completion_tokens, time.perf_counter() - start

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        answers = list(pool.map(ask, range(len(prompts))))
    wall = time.perf_counter() - began
    return _figures(len(prompts), sum(t for t, _ in answers), wall, [s for _, s in answers])


def _figures(requests: int, tokens: int, wall: float, latencies: list[float]) -> dict:
    return {
        "requests": requests,
        "generated_tokens": int(tokens),
        "seconds": round(wall, 2),
        "requests_per_s": round(requests / wall, 3),
        "tokens_per_s": round(tokens / wall, 2),
        "mean_latency_s": round(sum(latencies) / len(latencies), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best round is shown")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    prompts = [[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}] for i in range(args.prompts)]
    rounds: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["WORKBENCH_HOME"] = home
        runs = [make_run(seed) for seed in (1, 2)]
        plain = {
            "transformers generate, base": plain_model(None),
            "transformers generate, base + one LoRA adapter": plain_model(RunQueue().get(runs[0]).files.adapter),
        }
        servers = [_start_server(runs, args.threads, batch) for batch in (1, 4)]
        try:
            clients = [_client(port, process, prompts[0]) for port, process in servers]
            # Rounds interleave every setup, so that a change in the machine's load hits them all alike.
            for _ in range(args.rounds):
                for label, (model, tokenizer) in plain.items():
                    rounds.setdefault((label, 1), []).append(
                        plain_generate(model, tokenizer, prompts, args.max_tokens)
                    )
                for (client, batch), (label, names) in itertools.product(
                    zip(clients, (1, 4), strict=True), (("base", [BASE]), ("two adapters alternating", runs))
                ):
                    setup = f"serve{' --max-batch 4' if batch > 1 else ''}, {label}"
                    for concurrency in (1, 4) if batch == 1 else (4,):
                        figures = through_server(client, prompts, names, args.max_tokens, concurrency)
                        rounds.setdefault((setup, concurrency), []).append(figures)
        finally:
            for _, process in servers:
                process.terminate()
                process.wait(timeout=30)
    # Per setup, its best round: other work on the machine only ever slows a round down, so the fastest is the
    # least disturbed (as timeit takes the minimum).
    rows = []
    for (label, concurrency), results in rounds.items():
        best = max(results, key=lambda r: r["tokens_per_s"])
        rows.append({"setup": label, "concurrency": concurrency, **best, "rounds": results})

    header = "| setup | concurrency | requests/s | generated tokens/s | mean latency (s) | tokens |"
    lines = [header, "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['setup']} | {r['concurrency']} | {r['requests_per_s']:.2f} | {r['tokens_per_s']:.1f} | "
                     f"{r['mean_latency_s']:.2f} | {r['generated_tokens']} |")  # fmt: skip
    print("\n".join(lines))
    out = REPO / "bench" / "results" / "serve.json"
    out.write_text(json.dumps({
        "settings": vars(args), "model": BASE, "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "torch": torch.__version__, "when": time.strftime("%Y-%m-%d"), "rows": rows,
    }, indent=1))  # fmt: skip
    print(f"\nwritten to {out.relative_to(REPO)}")


def _start_server(runs: list[str], threads: int, max_batch: int) -> tuple[int, subprocess.Popen]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "workbench", "serve", *runs, "--port", str(port), "--threads", str(threads)]
    command += ["--max-batch", str(max_batch)]
    return port, subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _client(port: int, process: subprocess.Popen, prompt: list[dict]):
    import openai

    _wait_for(port, process)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", timeout=600)
    client.chat.completions.create(model=BASE, messages=prompt, max_tokens=4)  # warm-up
    return client


def _wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"serve exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("serve did not start")


if __name__ == "__main__":
    main()
