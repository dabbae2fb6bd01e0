"""Encoded data as a `datasets.Dataset` (the form TRL's SFTTrainer takes pre-tokenized), and the validation split."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.data.encoding import EncodedData
from workbench.errors import DataError

if TYPE_CHECKING:
    from datasets import Dataset


# Per token, 1 where the run learns the base model's distribution in place of the data's token (rows of datasets
# with `answers: base_distribution`; workbench/training/distill.py).
DISTILL_COLUMN = "distill"


def to_hf_dataset(encoded: EncodedData, distill: Sequence[bool] | None = None) -> Dataset:
    """A Dataset with `input_ids` and `labels` columns; TRL uses the labels as they are (-100 is not trained).
    With `distill` (a flag per kept row), also a DISTILL_COLUMN that marks every token of the flagged rows."""
    from datasets import Dataset, Features, List, Value

    columns = {"input_ids": encoded.input_ids, "labels": encoded.labels}
    features = {"input_ids": List(Value("int64")), "labels": List(Value("int64"))}
    if distill is not None:
        columns[DISTILL_COLUMN] = [
            [int(flag)] * len(ids) for flag, ids in zip(distill, encoded.input_ids, strict=True)
        ]
        features[DISTILL_COLUMN] = List(Value("int8"))
    return Dataset.from_dict(columns, features=Features(features))


def split_validation(dataset: Dataset, val_size: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out a random `val_size` share of rows (at least one) for evaluation; no split when val_size is 0."""
    if val_size <= 0:
        return dataset, None
    if val_size >= 1:
        raise ValueError(f"val_size must be below 1, got {val_size}")
    rows = len(dataset)
    held_out = max(1, round(rows * val_size))
    if held_out >= rows:
        raise DataError(
            f"val_size={val_size} of {rows} rows leaves none to train on; lower val_size or add rows", field="val_size"
        )
    split = dataset.train_test_split(test_size=held_out, seed=seed, shuffle=True)
    return split["train"], split["test"]
