"""From a dataset spec to training rows: fetch a hub dataset into the store, resolve dataset_info.json or a
save_to_disk folder to what it holds, read it, detect the layout, convert.

Each stage reads its own kind of data (`load_for`): conversations (SFT), preference pairs, labelled replies (KTO),
prompts (GRPO, RLOO) or raw text (continued pre-training)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from workbench.config import DataConfig, DatasetSpec
from workbench.data import hub, placeholders, saved
from workbench.data.dataset_info import INFO_FILE, is_dataset_info, resolve_entry
from workbench.data.formats import (
    Conversation,
    Format,
    UnknownLayout,
    convert_records,
    detect_layout,
    is_pair_row,
    with_system,
)
from workbench.data.head import Head, read_head
from workbench.data.preference import PairFormat, PreferencePair, convert_pairs, detect_pair_format
from workbench.data.prompts import PromptItem, convert_prompts, detect_prompt_layout
from workbench.data.reading import read_records
from workbench.data.text import convert_texts, text_field
from workbench.data.unpaired import LabeledExample, convert_labeled, detect_labeled_format, label_column, unpair
from workbench.errors import DataError


@dataclass
class LoadedDataset:
    """A dataset ready for encoding.

    `path` is the data file actually read (the one a dataset_info.json entry names), `rows` the number of rows in
    it before `max_samples` (None when only its first rows were read and it goes on), and `format`, `columns`
    (the mapping given, and the names of a recognised layout) and `tags` how it was read: with them, the file
    alone describes the dataset (see `store.freeze_spec`). Placeholders are filled with the spec's values.
    """

    path: Path
    format: Format
    conversations: list[Conversation]
    rows: int | None
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def load_conversations(spec: DatasetSpec, *, first: int | None = None) -> LoadedDataset:
    """Read and validate one dataset (only its `first` rows if given); raises DataError naming the file, row and
    field of the first problem."""
    source = _Source.resolve(spec, first)
    if source.ranking:
        raise DataError(
            f"{spec.name!r} is preference data (ranking: true): it trains in a preference stage "
            "(stage.name: dpo); supervised fine-tuning needs conversations",
            file=INFO_FILE,
            field="name",
        )
    format, columns, tags = source.format, source.columns, source.tags
    if format == "auto":
        try:
            format, columns = detect_layout(source.used, source.file, columns=columns, tags=tags)
        except UnknownLayout:
            first = source.used[0] if source.used and isinstance(source.used[0], dict) else {}
            if columns or not text_field(first, {}):
                raise
            raise DataError(
                "this is raw text (a text column, or a .txt file): it trains in continued pre-training "
                "(stage.name: pt); supervised fine-tuning needs conversations",
                file=source.file,
            ) from None
    conversations = convert_records(source.used, format, file=source.file, columns=columns, tags=tags)
    conversations = placeholders.fill_examples(conversations, spec.fill)
    return LoadedDataset(source.path, format, conversations, source.rows, columns, tags)


@dataclass
class LoadedExamples:
    """Rows for a TRL stage: preference pairs, labelled replies or prompts; fields as in LoadedDataset.

    `format` is how the rows were laid out (a pair layout, a supervised format, or "prompts").
    """

    path: Path
    format: str
    examples: list[PreferencePair] | list[LabeledExample] | list[PromptItem]
    rows: int | None
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def pairs(self) -> list[PreferencePair]:
        return self.examples  # type: ignore[return-value]

    def trl_rows(self) -> list[dict]:
        """The rows in the conversational layout TRL's trainers take."""
        return [example.as_trl() for example in self.examples]


# dataset_info.json's `formatting` of a ranking entry, as the pair layout it means.
_RANKING_LAYOUTS: dict[str, PairFormat] = {"alpaca": "columns", "sharegpt": "sharegpt", "openai": "openai"}


@dataclass
class _Source:
    """A spec resolved to its data file: through its dataset_info.json entry, if it names one. The file is read
    on first use of `records`, so an entry of the wrong kind is refused before its file is opened."""

    path: Path
    max_samples: int | None
    format: str  # the spec's or the entry's format ("auto" when neither says)
    columns: dict[str, str]
    tags: dict[str, str]
    ranking: bool | None  # what the entry says; None without dataset_info.json
    fill: dict[str, str]  # placeholder values
    first: int | None = None  # read only this many rows from the start of the file (a preview)

    @classmethod
    def resolve(cls, spec: DatasetSpec, first: int | None = None) -> _Source:
        # A hub dataset is fetched into the store first (never in the UI process: the page offers only files the
        # workbench owns); what is read is then the stored file.
        path = hub.fetch(spec.path, spec.subset, spec.split) if hub.is_hub(spec.path) else Path(spec.path)
        path = path.expanduser().resolve()
        format, columns, tags, ranking = spec.format, dict(spec.columns), dict(spec.tags), None
        if saved.is_saved(path):
            path = saved.split_folder(path, spec.split)
        elif is_dataset_info(path):
            entry = resolve_entry(path, spec.name)
            path, ranking = entry.path, entry.ranking
            if entry.hub is not None:
                try:
                    path = hub.fetch(entry.hub, spec.subset or entry.subset, spec.split or entry.split)
                except DataError as err:  # said of the entry that names the hub dataset
                    raise DataError(f"{entry.name!r}: {err}", file=INFO_FILE, field="name") from None
            # Settings in the spec override the entry's, so one entry can be read a little differently.
            format = entry.format if format == "auto" else format
            columns, tags = {**entry.columns, **columns}, {**entry.tags, **tags}
        return cls(path, spec.max_samples, format, columns, tags, ranking, dict(spec.fill), first)

    @cached_property
    def _head(self) -> Head | None:
        if self.first is None:
            return None
        return saved.head(self.path, self.first) if self.path.is_dir() else read_head(self.path, self.first)

    @cached_property
    def records(self) -> list:
        if self._head is not None:
            return self._head.records
        return saved.read(self.path) if self.path.is_dir() else read_records(self.path)

    @property
    def file(self) -> str:
        """The name errors give the data: its file, or its save_to_disk folder (and split)."""
        return saved.name_of(self.path) if self.path.is_dir() else self.path.name

    @property
    def rows(self) -> int | None:
        """How many rows the file holds; None when only its first rows were read and it goes on."""
        return len(self.records) if self._head is None else self._head.total

    @property
    def used(self) -> list:
        """The rows within max_samples."""
        return self.records[: self.max_samples] if self.max_samples else self.records

    def loaded(self, format: str, examples: list, columns: dict[str, str] | None = None) -> LoadedExamples:
        """The examples, their placeholders filled; `columns`: the mapping they were read with, if not the spec's."""
        examples = placeholders.fill_examples(examples, self.fill)
        return LoadedExamples(self.path, format, examples, self.rows, columns or self.columns, self.tags)

    def has_pairs(self) -> bool:
        if self.ranking is not None:
            return self.ranking
        return bool(self.used) and isinstance(self.used[0], dict) and is_pair_row(self.used[0], self.columns)


def first_rows(spec: DatasetSpec, rows: int) -> list:
    """The first `rows` records of a dataset's file as they are (through its dataset_info.json entry, if any)."""
    source = _Source.resolve(spec, rows)
    return source.used


def load_pairs(spec: DatasetSpec, *, first: int | None = None) -> LoadedExamples:
    """Read and validate one preference dataset; raises DataError naming the file, row and field of a problem."""
    source = _Source.resolve(spec, first)
    if source.ranking is False:
        raise DataError(f"{spec.name!r} is not preference data: its entry has no `ranking: true`", file=INFO_FILE,
                        field="name")  # fmt: skip
    layout = _RANKING_LAYOUTS[source.format] if source.ranking else None
    layout = layout or detect_pair_format(source.used, source.file, source.columns)
    pairs = convert_pairs(source.used, layout, file=source.file, columns=source.columns, tags=source.tags)
    return source.loaded(layout, pairs)


def load_labeled(spec: DatasetSpec, *, first: int | None = None) -> LoadedExamples:
    """Replies labelled desirable or not (KTO): labelled conversations, or preference pairs split in two."""
    source = _Source.resolve(spec, first)
    if source.has_pairs():
        pairs = load_pairs(spec, first=first)  # filled already
        return dataclasses.replace(pairs, examples=unpair(pairs.pairs))
    file = source.file
    format, columns = source.format, source.columns
    if format == "auto":
        format, columns = detect_labeled_format(source.used, file, columns, source.tags)
    examples = convert_labeled(source.used, format, file=file, columns=columns, tags=source.tags)
    return source.loaded(format, examples, columns)


def load_prompts(spec: DatasetSpec, *, first: int | None = None) -> LoadedExamples:
    """Prompts (with reference answers where the data has them) for online RL."""
    source = _Source.resolve(spec, first)
    file = source.file
    if source.has_pairs():
        raise DataError(
            "this is preference data (chosen/rejected); RL stages need prompts (a `prompt` column, or "
            "conversations whose last reply is the reference answer)", file=file, row=1,
        )  # fmt: skip
    layout, columns = source.format, source.columns
    if layout == "auto":
        layout, columns = detect_prompt_layout(source.used, file, columns, source.tags)
    items = convert_prompts(source.used, layout, file=file, columns=columns, tags=source.tags)
    return source.loaded(layout, items, columns)


def load_text(spec: DatasetSpec, *, first: int | None = None) -> LoadedExamples:
    """Raw text for continued pre-training: a .txt file's documents, or each row's text column."""
    source = _Source.resolve(spec, first)
    if source.ranking:
        raise DataError(f"{spec.name!r} is preference data (ranking: true), not raw text", file=INFO_FILE,
                        field="name")  # fmt: skip
    documents = convert_texts(source.used, source.file, source.columns)
    return source.loaded("text", documents)


LOADERS = {"pairs": load_pairs, "labeled": load_labeled, "prompts": load_prompts, "text": load_text}
# Each kind of data as people call it.
KIND_NAMES = {
    "conversations": "conversations",
    "pairs": "preference pairs",
    "labeled": "labelled replies",
    "prompts": "prompts",
    "text": "raw text",
}


def detect_kind(spec: DatasetSpec) -> str:
    """What a dataset holds, by its first row: "pairs", "labeled" (replies with a label), "prompts" (a prompt
    column without replies), "text" (a text column, or a .txt file, and no conversation) or "conversations".
    Reads only the start of the file."""
    source = _Source.resolve(spec, first=1)
    if source.has_pairs():
        return "pairs"
    first = source.used[0] if source.used and isinstance(source.used[0], dict) else {}
    if label_column(source.columns) in first:
        return "labeled"
    if "text" in source.columns or (text_field(first, {}) and not _has_reply(first, source)):
        return "text"
    if source.columns.get("prompt", "prompt") in first and not _has_reply(first, source):
        return "prompts"
    return "conversations"


def _has_reply(record: dict, source: _Source) -> bool:
    """Whether a row reads as a conversation (a prompt and its reply), not a prompt alone."""
    try:
        detect_layout([record], source.file, columns=source.columns, tags=source.tags)
    except UnknownLayout:
        return False
    return True


def load_for(
    kind: str, spec: DatasetSpec, *, first: int | None = None, system_prompt: str | None = None
) -> LoadedDataset | LoadedExamples:
    """Load a dataset as the kind of data a stage trains on; only its `first` rows if given (for a preview: the
    file is read no further than those rows, and `rows` is None unless the file ends with them). Conversations
    without a system message get `system_prompt`, if given."""
    if kind == "conversations":
        loaded = load_conversations(spec, first=first)
    else:
        loaded = LOADERS[kind](spec, first=first)
    return add_system_prompt(loaded, system_prompt)


def add_system_prompt(
    loaded: LoadedDataset | LoadedExamples, system_prompt: str | None
) -> LoadedDataset | LoadedExamples:
    """Every conversation (every example's prompt) that has no system message starts with `system_prompt`; raw
    text has no conversation to put it in."""
    if not system_prompt or loaded.format == "text":
        return loaded
    if isinstance(loaded, LoadedDataset):
        return dataclasses.replace(loaded, conversations=[with_system(c, system_prompt) for c in loaded.conversations])
    examples = [dataclasses.replace(e, prompt=with_system(e.prompt, system_prompt)) for e in loaded.examples]
    return dataclasses.replace(loaded, examples=examples)


def load_all(config: DataConfig) -> list[LoadedDataset]:
    """Load every dataset of a data config, in order, with the config's system prompt."""
    return [add_system_prompt(load_conversations(spec), config.system_prompt) for spec in config.datasets]
