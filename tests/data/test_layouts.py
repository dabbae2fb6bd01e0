"""The column layouts people have, recognised without asking from each file type; a mapping for the others, checked
row by row; and the other kinds of data (pairs, KTO labels, prompts) still told apart from conversations."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from workbench.config import DatasetSpec
from workbench.data import freeze_spec, layouts
from workbench.data.formats import UnknownLayout
from workbench.data.loading import detect_kind, load_for
from workbench.errors import DataError

SUFFIXES = [".json", ".jsonl", ".csv", ".parquet"]


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def write(tmp_path, rows, suffix, name="data"):
    path = tmp_path / f"{name}{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    elif suffix == ".csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)
    return path


# (rows, the conversation of the first row, the columns it is read with); two rows each, so a table has a shape.
RECOGNISED = {
    "question-answer": (
        [{"question": "Opening hours?", "answer": "9 to 5."}, {"question": "Parking?", "answer": "Behind."}],
        [user("Opening hours?"), assistant("9 to 5.")],
        {"prompt": "question", "response": "answer"},
    ),
    "Question-Answer-any-case": (
        [{"Question": "Opening hours?", "ANSWER": "9 to 5."}, {"Question": "Parking?", "ANSWER": "Behind."}],
        [user("Opening hours?"), assistant("9 to 5.")],
        {"prompt": "Question", "response": "ANSWER"},
    ),
    "prompt-response": (
        [{"prompt": "Hi", "response": "Hello!"}, {"prompt": "Bye", "response": "See you."}],
        [user("Hi"), assistant("Hello!")],
        {"prompt": "prompt", "response": "response"},
    ),
    "prompt-completion": (
        [{"prompt": "The sky is", "completion": " blue."}, {"prompt": "Grass is", "completion": " green."}],
        [user("The sky is"), assistant(" blue.")],
        {"prompt": "prompt", "response": "completion"},
    ),
    "input-output": (
        [{"input": "2 + 2", "output": "4"}, {"input": "3 + 3", "output": "6"}],
        [user("2 + 2"), assistant("4")],
        {"prompt": "input"},  # `output` is the alpaca format's own name for the reply
    ),
    "query-response": (
        [{"query": "Capital of France?", "response": "Paris."}, {"query": "Of Italy?", "response": "Rome."}],
        [user("Capital of France?"), assistant("Paris.")],
        {"prompt": "query", "response": "response"},
    ),
    "instruction-response": (
        [{"instruction": "Greet", "response": "Hello."}, {"instruction": "Part", "response": "Bye."}],
        [user("Greet"), assistant("Hello.")],
        {"response": "response"},
    ),
    "instruction-input-output": (
        [
            {"instruction": "Add", "input": "2 + 2", "output": "4"},
            {"instruction": "Say hi", "input": "", "output": "Hi"},
        ],
        [user("Add\n2 + 2"), assistant("4")],
        {},
    ),
    "context-question-answer": (
        [
            {"context": "The shop opens at 9.", "question": "When does it open?", "answer": "At 9."},
            {"context": "It closes at 5.", "question": "When does it close?", "answer": "At 5."},
        ],
        [user("The shop opens at 9.\nWhen does it open?"), assistant("At 9.")],
        {"prompt": "context", "query": "question", "response": "answer"},
    ),
    "system-question-answer": (
        [
            {"System": "You run a bakery.", "Question": "Bread today?", "Answer": "Yes, rye."},
            {"System": "You run a bakery.", "Question": "Cake?", "Answer": "On Fridays."},
        ],
        [system("You run a bakery."), user("Bread today?"), assistant("Yes, rye.")],
        {"prompt": "Question", "response": "Answer", "system": "System"},
    ),
    "system_prompt-prompt-response": (
        [
            {"system_prompt": "Be terse.", "prompt": "Why?", "response": "Because."},
            {"system_prompt": "Be terse.", "prompt": "How?", "response": "Thus."},
        ],
        [system("Be terse."), user("Why?"), assistant("Because.")],
        {"prompt": "prompt", "response": "response", "system": "system_prompt"},
    ),
}
# TRL's conversational prompt-completion rows: lists of messages (not in a CSV, which holds text).
MESSAGES = (
    [
        {"prompt": [user("Hi")], "completion": [assistant("Hello!")]},
        {"prompt": [system("Be kind."), user("Bye")], "completion": [assistant("Take care.")]},
    ],
    [user("Hi"), assistant("Hello!")],
    {"prompt": "prompt", "response": "completion"},
)
CASES = [
    pytest.param(*RECOGNISED[name], suffix, id=f"{name}{suffix}") for name in RECOGNISED for suffix in SUFFIXES
] + [
    pytest.param(*MESSAGES, suffix, id=f"prompt-completion-messages{suffix}")
    for suffix in SUFFIXES
    if suffix != ".csv"
]


@pytest.mark.parametrize("rows, first, columns, suffix", CASES)
def test_recognised_layouts_load_from_every_file_type_and_freeze(tmp_path, rows, first, columns, suffix):
    spec = DatasetSpec(path=str(write(tmp_path, rows, suffix)))
    assert detect_kind(spec) == "conversations"
    loaded = load_for("conversations", spec)
    assert (loaded.format, loaded.columns, loaded.conversations[0]) == ("alpaca", columns, first)
    assert len(loaded.conversations) == len(rows)
    # The stored copy says how it was read, and reads back the same.
    frozen = freeze_spec(spec)
    assert frozen.columns == columns
    assert load_for("conversations", frozen).conversations == loaded.conversations


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_other_kinds_keep_their_own_layouts(tmp_path, suffix):
    pairs = [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}] * 2
    prompts = [{"prompt": "2 + 2?", "answer": "4"}, {"prompt": "3 + 3?", "answer": "6"}]
    kto = [
        {"prompt": "Hi", "completion": "Hello!", "label": True},
        {"prompt": "Hi", "completion": "No.", "label": False},
    ]
    if suffix == ".csv":
        kto = kto[:0]  # a CSV has no true / false, only text
    for name, rows, kind in (("pairs", pairs, "pairs"), ("prompts", prompts, "prompts"), ("kto", kto, "labeled")):
        if not rows:
            continue
        spec = DatasetSpec(path=str(write(tmp_path, rows, suffix, name)))
        assert detect_kind(spec) == kind, name
        loaded = load_for(kind, spec)
        assert len(loaded.examples) == len(rows)
    loaded = load_for("prompts", DatasetSpec(path=str(tmp_path / f"prompts{suffix}")))
    assert (loaded.examples[0].prompt, loaded.examples[0].answer) == ([user("2 + 2?")], "4")


def test_kto_prompt_completion_rows_freeze_with_their_columns(tmp_path):
    rows = [
        {"prompt": "Hi", "completion": "Hello!", "label": True},
        {"prompt": "Hi", "completion": "No.", "label": False},
    ]
    spec = DatasetSpec(path=str(write(tmp_path, rows, ".jsonl")))
    loaded = load_for("labeled", spec)
    assert [(e.prompt, e.completion, e.label) for e in loaded.examples] == [
        ([user("Hi")], "Hello!", True),
        ([user("Hi")], "No.", False),
    ]
    frozen = freeze_spec(spec, loaded)
    assert load_for("labeled", frozen).examples == loaded.examples


def test_conversations_give_rl_stages_their_prompt_and_reference_answer(tmp_path):
    spec = DatasetSpec(path=str(write(tmp_path, RECOGNISED["question-answer"][0], ".csv")))
    item = load_for("prompts", spec).examples[0]
    assert (item.prompt, item.answer) == ([user("Opening hours?")], "9 to 5.")


FAQ = [
    {"Kundenfrage": "Opening hours?", "Unsere Antwort": "9 to 5.", "Notiz": "web"},
    {"Kundenfrage": "Parking?", "Unsere Antwort": "Behind the shop.", "Notiz": ""},
    {"Kundenfrage": "Card?", "Unsere Antwort": "", "Notiz": "till"},
]


def test_unknown_columns_are_refused_with_the_fields_and_guessed_from_their_names(tmp_path):
    path = write(tmp_path, FAQ, ".csv", "faq")
    with pytest.raises(UnknownLayout) as caught:
        load_for("conversations", DatasetSpec(path=str(path)))
    assert caught.value.fields == ["Kundenfrage", "Unsere Antwort", "Notiz"]
    assert layouts.guess(FAQ) == {"prompt": "Kundenfrage", "response": "Unsere Antwort"}


def test_mapped_columns_load_and_name_the_row_and_field_of_a_bad_value(tmp_path):
    path = write(tmp_path, FAQ, ".csv", "faq")
    spec = DatasetSpec(path=str(path), columns={"prompt": "Kundenfrage", "response": "Unsere Antwort"})
    assert detect_kind(spec) == "conversations"
    with pytest.raises(DataError, match=r"^faq\.csv, row 3, field 'Unsere Antwort': is empty$"):
        load_for("conversations", spec)
    loaded = load_for("conversations", spec.model_copy(update={"max_samples": 2}))
    assert loaded.conversations[1] == [user("Parking?"), assistant("Behind the shop.")]


@pytest.mark.parametrize(
    "columns, row, field, fragment",
    [
        ({"prompt": "Kundenfrage", "response": "Antwort"}, 1, "Antwort", "is missing"),
        ({"prompt": "Kundenfrage", "response": "Kundenfrage"}, None, "columns.response", "already mapped"),
        ({"prompt": "", "response": "Unsere Antwort"}, None, "columns.prompt", "needs a field"),
        (
            {"prompt": "Kundenfrage", "response": "Unsere Antwort", "answer": "Notiz"},
            None,
            "columns.answer",
            "no column",
        ),
        ({"prompt": "Kundenfrage", "response": "Unsere Antwort", "system": "Notiz"}, 2, "Notiz", None),
    ],
    ids=["missing-field", "one-field-two-roles", "no-user-turn", "answer-is-not-sft", "empty-system-is-fine"],
)
def test_bad_mappings_name_the_row_and_field(tmp_path, columns, row, field, fragment):
    path = write(tmp_path, FAQ[:2], ".json", "faq")
    spec = DatasetSpec(path=str(path), columns=columns)
    if fragment is None:  # an empty optional field is no error: that row has no system prompt
        assert load_for("conversations", spec).conversations[1][0] == user("Parking?")
        return
    with pytest.raises(DataError) as caught:
        load_for("conversations", spec)
    assert (caught.value.row, caught.value.field) == (row, field) and fragment in str(caught.value)


def test_a_field_a_role_takes_by_default_can_be_left_out(tmp_path):
    rows = [{"instruction": "Add", "input": "ignore me", "output": "4"}]
    path = write(tmp_path, rows, ".json")
    loaded = load_for("conversations", DatasetSpec(path=str(path), columns={"query": ""}))
    assert loaded.conversations[0] == [user("Add"), assistant("4")]


def test_mapped_preference_kto_and_prompt_columns(tmp_path):
    pairs = [{"Frage": "Hi", "gut": "Hello!", "schlecht": "Go away."}]
    spec = DatasetSpec(path=str(write(tmp_path, pairs, ".json", "pairs")),
                       columns={"prompt": "Frage", "chosen": "gut", "rejected": "schlecht"})  # fmt: skip
    assert detect_kind(spec) == "pairs"
    pair = load_for("pairs", spec).examples[0]
    assert (pair.prompt, pair.chosen, pair.rejected) == ([user("Hi")], "Hello!", "Go away.")

    kto = [{"Frage": "Hi", "Antwort": "Hello!", "ok": True}, {"Frage": "Hi", "Antwort": "No.", "ok": False}]
    spec = DatasetSpec(path=str(write(tmp_path, kto, ".json", "kto")),
                       columns={"prompt": "Frage", "response": "Antwort", "kto_tag": "ok"})  # fmt: skip
    assert detect_kind(spec) == "labeled"
    assert [e.label for e in load_for("labeled", spec).examples] == [True, False]

    prompts = [{"Aufgabe": "2 + 2?", "Lösung": "4"}]
    spec = DatasetSpec(path=str(write(tmp_path, prompts, ".json", "prompts")),
                       columns={"prompt": "Aufgabe", "answer": "Lösung"})  # fmt: skip
    assert detect_kind(spec) == "prompts"
    item = load_for("prompts", spec).examples[0]
    assert (item.prompt, item.answer) == ([user("2 + 2?")], "4")
