"""The page in Chinese: everything it shows, as built and as its events say it, has a translation, and so does
every message of the engine the page can show (errors of the data layer and the config, pre-flight problems,
estimate advice, a run's error). A text without one fails here, naming it."""

from __future__ import annotations

import ast
import json
import re
import string
import unicodedata
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import pytest
import yaml

from tests.conftest import PRESETS, REPO
from workbench import methods, stages
from workbench.config import DataConfig, DatasetSpec, ModelConfig, RunConfig, TrainConfig, load_config
from workbench.data import layouts
from workbench.data.loading import KIND_NAMES
from workbench.errors import ConfigError, FieldProblem
from workbench.runs.store import RunState
from workbench.ui import chat_tab, data_tab, evaluate_tab, evaluation_view, export_tab, i18n, runs_tab, train_tab
from workbench.ui.form import label_text

ZH = "zh-CN"
UI = REPO / "workbench" / "ui"

# Words the Chinese page keeps in English on purpose: names of methods, formats, libraries and units, config keys
# and values a person types or reads in YAML (prompt, auto, sigmoid), symbols (alpha, eps) and example values.
KEPT = set(
    """
    lora dora qlora rslora pissa olora peft trl sft dpo ipo kto orpo simpo cpo grpo rloo slic apo rlhf kl loha lokr
    vera oft boft adalora lycoris houlsby llama adapter liu dettmers yaml cli json jsonl csv parquet utf nul gib mib
    gb mb kb cpu gpu cuda mps apple mlp lstm adamw api id hub hugging face jinja tensorboard trackio mlflow
    bitsandbytes bnb paged workbench gradio alpaca sharegpt openai messages conversations pip install no deps
    prompt query response system history chosen rejected answer label instruction output input from value role
    content columns tags role_tag kto_tag file_name ranking true false null none auto on off random gaussian zero
    sigmoid hinge robust apo_zero dapo dr_grpo exact_match contains_answer format length field frage antwort ada
    lovelace labs alpha beta gamma eps tinit tfinal delta coft top wandb login offline space ui show project sync
    logdir backend store uri experiment nf fp bf int safetensors peftmodel from_pretrained automodelforcausallm
    load adapters bottleneck tokenizer int8 regex ok dropout reward sqrt qr kronecker hadamard init prompts path
    method stage model data train zip datasetdict subset split loss gguf ollama modelfile bleu chrf
    """.split()
)


def english_words(text: str) -> list[str]:
    """The English words of a Chinese text that are not kept on purpose (code, names, identifiers, numbers)."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\{\{\w+\}\}|https?://\S+|<\|[^|]*\|>", " ", text)
    words = []
    for token in re.findall(r"[A-Za-z0-9_./=:+&'-]+", text):
        if len(token) > 1 and token[0] == token[-1] == "'":
            continue  # a quoted name
        token = token.strip(".:'-+/")
        if not token or any(c.isdigit() or c in "_./=&-" for c in token):
            continue  # an identifier, a name (all-linear, P-tuning), a path, a number, a version
        word = token.strip("'")
        if len(word) > 1 and word.lower() not in KEPT:
            words.append(word)
    return words


def config_models() -> dict[str, type]:
    """Every model of the run config by its section (a method's and a stage's own by their name)."""
    found = {"run": RunConfig, "model": ModelConfig, "data": DataConfig, "data.datasets": DatasetSpec}
    found["train"] = TrainConfig
    found |= {f"method.{name}": methods.get(name).params for name in methods.names()}
    found |= {f"stage.{name}": stages.get(name).params for name in stages.names()}
    return found


def test_every_field_of_the_run_config_has_a_chinese_label_and_help_text():
    catalogue = i18n.catalogue(ZH)
    missing = []
    for section, model in config_models().items():
        for name, info in model.model_fields.items():
            if name == "name" and section.startswith(("method.", "stage.")):
                continue  # the picker, not a field
            if isinstance(info.annotation, type) and issubclass(info.annotation, gr.components.Component):
                continue
            if section == "run" and name != "name":
                continue  # the sections themselves
            if label_text(name) not in catalogue:
                missing.append(f"{section}.{name}: label {label_text(name)!r}")
            if info.description not in catalogue:
                missing.append(f"{section}.{name}: help {info.description!r}")
    assert not missing, "fields without Chinese (add them to workbench/ui/locales/zh-CN/schema.yaml):\n" + "\n".join(
        missing
    )


def test_every_name_of_the_registries_and_tables_is_translated():
    catalogue = i18n.catalogue(ZH)
    names = []
    for name in methods.names():
        spec = methods.get(name)
        names += [spec.title, spec.family, spec.description] + ([spec.merge_refusal] if spec.merge_refusal else [])
    for name in stages.names():
        names += [stages.get(name).title, stages.get(name).description]
    names += [*train_tab.DATA_NEEDS.values(), *KIND_NAMES.values(), *layouts.ROLES.values(), *RunState.__args__]
    names += [*runs_tab.TABLE_COLUMNS, *runs_tab.COMPARE_COLUMNS, *runs_tab.LOSS_SERIES, *runs_tab.ACTED.values()]
    names += [*data_tab.SPAN_COLORS, *data_tab.SOURCES.values(), chat_tab.NO_ADAPTER]
    names += [*evaluate_tab.SPLITS.values(), *evaluation_view.METRIC_COLUMNS, *evaluation_view.EXAMPLE_COLUMNS]
    assert [name for name in names if name not in catalogue] == []


def _literal_texts(path: Path) -> list[tuple[int, str]]:
    """The English texts a UI module hands `_` or a translator `t` as literals (a dict literal's values too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        first = node.args[0]
        if name in ("_", "t") and isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.append((node.lineno, first.value))
        elif name in ("_", "t") and isinstance(first, ast.Subscript) and isinstance(first.value, ast.Dict):
            found += [(node.lineno, v.value) for v in first.value.values if isinstance(v, ast.Constant)]
    return found


def test_every_text_the_ui_modules_name_has_a_translation():
    catalogue = i18n.catalogue(ZH)
    missing = [
        f"{path.name}:{line}: {text!r}"
        for path in sorted(UI.glob("*.py"))
        for line, text in _literal_texts(path)
        if text not in catalogue
    ]
    assert not missing, "add them to workbench/ui/locales/zh-CN/:\n" + "\n".join(missing)


def test_the_catalogues_are_consistent():
    """Each English text in one file only; each translation takes the values its English takes (a template of the
    engine's messages the same slots); bold markers that close before Chinese text (Markdown needs a space)."""
    seen: dict[str, str] = {}
    problems = []
    for path in sorted((i18n.LOCALES / ZH).glob("*.yaml")):
        for english, chinese in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            if english in seen:
                problems.append(f"{english!r} is in {seen[english]} and {path.name}")
            seen[english] = path.name
            slots = {name for _, name, _, _ in string.Formatter().parse(english) if name is not None}
            translated = {name for _, name, _, _ in string.Formatter().parse(chinese) if name is not None}
            if slots != translated:
                problems.append(f"{path.name}: {english!r} has {sorted(slots)}, its translation {sorted(translated)}")
            if not _bold_closes(chinese):
                problems.append(f"{path.name}: {chinese!r}: a ** that Markdown does not take as bold")
    assert not problems, "\n".join(problems)


def _bold_closes(text: str) -> bool:
    """Whether each pair of ** opens and closes as CommonMark has it: a closing ** after punctuation must be followed
    by a space or punctuation (Chinese text right after "。**" is not bold), and so for an opening one."""
    text = re.sub(r"\{[^{}]*\}", "X", text)  # a value is text

    def punctuation(char: str) -> bool:
        return unicodedata.category(char).startswith("P") or char in "$+<=>^`|~"

    marks = [m.start() for m in re.finditer(r"\*\*", text)]
    for index, at in enumerate(marks):
        before, after = text[at - 1 : at] or " ", text[at + 2 : at + 3] or " "
        inside, outside = (after, before) if index % 2 == 0 else (before, after)
        if punctuation(inside) and not (outside.isspace() or punctuation(outside)):
            return False
    return True


# --- The page as built ---------------------------------------------------------------------------------------------

SHOWN_PROPS = ("label", "info", "placeholder", "title", "x_title", "y_title", "color_title")


def _shown_texts(block: Any) -> list[str]:
    """The texts a component shows: its label, help text, placeholder, title, choices and, for buttons and
    markdown, its value."""
    texts = [getattr(block, prop, None) for prop in SHOWN_PROPS]
    if isinstance(block, gr.Button | gr.DownloadButton | gr.Markdown):
        texts.append(block.value)
    for label, value in getattr(block, "choices", None) or []:
        if label != value:  # a choice shown as its value is a value (a model, a preset, a config value), not text
            texts.append(label)
    return [text for text in texts if isinstance(text, str | i18n.I18nData) and str(text)]


def test_the_built_page_shows_no_english_in_chinese():
    from workbench.ui.app import build_app

    app = build_app()
    english = []
    for block in app.blocks.values():
        if getattr(block, "elem_id", None) == "page-language":
            continue  # the languages by their own names
        for text in _shown_texts(block):
            shown = i18n.shown(text, ZH)
            if "__i18n__" in shown:
                english.append(f"{block.elem_id or type(block).__name__}: an unknown key {shown!r}")
            elif english_words(shown):
                english.append(f"{block.elem_id or type(block).__name__}: {shown!r} ({english_words(shown)})")
    assert not english, "\n".join(english)
    # The English page shows the English of the same keys.
    start = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "train-start")
    assert (i18n.shown(start.value, "en"), i18n.shown(start.value, ZH)) == ("Start training", "开始训练")
    assert json.dumps(i18n.gradio_i18n().translations_dict, ensure_ascii=False).count("开始训练") == 1


# --- What the events say -------------------------------------------------------------------------------------------


def _texts(value: Any) -> list[str]:
    """Every text in what an event returns: strings, updates' labels and choices, tables' headers and cells."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        texts = [value[key] for key in ("value", *SHOWN_PROPS) if isinstance(value.get(key), str)]
        texts += [c[0] for c in value.get("choices") or [] if isinstance(c, tuple | list)]
        return texts + [
            t for key in ("value",) if isinstance(value.get(key), pd.DataFrame) for t in _texts(value[key])
        ]
    if isinstance(value, pd.DataFrame):
        return [str(c) for c in value.columns] + [str(v) for v in value.to_numpy().ravel() if isinstance(v, str)]
    if isinstance(value, tuple | list):
        return [t for item in value for t in _texts(item)]
    if isinstance(value, gr.components.Component):
        return [str(getattr(value, p)) for p in ("x", "y", *SHOWN_PROPS) if getattr(value, p, None)]
    return []


def _assert_chinese(texts: list[str]) -> None:
    english = [f"{text!r}: {english_words(text)}" for text in texts if english_words(text)]
    assert not english, "\n".join(english)


@pytest.fixture
def untranslated():
    """The texts asked for during the test that have no Chinese (the translator remembers them)."""
    before = set(i18n.missing())
    yield lambda: sorted(set(i18n.missing()) - before)


def test_the_data_tab_says_in_chinese_what_the_chinese_sample_holds(untranslated):
    from workbench.ui import background

    sample = {"path": str(PRESETS / "data" / "alpaca_zh_demo.json")}
    try:
        steps = list(data_tab.inspect_steps(sample, "smollm2-135m-instruct", 96, False, None, None, ZH))
    finally:
        background.shutdown()
    # The table's cells and the example are the data (and the model's chat template), not the page's text.
    shown = [t for step in steps for key, value in step.items() if key not in ("table", "stats", "example")
             for t in _texts(value)]  # fmt: skip
    shown += [str(c) for step in steps if isinstance(step.get("table"), pd.DataFrame) for c in step["table"].columns]
    _assert_chinese(shown)
    assert "**1,000** 行" in steps[-2]["summary"] and "instruction → 用户消息" in steps[-2]["summary"]
    assert list(steps[0]["table"].columns) == ["用户", "助手"]
    assert {kind for _, kind in steps[-1]["example"]} == {"训练", "提示（遮盖）"}
    example = "".join(text for text, _ in steps[-1]["example"])
    assert "识别并解释给定列表中的两个科学理论" in example and "\ufffd" not in example  # whole characters
    assert untranslated() == []


def test_the_data_tab_says_in_chinese_what_is_wrong_with_a_file(tmp_path, untranslated):
    from tests.data.bad_uploads import BAD_UPLOADS
    from workbench import home
    from workbench.ui import background

    folder = home.collected_dir()  # a folder the workbench owns: the Data tab reads no other
    files = {
        "row-without-output.json": json.dumps([{"instruction": "Hi", "output": "Hello"}, {"instruction": "Hi"}]),
        "odd-columns.csv": "Frage,Antwort\nWie?,So.\n",
        "top-level-object.json": json.dumps({"a": 1}),
        "not-utf8.jsonl": b"\xff\xfe{}",
        "empty.json": "",
        "pairs.json": json.dumps([{"prompt": "p", "chosen": "a", "rejected": "a"}]),
        "bad-line.jsonl": '{"instruction": "a", "output": "b"}\n{"instruction": \n',
    }
    errors = []
    try:
        for name, content in files.items():
            path = folder / name
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            for step in data_tab.inspect_steps(
                {"path": str(path)}, "smollm2-135m-instruct", 96, False, None, None, ZH
            ):
                errors += [step["error"]] if step.get("error") else []
        for upload in [b for b in BAD_UPLOADS if b.name in ("random-bytes.json", "deep-lists.json", "nul-bytes.csv")]:
            path = upload.write(folder)
            for step in data_tab.inspect_steps(
                {"path": str(path)}, "smollm2-135m-instruct", 96, False, None, None, ZH
            ):
                errors += [step["error"]] if step.get("error") else []
        refused = next(data_tab.inspect_steps({"path": "/etc/passwd"}, "m", 96, False, None, None, ZH))["error"]
    finally:
        background.shutdown()
    errors.append(refused)
    _, conflict = data_tab.use_columns({"path": "x"}, ["a", "b"], "prompt", "prompt", language=ZH)
    errors.append(conflict)
    assert len(errors) >= len(files) + 3
    _assert_chinese(errors)
    assert any("row-without-output.json，第 2 行，字段 'output'：缺失" in e for e in errors), errors
    assert refused == "**无法使用此文件：请在这里上传数据集，或选择示例数据、你自己的数据。**"
    assert untranslated() == []


def test_the_train_tab_says_in_chinese_what_it_estimates_and_refuses(model_ref, untranslated):
    t = i18n.translator(ZH)
    config = load_config(PRESETS / "sft-lora-identity.yaml")
    shown = [train_tab._stage_info(name, t) for name in stages.names()]
    shown += [train_tab._method_info(name, t) for name in methods.names()]
    shown += [train_tab._estimate_text(config, {"rows": 91, "total_tokens": 91 * 40}, t=t)]
    tight = config.model_copy(update={"train": config.train.model_copy(update={"per_device_train_batch_size": 4096})})
    shown += [train_tab._estimate_text(tight, {"rows": 91, "total_tokens": 91 * 2000}, t=t)]
    shown += [train_tab._data_warnings(config, {"kind": "pairs", "placeholders": ["name", "author"]}, t)]
    problems = [FieldProblem("train.learning_rate", "Input should be greater than 0 (got -1)"),
                FieldProblem("data.datasets", "List should have at least 1 item after validation, not 0"),
                FieldProblem("method", "unknown method 'zz'; choose one of: lora, dora")]  # fmt: skip
    shown += [train_tab._problems(ConfigError(problems), t)]
    shown += [train_tab._blocking(["QLoRA needs bitsandbytes, which is not installed: `pip install bitsandbytes`.",
                                   "train.report_to: MLflow is switched off by DISABLE_MLFLOW_INTEGRATION=TRUE: unset "
                                   "it"], t)]  # fmt: skip
    shown += [label for label, _ in train_tab.parent_choices(t) + train_tab.reward_run_choices(t)]
    _assert_chinese(shown)
    assert "**可以运行**" in shown[len(stages.names()) + len(methods.names())]
    assert untranslated() == []


def test_the_runs_chat_and_export_tabs_say_it_in_chinese(untranslated):
    from workbench.runs.queue import RunQueue
    from workbench.runs.submission import freeze

    store = RunQueue()
    config = load_config(PRESETS / "sft-lora-identity.yaml").model_copy(update={"name": None})  # no name of a person's
    job = store.submit(freeze(config), start=False)
    shown = list(runs_tab.refresh(job.id, [], ZH))
    shown += [runs_tab._act("resume")(job.id, ZH), runs_tab._act("cancel")(None, ZH)]
    store.cancel(job.id)
    shown += list(runs_tab.refresh(job.id, [], ZH)) + list(runs_tab.compare([job.id], ZH))
    shown += [runs_tab._act("resume")("no-such-run", ZH)]
    shown += [chat_tab.rate([], [], "smollm2-135m-instruct", "", ZH, tuned_better=True), chat_tab.adapters(ZH)]
    shown += [*export_tab._offer(job.id, ZH), *export_tab._zip(None, ZH), *export_tab._zip(job.id, ZH)]
    texts = _texts(shown)
    _assert_chinese(texts)
    assert any("已停止" in text for text in texts) and "状态" in texts
    assert untranslated() == []


# --- The engine's messages -----------------------------------------------------------------------------------------

ENGINE = REPO / "workbench"
# Modules whose text never reaches the page: the CLI's own output, the model card written into a run, the script
# that measures this machine's speed.
# api/: what the OpenAI server and the REST API say goes to HTTP clients, in English, as OpenAI's own errors do.
NOT_THE_PAGE = ("ui/", "api/", "__main__.py", "training/artifacts.py", "estimation/calibration.py")
NOT_SHOWN = {
    # They guard the code's own use (a registry, an internal call), not a person's input or machine.
    "{0} {1!r} is registered twice",
    "method {0!r}: give exactly one of build_peft_config and prepare_model",
    "method {0!r}: say why it cannot be merged (merge_refusal)",
    "mean_tokens_per_example must be positive, got {0}",
    "available_memory_mb is required for a GPU: pass the card's free memory in MiB",
    "no trainable-parameter formula for method {0!r}",
    "cutoff_len must be at least 1, got {0}",
    "val_size must be below 1, got {0}",
    # The model's prompt, not the page: a dataset's tool definitions as the chat template receives them.
    "You have access to these tools:\n",
    # The CLI's warning about unfilled placeholders (the page says it its own way).
    "--set data.datasets.{0}.fill.{1}=VALUE",
}
_ERRORS = re.compile(r"(Error|UnknownLayout)$")


def _template(node: ast.AST, constants: dict[str, str] | None = None) -> str | None:
    """A message as its code writes it, each value a numbered slot ("{0}"), a module's text constants filled in;
    None if it is no text."""
    if isinstance(node, ast.Name) and constants and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if isinstance(node, ast.JoinedStr):
        parts, slot = [], 0
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(value.value.replace("{", "{{").replace("}", "}}"))
            else:
                parts.append("{" + str(slot) + ("!r" if value.conversion == ord("r") else "") + "}")
                slot += 1
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left, constants), _template(node.right, constants)
        return (left or "") + (right or "") if left is not None or right is not None else None
    return None


def engine_messages() -> set[str]:
    """What the engine says where the page can show it: errors, config problems, checks' problems, estimate
    advice, messages returned or kept in constants, runs' failure records."""
    found = set()
    for path in sorted(ENGINE.rglob("*.py")):
        if str(path.relative_to(ENGINE)).startswith(NOT_THE_PAGE):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            node.targets[0].id: text
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
            for text in [_template(node.value)]
            if text is not None
        }
        for node in ast.walk(tree):
            texts: list[ast.AST] = []
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if _ERRORS.search(name) or name in ("error", "append"):
                    texts = node.args[:1]
                elif name == "FieldProblem" or name == "fail":
                    texts = node.args[1:2] if name == "FieldProblem" else node.args[2:3]
            elif isinstance(node, ast.Return | ast.Assign | ast.AugAssign) and node.value is not None:
                values = node.value.values if isinstance(node.value, ast.Dict) else [node.value]
                texts = list(values)
            for text in texts:
                template = _template(text, constants)
                if template and " " in template.strip() and re.search(r"[a-z]{3,} [a-z]{2,}", template):
                    found.add(template)
    return found - NOT_SHOWN


def _sample(template: str) -> str:
    """The message with a value in each slot: a quoted name where the code quotes it, else a number."""
    return "".join(
        literal + ("" if slot is None else "'q'" if conversion == "r" else "7")
        for literal, slot, _, conversion in string.Formatter().parse(template)
    )


def test_every_message_of_the_engine_has_a_chinese_template():
    t = i18n.translator(ZH)
    messages = engine_messages()
    assert len(messages) > 150  # the scan finds them (the data layer alone has ~100)
    # A piece the engine joins to others (a constant, a "; ..." tail) is covered where the whole is.
    wholes = [re.sub(r"\{[^{}]*\}", "\0", english) for english in i18n.catalogue(ZH)]
    english = []
    for template in sorted(messages):
        shown = t.message(_sample(template))
        pieces = [piece for piece in re.split(r"\{[^{}]*\}", template.replace("{{", "{").replace("}}", "}")) if piece]
        if english_words(shown) and not all(any(piece in whole for whole in wholes) for piece in pieces):
            english.append(f"{template!r} → {shown!r}")
    assert not english, "add templates to workbench/ui/locales/zh-CN/messages.yaml:\n" + "\n".join(english)


def _evaluated_run(report: dict[str, Any]):
    """A finished run (no training: the job store is told so) whose folder holds `report` as its evaluation, and
    whose status names the best checkpoint."""
    from workbench.evaluation import report as reports
    from workbench.runs.queue import RunQueue
    from workbench.runs.store import JobStore
    from workbench.runs.submission import freeze

    store = RunQueue()
    config = load_config(PRESETS / "sft-lora-identity.yaml").model_copy(update={"name": None})
    job = store.submit(freeze(config), start=False)
    jobs = JobStore()
    claimed = jobs.claim_next(1)
    jobs.finish(job.id, claimed.claim, "finished")
    job.files.write_status(step=6, max_steps=10, best_step=4, best_metric={"eval_loss": 1.25}, stopped_early=True)
    reports.write(job.files.evaluation, report)
    return job


# An evaluation with Chinese data (the page's text is what must be Chinese; the data is the user's).
ZH_REPORT = {
    "title": "t",
    "run": "r",
    "split": "test",
    "data": "test.jsonl",
    "examples_count": 2,
    "metrics": {
        who: {"bleu": b, "chrf": b, "rouge_l": b, "exact_match": 0.5, "contains_answer": 0.5, "reply_words": 9.0}
        for who, b in (("base", 10.0), ("tuned", 30.0))
    },
    "examples": [
        {
            "prompt": "你是谁？",
            "reference": "我是助手。",
            "base_reply": "你好。",
            "tuned_reply": "我是助手。",
            "base_chrf": 5.0,
            "tuned_chrf": 100.0,
            "change_chrf": 95.0,
            "base_rouge_l": 0.0,
            "tuned_rouge_l": 100.0,
        },
        {
            "prompt": "你好",
            "reference": "你好！",
            "base_reply": "你好！",
            "tuned_reply": "你好！",
            "base_chrf": 100.0,
            "tuned_chrf": 100.0,
            "change_chrf": 0.0,
            "base_rouge_l": 100.0,
            "tuned_rouge_l": 100.0,
        },
    ],  # fmt: skip
    "probe": {
        "task": "workbench_probe",
        "questions": 8,
        "base": {"accuracy": 0.5},
        "tuned": {"accuracy": 0.25},
        "retention": 0.5,
        "base_correct": 4,
        "kept": 2,
        "gained": 0,
        "warning": True,
        "threshold": 0.9,
        "lost": [
            {
                "id": "c1",
                "question": "法国的首都是哪里？",
                "answer": "巴黎",
                "base_reply": "巴黎。",
                "tuned_reply": "我是助手。",
            }
        ],
    },  # fmt: skip
}


def test_the_evaluate_tab_and_an_evaluated_run_say_it_in_chinese(untranslated):
    import time

    from workbench.evaluation import launch

    job = _evaluated_run(ZH_REPORT)
    status, log, warning, metrics, chart, probe_line, examples, _ = evaluate_tab.view(job.id, "", ZH)
    assert chart is not None and metrics.shape == (8, 4) and len(examples) == 2
    shown = [status, log, warning, metrics, probe_line, examples]
    shown += [label for label, _ in evaluate_tab.source_choices(i18n.translator(ZH))]
    shown += [evaluate_tab.start(None, "test", 4, True, 8, ZH), evaluate_tab.start(job.id, "nothing", 4, True, 8, ZH)]
    shown += list(runs_tab.refresh(job.id, [], ZH)) + list(runs_tab.compare([job.id], ZH))
    # An evaluation that failed: the CLI's error line, translated.
    (job.files.evaluation / launch.PROCESS).write_text(json.dumps({"pid": 0, "launched": time.time() + 60}))
    (job.files.evaluation / launch.LOG).write_text(f"error: run {job.id} has no result yet: it has not finished\n")
    failed = evaluate_tab.view(job.id, "", ZH)[0]
    shown.append(failed)
    texts = _texts(shown)
    _assert_chinese(texts)
    assert f"运行 {job.id} 还没有结果" in failed
    assert "完全匹配" in metrics.iloc[:, 0].tolist() and "探针保持率" in metrics.iloc[:, 0].tolist()
    assert "法国的首都是哪里？" in warning and "**遗忘**" in warning
    progress = runs_tab.refresh(job.id, [], ZH)[2]
    assert "最佳检查点：第 4 步" in progress and "法国的首都是哪里？" in progress
    assert "评估 chrF" in texts and "30.0 (+20.0)" in texts
    assert untranslated() == []
