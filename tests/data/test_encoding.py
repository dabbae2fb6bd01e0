import time

import numpy as np
import pytest

from workbench.config import DatasetSpec
from workbench.data import (
    IGNORE_INDEX,
    encode_conversations,
    load_conversations,
    split_validation,
    to_hf_dataset,
)
from workbench.errors import DataError

END = "<|im_end|>\n"  # ChatML's end of turn, as SmolLM2's template writes it
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

TWO_TURNS = [
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "It is 4."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "That makes 6."},
]
PLAIN_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def trained_segments(tokenizer, ids, labels):
    """The decoded runs of consecutive trained tokens."""
    segments, run = [], []
    for token, label in zip(ids, labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            run.append(token)
        elif run:
            segments.append(run)
            run = []
    if run:
        segments.append(run)
    return [tokenizer.decode(s, clean_up_tokenization_spaces=False) for s in segments]


def encode(conversations, tokenizer, cutoff_len=1024, train_on_prompt=False, **kwargs):
    return encode_conversations(
        conversations, tokenizer, cutoff_len=cutoff_len, train_on_prompt=train_on_prompt, **kwargs
    )


def test_only_the_replies_and_their_end_of_turn_tokens_are_trained(tokenizer):
    encoded = encode([TWO_TURNS], tokenizer)
    ids, labels = encoded.input_ids[0], encoded.labels[0]
    assert trained_segments(tokenizer, ids, labels) == ["It is 4." + END, "That makes 6." + END]
    # The ids are exactly the template's own tokenization of the whole conversation.
    assert ids == list(tokenizer.apply_chat_template(TWO_TURNS, tokenize=True, return_dict=False))
    # SmolLM2's template adds its default system prompt when a conversation has none.
    assert tokenizer.decode(ids).startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>")


def test_train_on_prompt_trains_every_token(tokenizer):
    encoded = encode([TWO_TURNS], tokenizer, train_on_prompt=True)
    assert encoded.labels[0] == encoded.input_ids[0]
    assert encoded.stats.trained_tokens == encoded.stats.total_tokens == len(encoded.input_ids[0])


def test_tool_results_are_masked_and_tool_calls_trained(tokenizer):
    conversation = [
        {"role": "system", "content": "You can call weather()."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": '{"name": "weather", "arguments": {"city": "Paris"}}'},
        {"role": "tool", "content": '{"sky": "clear"}'},
        {"role": "assistant", "content": "Clear skies."},
    ]
    encoded = encode([conversation], tokenizer)
    text = tokenizer.decode(encoded.input_ids[0])
    assert DEFAULT_SYSTEM not in text and "<|im_start|>tool\n" in text
    assert trained_segments(tokenizer, encoded.input_ids[0], encoded.labels[0]) == [
        conversation[2]["content"] + END,
        "Clear skies." + END,
    ]


def test_a_chat_template_argument_replaces_the_tokenizers(tokenizer):
    encoded = encode([TWO_TURNS], tokenizer, chat_template=PLAIN_CHATML)
    assert DEFAULT_SYSTEM not in tokenizer.decode(encoded.input_ids[0])
    assert trained_segments(tokenizer, encoded.input_ids[0], encoded.labels[0]) == [
        "It is 4." + END,
        "That makes 6." + END,
    ]


@pytest.mark.parametrize(
    "reply, merges",
    [
        ("plain", 0),
        (" one leading space", 0),
        ("\none leading newline", 0),
        ("  two leading spaces", 1),  # "\n " is one token: the template's newline joins the reply
        ("\n\ntwo leading newlines", 1),
        ("trailing newlines\n\n", 0),
    ],
)
def test_replies_with_leading_whitespace(tokenizer, reply, merges):
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": reply}]
    encoded = encode([conversation], tokenizer)
    (segment,) = trained_segments(tokenizer, encoded.input_ids[0], encoded.labels[0])
    assert segment == ("\n" if merges else "") + reply + END
    assert encoded.stats.boundary_merges == merges


class _SlowTokenizer:
    """The same tokenizer seen as one without character offsets, to exercise the prefix-tokenizing path."""

    is_fast = False

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self.chat_template = tokenizer.chat_template

    def __call__(self, texts, **kwargs):
        assert "return_offsets_mapping" not in kwargs
        return self._tokenizer(texts, **kwargs)

    def apply_chat_template(self, *args, **kwargs):
        return self._tokenizer.apply_chat_template(*args, **kwargs)


def test_tokenizers_without_offsets_give_the_same_result(tokenizer):
    conversations = [TWO_TURNS] + [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": reply}]
        for reply in ("  spaced", "\n\nnewlines", "plain")
    ]
    fast = encode(conversations, tokenizer)
    slow = encode(conversations, _SlowTokenizer(tokenizer))
    assert (slow.input_ids, slow.labels, slow.stats) == (fast.input_ids, fast.labels, fast.stats)


def test_truncation_keeps_the_start_and_drops_rows_left_with_nothing_to_train(tokenizer):
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello " * 5}]
    long_reply = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "word " * 200}]
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    full = encode([short, long_reply, long_prompt], tokenizer, cutoff_len=4096)
    lengths = [len(ids) for ids in full.input_ids]
    cutoff = 100
    assert lengths[0] < cutoff < lengths[1] and cutoff < lengths[2]

    cut = encode([short, long_reply, long_prompt], tokenizer, cutoff_len=cutoff)
    stats = cut.stats
    assert (stats.rows, stats.truncated_rows, stats.dropped_rows) == (2, 2, 1)
    assert cut.input_ids == [full.input_ids[0], full.input_ids[1][:cutoff]]
    assert cut.labels[1] == full.labels[1][:cutoff]
    assert stats.length_max == max(lengths)  # lengths describe the rows before the cut


def test_every_row_cut_before_its_reply_is_a_data_error(tokenizer):
    long_prompt = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    with pytest.raises(DataError, match="raise cutoff_len") as caught:
        encode([long_prompt] * 3, tokenizer, cutoff_len=50)
    assert caught.value.field == "cutoff_len"


def test_stats(tokenizer):
    conversations = [
        [{"role": "user", "content": f"Count to {n}"}, {"role": "assistant", "content": " ".join(map(str, range(n)))}]
        for n in range(1, 40)
    ]
    encoded = encode(conversations, tokenizer)
    stats = encoded.stats
    lengths = np.array([len(ids) for ids in encoded.input_ids])
    assert stats.rows == 39 and stats.truncated_rows == stats.dropped_rows == 0 and stats.cutoff_len == 1024
    assert (stats.length_min, stats.length_max) == (lengths.min(), lengths.max())
    assert stats.length_mean == pytest.approx(lengths.mean(), abs=0.01)
    assert stats.length_median == np.median(lengths)
    assert stats.length_p90 == pytest.approx(np.percentile(lengths, 90), abs=0.01)
    assert sum(stats.histogram_counts) == 39 and len(stats.histogram_edges) == len(stats.histogram_counts) + 1
    assert stats.histogram_edges[0] == lengths.min() and stats.histogram_edges[-1] == lengths.max()
    assert stats.total_tokens == lengths.sum()
    assert stats.trained_tokens == sum(label != IGNORE_INDEX for row in encoded.labels for label in row)
    assert stats.as_dict()["rows"] == 39


def test_no_conversations_encode_to_nothing(tokenizer):
    encoded = encode([], tokenizer)
    assert encoded.input_ids == [] and encoded.stats.rows == 0 and encoded.stats.histogram_counts == []


def test_a_template_that_is_not_prefix_stable_is_refused(tokenizer):
    # Marks the final message, as templates do that keep reasoning only in the last reply.
    template = (
        "{% for m in messages %}{% if loop.last %}[final]{% endif %}{{ m['role'] }}: {{ m['content'] }}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
    )
    with pytest.raises(ValueError, match="not prefix-stable") as caught:
        encode([TWO_TURNS], tokenizer, chat_template=template)
    assert not isinstance(caught.value, DataError)
    assert "conversation 1" in str(caught.value) and "model.chat_template" in str(caught.value)


def test_a_template_error_names_the_conversation(tokenizer):
    template = (
        "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('no tool role here') }}{% endif %}"
        "{{ m['content'] }}\n{% endfor %}"
    )
    tool_turn = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "call"},
        {"role": "tool", "content": "result"},
        {"role": "assistant", "content": "a"},
    ]
    with pytest.raises(ValueError, match="conversation 3: .*no tool role here"):
        encode([TWO_TURNS, TWO_TURNS, tool_turn], tokenizer, chat_template=template)


def test_a_tokenizer_without_a_chat_template_is_refused(tokenizer):
    slow = _SlowTokenizer(tokenizer)
    slow.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        encode([TWO_TURNS], slow)


def test_hf_dataset_and_validation_split(tokenizer):
    conversations = [
        [{"role": "user", "content": f"Say {n}"}, {"role": "assistant", "content": str(n)}] for n in range(20)
    ]
    encoded = encode(conversations, tokenizer)
    dataset = to_hf_dataset(encoded)
    assert dataset.column_names == ["input_ids", "labels"] and len(dataset) == 20
    assert dataset[3]["input_ids"] == encoded.input_ids[3] and dataset[3]["labels"] == encoded.labels[3]

    assert split_validation(dataset, 0.0, seed=1) == (dataset, None)
    train, val = split_validation(dataset, 0.1, seed=1)
    assert (len(train), len(val)) == (18, 2)
    _, again = split_validation(dataset, 0.1, seed=1)
    assert list(again["input_ids"]) == list(val["input_ids"])
    rows = list(train["input_ids"]) + list(val["input_ids"])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, encoded.input_ids))
    _, tiny = split_validation(dataset, 0.01, seed=1)
    assert len(tiny) == 1  # at least one row is held out
    with pytest.raises(DataError, match="leaves none to train on"):
        split_validation(dataset.select([0]), 0.5, seed=1)


def test_real_glaive_toolcall_demo_masks_every_assistant_turn(tokenizer, demo_dir):
    loaded = load_conversations(DatasetSpec(path=str(demo_dir), name="glaive_toolcall_en_demo"))
    encoded = encode(loaded.conversations, tokenizer, cutoff_len=16384)
    assert encoded.stats.rows == 300 and encoded.stats.truncated_rows == 0
    for conversation, ids, labels in zip(loaded.conversations, encoded.input_ids, encoded.labels, strict=True):
        replies = [m["content"] + END for m in conversation if m["role"] == "assistant"]
        assert trained_segments(tokenizer, ids, labels) == replies


def test_real_alpaca_demo_is_fast(tokenizer, demo_dir):
    loaded = load_conversations(DatasetSpec(path=str(demo_dir / "alpaca_en_demo.json")))
    started = time.perf_counter()
    encoded = encode(loaded.conversations, tokenizer, cutoff_len=1024)
    elapsed = time.perf_counter() - started
    assert encoded.stats.rows == 999 and encoded.stats.truncated_rows == 0
    assert elapsed < 5, f"encoding 999 rows took {elapsed:.1f}s"
    for n in (0, 500, 998):
        expected = tokenizer.apply_chat_template(loaded.conversations[n], tokenize=True, return_dict=False)
        assert encoded.input_ids[n] == list(expected)
