"""Ollama's Modelfile beside a GGUF: `FROM`, a `TEMPLATE` in Go's text/template syntax, `SYSTEM` and the stop
tokens, such that Ollama builds exactly the prompt the tokenizer's Jinja chat template builds.

A Jinja template can be any program, so it is not translated from its source: it is rendered on probe
conversations, and where every turn comes out as `<before role><role><after role><content><after content>`
(ChatML's `<|im_start|>user\\n...<|im_end|>\\n` and its kin), those pieces, any text before the first turn and a
default system prompt are read off. The Go template built from them is then checked against the Jinja template
on more conversations, rendered the way Ollama renders (its server puts the Modelfile's SYSTEM first when a chat
has no system message; consecutive messages of one role are merged), and refused where any prompt differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.export.gguf import GgufExport, export_gguf, model_folder
from workbench.runs.files import RunFiles, write_text_atomic

Message = dict[str, str]

# Probe contents: plain words that no template adds or changes.
_S, _U, _A, _V = "Zsysprobe", "Zuserprobe", "Zassistantprobe", "Zsecondprobe"
# Conversations a translation must render exactly as the Jinja template does before it is used.
CHECK_CONVERSATIONS: tuple[tuple[Message, ...], ...] = (
    ({"role": "user", "content": "Hi there!"},),
    ({"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}),
    (
        {"role": "user", "content": "Line one\nline two, with {braces} and ünïcode"},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "And then?"},
    ),
    (
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Goodbye"},
    ),
)


class TemplateTranslationError(WorkbenchError):
    """A chat template that has no Go-template form here; the message names the file and what differed."""

    category = "config"


@dataclass(frozen=True)
class TurnFormat:
    """A chat template whose turns are `before_role + role + after_role + content + after_content`."""

    prefix: str
    before_role: str
    after_role: str
    after_content: str
    default_system: str | None

    def go_template(self) -> str:
        """The TEMPLATE for Ollama: its `.Messages` (each with `.Role` and `.Content`), then the reply's opening."""
        return (
            f"{self.prefix}{{{{ range .Messages }}}}{self.before_role}{{{{ .Role }}}}{self.after_role}"
            f"{{{{ .Content }}}}{self.after_content}{{{{ end }}}}{self.before_role}assistant{self.after_role}"
        )

    def render(self, messages: list[Message] | tuple[Message, ...], system: str | None) -> str:
        """The prompt Ollama builds from `messages` with this template and a Modelfile SYSTEM of `system`."""
        turns = [
            f"{self.before_role}{m['role']}{self.after_role}{m['content']}{self.after_content}"
            for m in ollama_messages(messages, system)
        ]
        return f"{self.prefix}{''.join(turns)}{self.before_role}assistant{self.after_role}"

    def stop_tokens(self, eos_token: str | None) -> list[str]:
        """Where a reply ends: the end of a turn, the start of another, the end-of-sequence token."""
        candidates = (self.after_content.strip(), self.before_role.strip(), eos_token or "")
        return [token for token in dict.fromkeys(candidates) if token]


def ollama_messages(messages: list[Message] | tuple[Message, ...], system: str | None) -> list[Message]:
    """The messages Ollama hands its template: SYSTEM first when the chat has no system message, then one
    message per run of consecutive messages of one role (joined by a blank line)."""
    messages = [dict(m) for m in messages]
    if system and messages and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    collated: list[Message] = []
    for message in messages:
        if collated and collated[-1]["role"] == message["role"]:
            collated[-1]["content"] += "\n\n" + message["content"]
        else:
            collated.append(message)
    return collated


def read_chat_template(model_dir: Path) -> tuple[str, dict[str, str]]:
    """The chat template of a saved tokenizer and its special tokens ({"eos_token": ..., ...})."""
    config_file = model_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    template = config.get("chat_template")
    if (model_dir / "chat_template.jinja").is_file():
        template = (model_dir / "chat_template.jinja").read_text()
    if isinstance(template, list):  # named templates: the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    if not template:
        raise TemplateTranslationError(f"{model_dir}: the tokenizer has no chat template (tokenizer_config.json)")
    tokens = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            tokens[key] = value
    return template, tokens


def render_jinja(
    template: str,
    messages: list[Message] | tuple[Message, ...],
    tokens: dict[str, str],
    add_generation_prompt: bool = True,
) -> str:
    """Render a chat template as transformers' `apply_chat_template(..., tokenize=False)` does, without
    importing transformers: the same sandboxed Jinja environment and globals."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateTranslationError(f"the chat template refused a conversation: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, indent=indent, ensure_ascii=False)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=list(messages), add_generation_prompt=add_generation_prompt, **tokens
    )


def turn_format(template: str, tokens: dict[str, str], where: str) -> TurnFormat:
    """Read the turn format off a Jinja chat template and check it; TemplateTranslationError where it has none."""

    def refuse(why: str) -> TemplateTranslationError:
        return TemplateTranslationError(
            f"{where}: the chat template cannot be written as an Ollama TEMPLATE ({why}); only templates whose "
            "turns are `<marker>role<marker>content<marker>` (ChatML and its kin) are translated"
        )

    def render(messages: list[Message], add_generation_prompt: bool = True) -> str:
        try:
            return render_jinja(template, messages, tokens, add_generation_prompt)
        except Exception as err:
            raise refuse(f"rendering a probe conversation failed: {err}") from err

    full = render(
        [
            {"role": "system", "content": _S},
            {"role": "user", "content": _U},
            {"role": "assistant", "content": _A},
            {"role": "user", "content": _V},
        ]
    )
    places, start = [], 0
    for probe in (_S, _U, _A, _V):
        start = full.find(probe, start)
        if start < 0:
            raise refuse(f"a message's text does not appear in the prompt as written: {probe!r}")
        places.append(start)
        start += len(probe)
    before_system = full[: places[0]]
    to_user = full[places[0] + len(_S) : places[1]]
    to_assistant = full[places[1] + len(_U) : places[2]]
    to_second = full[places[2] + len(_A) : places[3]]
    tail = full[places[3] + len(_V) :]
    cut = to_user.rfind("user")
    if cut < 0:
        raise refuse("the role name does not appear before the user's message")
    between, after_role = to_user[:cut], to_user[cut + len("user") :]
    if to_assistant != between + "assistant" + after_role or to_second != to_user or tail != to_assistant:
        raise refuse("its turns are not all written the same way")
    # What ends a turn: the text after the last reply, with no generation prompt after it.
    ending = render([{"role": "user", "content": _U}, {"role": "assistant", "content": _A}], False)
    after_content = ending[ending.rfind(_A) + len(_A) :]
    if not between.startswith(after_content):
        raise refuse("what ends a turn is not what starts the next")
    before_role = between[len(after_content) :]
    opening = before_role + "system" + after_role
    if not before_system.endswith(opening):
        raise refuse("the system message is not written as a turn")
    prefix = before_system[: -len(opening)]
    lone = render([{"role": "user", "content": _U}])
    user_turn = f"{before_role}user{after_role}{_U}{after_content}{before_role}assistant{after_role}"
    default_system = None
    if lone != prefix + user_turn:
        start = prefix + opening
        if not (lone.startswith(start) and lone.endswith(after_content + user_turn)):
            raise refuse("a conversation without a system message is not a prefix and its turns")
        default_system = lone[len(start) : -len(after_content + user_turn)]
    found = TurnFormat(prefix, before_role, after_role, after_content, default_system)
    if _has_braces(found):
        raise refuse("its markers hold `{{`, which Go's templates would read as an action")
    for number, conversation in enumerate(CHECK_CONVERSATIONS, 1):
        expected = render(list(conversation))
        got = found.render(conversation, default_system)
        if got != expected:
            at = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), len(got))
            raise refuse(f"check conversation {number} differs at character {at}: {expected[at : at + 40]!r}")
    return found


def _has_braces(found: TurnFormat) -> bool:
    pieces = (found.prefix, found.before_role, found.after_role, found.after_content)
    return any("{{" in piece or "}}" in piece for piece in pieces)


def modelfile_text(gguf_name: str, found: TurnFormat, system: str | None, stops: list[str]) -> str:
    """A Modelfile for `ollama create NAME -f Modelfile`, in the GGUF's folder."""
    for label, text in (("TEMPLATE", found.go_template()), ("SYSTEM", system or "")):
        if '"""' in text:
            raise TemplateTranslationError(f'the Modelfile\'s {label} would hold """, which ends it early: {text!r}')
    lines = [
        "# Made by Workbench. In this folder: ollama create NAME -f Modelfile, then ollama run NAME",
        f"FROM ./{gguf_name}",
        f'TEMPLATE """{found.go_template()}"""',
    ]
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f"PARAMETER stop {json.dumps(stop)}" for stop in stops]
    return "\n".join(lines) + "\n"


def write_modelfile(gguf: Path, model_dir: Path, system_prompt: str | None = None) -> Path:
    """Write `Modelfile` beside `gguf` from the chat template saved in `model_dir`; returns its path.

    SYSTEM is the run's system prompt, else the chat template's default (if it has one).
    """
    template, tokens = read_chat_template(model_dir)
    found = turn_format(template, tokens, str(model_dir))
    system = system_prompt or found.default_system
    path = gguf.parent / "Modelfile"
    write_text_atomic(path, modelfile_text(gguf.name, found, system, found.stop_tokens(tokens.get("eos_token"))))
    return path


def parse_modelfile(text: str) -> dict[str, Any]:
    """FROM, TEMPLATE, SYSTEM and the stop list of a Modelfile this module wrote (for tests and reports)."""
    found: dict[str, Any] = {"stop": []}
    rest = text
    while rest:
        line, _, rest = rest.partition("\n")
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        if value.startswith('"""'):
            body = value[3:] + "\n" + rest
            value, _, rest = body.partition('"""')
            rest = rest.lstrip("\n")
        if keyword == "PARAMETER":
            name, _, raw = value.partition(" ")
            found.setdefault(name, []).append(json.loads(raw))
        else:
            found[keyword] = value
    return found


def export_ollama(
    files: RunFiles, quant: str = "f16", output_dir: Path | None = None, check: bool = True
) -> tuple[Path, GgufExport]:
    """The run's model as a GGUF (see `gguf.export_gguf`) with a Modelfile beside it; the chat template is
    translated before anything is converted, so a template Ollama cannot take is refused at once."""
    model = model_folder(files)
    template, tokens = read_chat_template(model)
    turn_format(template, tokens, str(model))
    exported = export_gguf(files, [quant], output_dir, check)[0]
    modelfile = write_modelfile(exported.path, model, files.read_config().data.system_prompt)
    return modelfile, exported
