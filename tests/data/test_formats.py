import pytest

from workbench.data.formats import TOOLS_INTRO, UnknownLayout, convert_records, detect_format
from workbench.errors import DataError


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def tool(text):
    return {"role": "tool", "content": text}


CASES = [
    pytest.param(
        "alpaca",
        {"instruction": "Translate", "input": "bonjour", "output": "hello"},
        {},
        {},
        [user("Translate\nbonjour"), assistant("hello")],
        id="alpaca-instruction-and-input",
    ),
    pytest.param(
        "alpaca",
        {"instruction": "Say hi", "input": "", "output": "Hi!"},
        {},
        {},
        [user("Say hi"), assistant("Hi!")],
        id="alpaca-empty-input",
    ),
    pytest.param(
        "alpaca",
        {"instruction": "", "input": "only the input", "output": "ok"},
        {},
        {},
        [user("only the input"), assistant("ok")],
        id="alpaca-empty-instruction",
    ),
    pytest.param(
        "alpaca",
        {
            "instruction": "And 3 + 3?",
            "input": "",
            "output": "6",
            "system": "You do sums.",
            "history": [["1 + 1?", "2"], ["2 + 2?", "4"]],
        },
        {},
        {},
        [system("You do sums."), user("1 + 1?"), assistant("2"), user("2 + 2?"), assistant("4"), user("And 3 + 3?")]
        + [assistant("6")],
        id="alpaca-system-and-history",
    ),
    pytest.param(
        "alpaca",
        {"question": "Why?", "response": "Because.", "system_prompt": "Be terse.", "id": 7},
        {"prompt": "question", "response": "response", "system": "system_prompt"},
        {},
        [system("Be terse."), user("Why?"), assistant("Because.")],
        id="alpaca-openorca-columns",
    ),
    pytest.param(
        "sharegpt",
        {
            "conversations": [
                {"from": "system", "value": "Be kind."},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello"},
                {"from": "user", "value": "Weather?"},
                {"from": "function_call", "value": '{"name": "weather"}'},
                {"from": "observation", "value": '{"sun": true}'},
                {"from": "assistant", "value": "Sunny."},
            ]
        },
        {},
        {},
        [system("Be kind."), user("Hi"), assistant("Hello"), user("Weather?"), assistant('{"name": "weather"}')]
        + [tool('{"sun": true}'), assistant("Sunny.")],
        id="sharegpt-all-roles",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "Be kind."},
        {},
        {},
        [system("Be kind."), user("Hi"), assistant("Hello")],
        id="sharegpt-system-column",
    ),
    pytest.param(
        "sharegpt",
        {
            "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
            "tools": '[{"a": 1}]',
        },
        {},
        {},
        [system(TOOLS_INTRO + '[{"a": 1}]'), user("Hi"), assistant("Hello")],
        id="sharegpt-tools-become-system",
    ),
    pytest.param(
        "sharegpt",
        {
            "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}],
            "system": "Be kind.",
            "tools": [{"name": "f"}],
        },
        {},
        {},
        [system("Be kind.\n\n" + TOOLS_INTRO + '[{"name": "f"}]'), user("Hi"), assistant("Hello")],
        id="sharegpt-tools-appended-to-system",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "tools": "[]"},
        {},
        {},
        [user("Hi"), assistant("Hello")],
        id="sharegpt-empty-tools-ignored",
    ),
    pytest.param(
        "sharegpt",
        {"dialog": [{"speaker": "Q", "text": "Hi"}, {"speaker": "A", "text": "Hello"}]},
        {"messages": "dialog"},
        {"role_tag": "speaker", "content_tag": "text", "user_tag": "Q", "assistant_tag": "A"},
        [user("Hi"), assistant("Hello")],
        id="sharegpt-custom-tags",
    ),
    pytest.param(
        "openai",
        {"messages": [system("S"), user("Hi"), assistant("Hello"), user("Again"), assistant("Hello again")]},
        {},
        {},
        [system("S"), user("Hi"), assistant("Hello"), user("Again"), assistant("Hello again")],
        id="openai",
    ),
    pytest.param(
        "openai",
        {
            "messages": [
                user("Weather?"),
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": "{}"}}],
                },
                tool("sunny"),
                assistant("It is sunny."),
            ]
        },
        {},
        {},
        [user("Weather?"), assistant('[{"name": "weather", "arguments": "{}"}]'), tool("sunny")]
        + [assistant("It is sunny.")],
        id="openai-tool-calls",
    ),
]


@pytest.mark.parametrize("format, record, columns, tags, expected", CASES)
def test_conversion(format, record, columns, tags, expected):
    assert convert_records([record], format, file="f.json", columns=columns, tags=tags) == [expected]


@pytest.mark.parametrize("format, record, columns, tags, expected", CASES)
def test_detection(format, record, columns, tags, expected):
    # Detection finds the format of every case from its fields, given the same column mapping and tags.
    assert detect_format([record], "f.json", columns=columns, tags=tags) == format


def test_detection_looks_past_a_first_row_that_says_nothing():
    records = [{"note": "header row"}, {"instruction": "a", "output": "b"}]
    assert detect_format(records, "f.json") == "alpaca"


def test_role_content_messages_under_conversations_are_openai():
    record = {"conversations": [user("Hi"), assistant("Hello")]}
    assert detect_format([record], "f.json") == "openai"
    assert convert_records([record], "openai", file="f.json", columns={"messages": "conversations"}) == [
        [user("Hi"), assistant("Hello")]
    ]


def test_unknown_layout_lists_the_fields_and_the_known_layouts():
    with pytest.raises(UnknownLayout) as caught:
        detect_format([{"Frage": "q", "Antwort": "a"}], "qa.json")
    message = str(caught.value)
    assert message.startswith("qa.json, row 1:")
    assert "Frage, Antwort" in message and caught.value.fields == ["Frage", "Antwort"]
    assert all(name in message for name in ("question/answer", "sharegpt", "openai", "columns"))


def test_preference_data_is_named_as_such():
    record = {"conversations": [{"from": "human", "value": "q"}], "chosen": {}, "rejected": {}}
    with pytest.raises(DataError, match="preference"):
        detect_format([record], "dpo.json")


GOOD_SHAREGPT = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]

BAD_ROWS = [
    pytest.param("alpaca", {"instruction": "x"}, "output", "is missing", id="missing-output"),
    pytest.param("alpaca", {"output": "x"}, "instruction", "is missing", id="missing-instruction"),
    pytest.param("alpaca", {"instruction": "x", "output": ""}, "output", "is empty", id="empty-output"),
    pytest.param("alpaca", {"instruction": "x", "output": "  \n"}, "output", "is empty", id="blank-output"),
    pytest.param("alpaca", {"instruction": "x", "output": None}, "output", "is empty", id="null-output"),
    pytest.param(
        "alpaca", {"instruction": "", "input": "", "output": "y"}, "instruction", "is empty", id="no-request"
    ),
    pytest.param("alpaca", {"instruction": "x", "output": 42}, "output", "expected text, got a number (42)", id="num"),
    pytest.param("alpaca", {"instruction": ["a"], "output": "y"}, "instruction", "got a list", id="list-instruction"),
    pytest.param("alpaca", {"instruction": "x", "input": 3, "output": "y"}, "input", "a number", id="number-input"),
    pytest.param(
        "alpaca", {"instruction": "x", "output": "y", "history": "nope"}, "history", "pairs", id="history-not-list"
    ),
    pytest.param(
        "alpaca", {"instruction": "x", "output": "y", "history": [["q"]]}, "history[0]", "pair", id="history-not-pair"
    ),
    pytest.param(
        "alpaca",
        {"instruction": "x", "output": "y", "history": [["q", 5]]},
        "history[0][1]",
        "a number",
        id="hist-num",
    ),
    pytest.param("alpaca", {"instruction": "x", "output": "y", "system": 1}, "system", "a number", id="system-number"),
    pytest.param("sharegpt", {"messages": GOOD_SHAREGPT}, "conversations", "is missing", id="missing-conversations"),
    pytest.param("sharegpt", {"conversations": "Hi"}, "conversations", "expected a list", id="conversations-text"),
    pytest.param("sharegpt", {"conversations": []}, "conversations", "has no messages", id="no-messages"),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Hello"}]},
        "conversations[1].from",
        "unknown role 'bot'",
        id="unknown-role",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
        "conversations[0].from",
        "is missing",
        id="missing-role",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt"}]},
        "conversations[1].value",
        "is missing",
        id="missing-content",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ["Hel", "lo"]}]},
        "conversations[1].value",
        "expected text, got a list",
        id="list-content",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ""}]},
        "conversations[1].value",
        "is empty",
        id="empty-reply",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}, "Hello"]},
        "conversations[1]",
        "expected a message object",
        id="message-not-object",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "human", "value": "Hi"}]},
        "conversations",
        "no assistant turn",
        id="no-assistant",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [*GOOD_SHAREGPT, {"from": "human", "value": "And?"}]},
        "conversations[2].value",
        "ends with a user turn; it must end with an assistant turn",
        id="ends-with-user",
    ),
    pytest.param(
        "sharegpt",
        {
            "conversations": [
                *GOOD_SHAREGPT,
                {"from": "function_call", "value": "{}"},
                {"from": "observation", "value": "1"},
            ]
        },
        "conversations[3].value",
        "ends with a tool turn",
        id="ends-with-observation",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [{"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Hi"}, GOOD_SHAREGPT[1]]},
        "conversations[0].value",
        "starts with an assistant turn",
        id="starts-with-assistant",
    ),
    pytest.param(
        "sharegpt",
        {"conversations": [GOOD_SHAREGPT[0], {"from": "system", "value": "late"}, GOOD_SHAREGPT[1]]},
        "conversations[1].value",
        "system message can only come first",
        id="late-system",
    ),
    pytest.param(
        "sharegpt", {"conversations": GOOD_SHAREGPT, "tools": 5}, "tools", "tool definitions", id="tools-number"
    ),
    pytest.param(
        "openai",
        {"messages": [user("Hi"), {"role": "bot", "content": "x"}]},
        "messages[1].role",
        "unknown role 'bot'",
        id="openai-role",
    ),
    pytest.param(
        "openai",
        {"messages": [user("Hi"), {"role": "assistant", "content": 7}]},
        "messages[1].content",
        "a number (7)",
        id="openai-number",
    ),
    pytest.param("openai", {"messages": [user("Hi")]}, "messages", "no assistant turn", id="openai-no-assistant"),
    pytest.param("openai", {"messages": [system("S")]}, "messages", "no assistant turn", id="openai-only-system"),
    pytest.param(
        "openai",
        {"messages": [user("Hi"), {"role": "assistant", "content": None, "tool_calls": "f()"}]},
        "messages[1].tool_calls",
        "expected a list of tool call objects",
        id="openai-bad-tool-calls",
    ),
]


GOOD_ROWS = {
    "alpaca": {"instruction": "a", "output": "b"},
    "sharegpt": {"conversations": GOOD_SHAREGPT},
    "openai": {"messages": [user("a"), assistant("b")]},
}


@pytest.mark.parametrize("format, record, field, fragment", BAD_ROWS)
def test_bad_rows_name_file_row_and_field(format, record, field, fragment):
    with pytest.raises(DataError) as caught:
        convert_records([GOOD_ROWS[format], record], format, file="data.json")
    error = caught.value
    assert (error.file, error.row, error.field) == ("data.json", 2, field)
    assert str(error).startswith(f"data.json, row 2, field '{field}': ")
    assert fragment in str(error)


@pytest.mark.parametrize(
    "format, columns, tags, field, fragment",
    [
        ("alpaca", {"images": "img"}, {}, "columns.images", "text-only"),
        ("sharegpt", {"chosen": "c"}, {}, "columns.chosen", "preference"),
        ("sharegpt", {"prompt": "question"}, {}, "columns.prompt", "takes: messages, system, tools"),
        ("alpaca", {"answer": "a"}, {}, "columns.answer", "takes: prompt, query, response, history"),
        ("alpaca", {}, {"role_tag": "role"}, "tags", "sharegpt format only"),
        ("sharegpt", {}, {"speaker_tag": "s"}, "tags.speaker_tag", "role_tag, content_tag"),
    ],
)
def test_bad_mappings_name_the_setting(format, columns, tags, field, fragment):
    with pytest.raises(DataError) as caught:
        convert_records([{}], format, file="data.json", columns=columns, tags=tags)
    assert caught.value.field == field and fragment in str(caught.value)


def test_kto_tag_column_is_accepted_and_ignored():
    record = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "label": False}
    result = convert_records(
        [record],
        "sharegpt",
        file="kto.json",
        columns={"messages": "messages", "kto_tag": "label"},
        tags={"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    )
    assert result == [[user("q"), assistant("a")]]
