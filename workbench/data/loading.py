"""From a dataset spec to conversations: read the file, resolve dataset_info.json, detect the format, convert."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.config import DataConfig, DatasetSpec
from workbench.data.dataset_info import INFO_FILE, is_dataset_info, resolve_entry
from workbench.data.formats import Conversation, Format, convert_records, detect_format
from workbench.data.preference import PairFormat, PreferencePair, convert_pairs, detect_pair_format
from workbench.data.reading import read_records
from workbench.errors import DataError


@dataclass
class LoadedDataset:
    """A dataset ready for encoding.

    `path` is the data file actually read (the one a dataset_info.json entry names), `rows` the number of rows in
    it before `max_samples`, and `format`, `columns` and `tags` how it was read: with them, the file alone
    describes the dataset (see `store.freeze_spec`).
    """

    path: Path
    format: Format
    conversations: list[Conversation]
    rows: int
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def load_conversations(spec: DatasetSpec) -> LoadedDataset:
    """Read and validate one dataset; raises DataError naming the file, row and field of the first problem."""
    path = Path(spec.path).expanduser().resolve()
    format, columns, tags = spec.format, dict(spec.columns), dict(spec.tags)
    if is_dataset_info(path):
        entry = resolve_entry(path, spec.name)
        if entry.ranking:
            raise DataError(
                f"{entry.name!r} is preference data (ranking: true): it trains in a preference stage "
                "(stage.name: dpo); supervised fine-tuning needs conversations",
                file=INFO_FILE,
                field="name",
            )
        path = entry.path
        # Settings in the spec override the entry's, so one entry can be read a little differently.
        format = entry.format if format == "auto" else format
        columns, tags = {**entry.columns, **columns}, {**entry.tags, **tags}
    records = read_records(path)
    used = records[: spec.max_samples] if spec.max_samples else records
    if format == "auto":
        format = detect_format(used, path.name, columns=columns, tags=tags)
    conversations = convert_records(used, format, file=path.name, columns=columns, tags=tags)
    return LoadedDataset(
        path=path, format=format, conversations=conversations, rows=len(records), columns=columns, tags=tags
    )


@dataclass
class LoadedPairs:
    """Preference pairs ready for a preference stage; fields as in LoadedDataset."""

    path: Path
    format: PairFormat
    pairs: list[PreferencePair]
    rows: int
    columns: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


# dataset_info.json's `formatting` of a ranking entry, as the pair layout it means.
_RANKING_LAYOUTS: dict[str, PairFormat] = {"alpaca": "columns", "sharegpt": "sharegpt", "openai": "openai"}


def load_pairs(spec: DatasetSpec) -> LoadedPairs:
    """Read and validate one preference dataset; raises DataError naming the file, row and field of a problem."""
    path = Path(spec.path).expanduser().resolve()
    columns, tags, layout = dict(spec.columns), dict(spec.tags), None
    if is_dataset_info(path):
        entry = resolve_entry(path, spec.name)
        if not entry.ranking:
            raise DataError(
                f"{entry.name!r} is not preference data: its entry has no `ranking: true`", file=INFO_FILE,
                field="name",
            )  # fmt: skip
        path, layout = entry.path, _RANKING_LAYOUTS[entry.format]
        columns, tags = {**entry.columns, **columns}, {**entry.tags, **tags}
    records = read_records(path)
    used = records[: spec.max_samples] if spec.max_samples else records
    layout = layout or detect_pair_format(used, path.name, columns)
    pairs = convert_pairs(used, layout, file=path.name, columns=columns, tags=tags)
    return LoadedPairs(path=path, format=layout, pairs=pairs, rows=len(records), columns=columns, tags=tags)


def load_all(config: DataConfig) -> list[LoadedDataset]:
    """Load every dataset of a data config, in order."""
    return [load_conversations(spec) for spec in config.datasets]
