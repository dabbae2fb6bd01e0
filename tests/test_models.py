"""Model references and the one-time conversion of the bundled GGUF into a plain model folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from workbench import models
from workbench.errors import ModelLoadError


def test_bundled_key_and_its_hub_id_resolve_to_the_local_copy(model_ref):
    assert model_ref.base_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct").path) == model_ref.path
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (models.Path(model_ref.path) / name).is_file()


def test_local_folder_resolves_to_itself(model_ref):
    ref = models.resolve(model_ref.path)
    assert ref.path == ref.base_name == model_ref.path


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("/no/such/model", "no model folder at"),
        ("./missing-model", "no model folder at"),
        ("not a model", "hub id of the form org/name"),
    ],
)
def test_bad_references_say_what_is_wrong(ref, words):
    assert words in models.check_model_ref(ref)
    with pytest.raises(ModelLoadError, match="model.name_or_path"):
        models.resolve(ref)


def test_a_path_that_is_no_model_folder_gets_one_message_whatever_it_is(tmp_path):
    # Missing, a file, a folder of something else: the same words, so the message tells nobody what exists.
    (tmp_path / "file.txt").write_text("secret")
    messages = {
        models.check_model_ref(str(p)).replace(str(p), "PATH")
        for p in (tmp_path / "gone", tmp_path / "file.txt", tmp_path)
    }
    assert len(messages) == 1 and "no model folder at 'PATH'" in messages.pop()


def test_hub_ids_pass_the_cheap_check():
    assert models.check_model_ref("Qwen/Qwen2.5-0.5B-Instruct") is None


def test_bundled_model_answers_like_the_original(model_ref):
    import torch

    tokenizer = models.load_tokenizer(model_ref)
    model = models.load_model(model_ref)
    assert model.name_or_path == "HuggingFaceTB/SmolLM2-135M-Instruct"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


@pytest.mark.slow
def test_two_processes_converting_at_once_leave_one_whole_folder(tmp_path):
    env = {**os.environ, "WORKBENCH_MODELS": str(tmp_path / "models"), "WORKBENCH_HOME": str(tmp_path / "home")}
    code = "from workbench import models; print(models.resolve('smollm2-135m-instruct').path)"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert models.load_model(models.ModelRef(outputs[0], "x")).num_parameters() > 100_000_000
