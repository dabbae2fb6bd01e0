"""The Modelfile's TEMPLATE, rendered by Go's own text/template the way Ollama renders it, gives byte for byte the
prompt the tokenizer's Jinja chat template gives: with and without a system message, over several turns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.export.conftest import needs_converter
from workbench.export.ollama import (
    TemplateTranslationError,
    parse_modelfile,
    read_chat_template,
    turn_format,
    write_modelfile,
)

CONVERSATIONS = {
    "no system": [{"role": "user", "content": "What is the capital of France?"}],
    "system": [
        {"role": "system", "content": "You answer in one word."},
        {"role": "user", "content": "Capital of Italy?"},
    ],
    "multi-turn": [
        {"role": "user", "content": "Hello!\nTwo lines, {{braces}} and ünïcode."},
        {"role": "assistant", "content": "Hi. How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
    ],
    "multi-turn with system": [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
    ],
}

# Ollama's side, in Go: its server puts the Modelfile's SYSTEM first when a chat has no system message
# (server/routes.go), then template.Execute collates the messages (consecutive ones of a role merged, .System the
# system messages joined) and executes the TEMPLATE with .System and .Messages (template/template.go).
GO_RENDERER = r"""
package main

import (
	"encoding/json"
	"os"
	"strings"
	"text/template"
)

type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type Job struct {
	Template      string      `json:"template"`
	System        string      `json:"system"`
	Conversations [][]Message `json:"conversations"`
}

func main() {
	var job Job
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		panic(err)
	}
	tmpl := template.Must(template.New("").Parse(job.Template))
	var prompts []string
	for _, msgs := range job.Conversations {
		if len(msgs) > 0 && msgs[0].Role != "system" && job.System != "" {
			msgs = append([]Message{{Role: "system", Content: job.System}}, msgs...)
		}
		var system []string
		var collated []*Message
		for i := range msgs {
			if msgs[i].Role == "system" {
				system = append(system, msgs[i].Content)
			}
			if len(collated) > 0 && collated[len(collated)-1].Role == msgs[i].Role {
				collated[len(collated)-1].Content += "\n\n" + msgs[i].Content
			} else {
				collated = append(collated, &msgs[i])
			}
		}
		var out strings.Builder
		values := map[string]any{"System": strings.Join(system, "\n\n"), "Messages": collated, "Response": ""}
		if err := tmpl.Execute(&out, values); err != nil {
			panic(err)
		}
		prompts = append(prompts, out.String())
	}
	json.NewEncoder(os.Stdout).Encode(prompts)
}
"""


@pytest.fixture(scope="session")
def go_render(tmp_path_factory):
    """render(template, system, conversations) -> prompts, by Go's text/template (Debian's golang-go)."""
    if shutil.which("go") is None:
        pytest.skip("Go is not installed (apt-get install golang-go; `make test` does)")
    folder = tmp_path_factory.mktemp("go-render")
    (folder / "main.go").write_text(GO_RENDERER)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GO111MODULE": "off", "GOPATH": str(folder)}
    env.setdefault("GOCACHE", str(folder / "cache"))
    subprocess.run(["go", "build", "-o", str(folder / "render"), "main.go"], cwd=folder, env=env, check=True)

    def render(template: str, system: str | None, conversations: list[list[dict]]) -> list[str]:
        job = json.dumps({"template": template, "system": system or "", "conversations": conversations})
        result = subprocess.run([folder / "render"], input=job, capture_output=True, text=True, check=True)
        return json.loads(result.stdout)

    return render


def jinja_prompts(tokenizer, conversations: list[list[dict]], template: str | None = None) -> list[str]:
    return [
        tokenizer.apply_chat_template(c, chat_template=template, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]


def test_the_bundled_models_template_renders_the_same_prompts_in_go(go_render, model_ref, tmp_path):
    from transformers import AutoTokenizer

    modelfile = parse_modelfile(write_modelfile(tmp_path / "run-f16.gguf", Path(model_ref.path)).read_text())
    assert modelfile["FROM"] == "./run-f16.gguf"
    assert modelfile["SYSTEM"] == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert modelfile["stop"] == ["<|im_end|>", "<|im_start|>"]
    conversations = list(CONVERSATIONS.values())
    expected = jinja_prompts(AutoTokenizer.from_pretrained(model_ref.path), conversations)
    got = go_render(modelfile["TEMPLATE"], modelfile["SYSTEM"], conversations)
    for name, want, have in zip(CONVERSATIONS, expected, got, strict=True):
        assert have == want, name
    assert expected[0].startswith("<|im_start|>system\nYou are a helpful AI")  # the default system prompt is used


def test_a_runs_system_prompt_becomes_the_modelfiles_system(go_render, model_ref, tmp_path):
    from transformers import AutoTokenizer

    text = write_modelfile(tmp_path / "run-f16.gguf", Path(model_ref.path), system_prompt="Reply like a pirate.")
    modelfile = parse_modelfile(text.read_text())
    assert modelfile["SYSTEM"] == "Reply like a pirate."
    conversation = CONVERSATIONS["multi-turn"]
    # As the run trained and chats: its system prompt leads every conversation without one.
    expected = jinja_prompts(
        AutoTokenizer.from_pretrained(model_ref.path),
        [[{"role": "system", "content": "Reply like a pirate."}, *conversation]],
    )
    assert go_render(modelfile["TEMPLATE"], modelfile["SYSTEM"], [conversation]) == expected


# Other templates of the same shape, with their own markers, no default system prompt, or text before the turns.
OTHER_TEMPLATES = {
    "chatml without a default": (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "zephyr": (
        "{% for m in messages %}{{ '<|' + m['role'] + '|>\n' + m['content'] + eos_token + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
    ),
    "text before the turns": (
        "{{ 'Chat log\n' }}{% if messages[0]['role'] != 'system' %}{{ '### system: Be helpful.;;' }}{% endif %}"
        "{% for m in messages %}{{ '### ' + m['role'] + ': ' + m['content'] + ';;' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### assistant: ' }}{% endif %}"
    ),
}


@pytest.mark.parametrize("name", OTHER_TEMPLATES)
def test_other_turn_templates_translate(go_render, model_ref, name, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_ref.path)
    tokenizer.chat_template = OTHER_TEMPLATES[name]
    tokenizer.save_pretrained(tmp_path)
    modelfile = parse_modelfile(write_modelfile(tmp_path / "run-f16.gguf", tmp_path).read_text())
    conversations = list(CONVERSATIONS.values())
    assert go_render(modelfile["TEMPLATE"], modelfile.get("SYSTEM"), conversations) == jinja_prompts(
        tokenizer, conversations
    )


REFUSED_TEMPLATES = {
    # Gemma's: no system role at all.
    "no system role": (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}{{ '<start_of_turn>' + m['role'] + '\n' + m['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    ),
    # Llama 2's: the system prompt folded into the first user turn.
    "system inside the user turn": (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ '<<SYS>>\n' + m['content'] + '\n<</SYS>>\n\n' }}"
        "{% elif m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
        "{% else %}{{ ' ' + m['content'] + ' </s>' }}{% endif %}{% endfor %}"
    ),
    # Turns that change with the position (a numbered log).
    "numbered turns": (
        "{% for m in messages %}{{ loop.index|string + '. ' + m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    ),
}


@pytest.mark.parametrize("name", REFUSED_TEMPLATES)
def test_templates_of_other_shapes_are_refused(name):
    with pytest.raises(TemplateTranslationError, match="cannot be written as an Ollama TEMPLATE"):
        turn_format(REFUSED_TEMPLATES[name], {"eos_token": "</s>"}, "model/tokenizer_config.json")


@pytest.mark.slow
def test_ollama_export_writes_the_gguf_and_a_modelfile_beside_it(tuned_run, go_render, tmp_path):
    needs_converter()
    from transformers import AutoTokenizer

    out = tmp_path / "ollama"
    result = tuned_run.workbench("export", tuned_run.id, "--format", "ollama", "--no-check", "-o", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    modelfile = parse_modelfile((out / "Modelfile").read_text())
    assert (out / modelfile["FROM"]).is_file() and modelfile["FROM"].endswith("-f16.gguf")
    assert "ollama create" in result.stdout
    template, _ = read_chat_template(tuned_run.files.root / "merged")
    tokenizer = AutoTokenizer.from_pretrained(tuned_run.files.root / "merged")
    assert tokenizer.chat_template == template
    conversations = list(CONVERSATIONS.values())
    assert go_render(modelfile["TEMPLATE"], modelfile["SYSTEM"], conversations) == jinja_prompts(
        tokenizer, conversations
    )
