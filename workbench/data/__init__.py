"""Datasets: reading files, converting their records into conversations, encoding them for training, storing them.

The path a run takes: `load_all(config.data)` -> `encode_conversations(...)` -> `to_hf_dataset(...)` ->
`split_validation(...)`. Before a run is launched, `freeze_spec` validates each dataset and copies its file into
the store, so the frozen run config names files that cannot change.
"""

from workbench.data import placeholders
from workbench.data.dataset_info import InfoEntry, resolve_entry
from workbench.data.encoding import IGNORE_INDEX, EncodedData, encode_conversations
from workbench.data.formats import Conversation, Format, Message, convert_records, detect_format
from workbench.data.hf_dataset import split_validation, to_hf_dataset
from workbench.data.loading import (
    LoadedDataset,
    LoadedExamples,
    load_all,
    load_conversations,
    load_for,
    load_labeled,
    load_pairs,
    load_prompts,
)
from workbench.data.preference import PreferencePair
from workbench.data.reading import DEFAULT_MAX_BYTES, read_records
from workbench.data.stats import DataStats
from workbench.data.store import StoredDataset, freeze_spec, store_dataset

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IGNORE_INDEX",
    "Conversation",
    "DataStats",
    "EncodedData",
    "Format",
    "InfoEntry",
    "LoadedDataset",
    "LoadedExamples",
    "Message",
    "PreferencePair",
    "StoredDataset",
    "convert_records",
    "detect_format",
    "encode_conversations",
    "freeze_spec",
    "load_all",
    "load_conversations",
    "load_for",
    "load_labeled",
    "load_pairs",
    "load_prompts",
    "placeholders",
    "read_records",
    "resolve_entry",
    "split_validation",
    "store_dataset",
    "to_hf_dataset",
]
