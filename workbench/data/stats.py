"""Summary numbers of an encoded dataset, for the log, the run status and the UI's data preview."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class DataStats:
    """What encoding made of a dataset.

    `rows` are the rows kept for training; `truncated_rows` were cut to `cutoff_len` (and kept unless nothing
    trainable was left); `dropped_rows` lost every trained token to the cut. The `length_*` numbers and the
    histogram describe token lengths *before* truncation over every encoded row, so they show what `cutoff_len`
    cuts. `total_tokens` and `trained_tokens` (labels other than -100) count the kept rows after truncation.
    `boundary_merges` counts reply boundaries that fell inside a token (a reply starting with whitespace that the
    tokenizer merged with the template's newline); that token was trained as part of the reply.
    """

    rows: int
    truncated_rows: int
    dropped_rows: int
    cutoff_len: int
    length_min: int
    length_mean: float
    length_median: float
    length_p90: float
    length_max: int
    histogram_edges: list[float]
    histogram_counts: list[int]
    total_tokens: int
    trained_tokens: int
    boundary_merges: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


def compute_stats(
    lengths: list[int],
    *,
    rows: int,
    truncated_rows: int,
    dropped_rows: int,
    cutoff_len: int,
    total_tokens: int,
    trained_tokens: int,
    boundary_merges: int = 0,
) -> DataStats:
    """Summarize token lengths (before truncation) together with the encoding's counts."""
    if lengths:
        values = np.asarray(lengths)
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
        summary = {
            "length_min": int(values.min()),
            "length_mean": round(float(values.mean()), 2),
            "length_median": float(np.median(values)),
            "length_p90": round(float(np.percentile(values, 90)), 2),
            "length_max": int(values.max()),
            "histogram_edges": [round(float(edge), 2) for edge in edges],
            "histogram_counts": [int(count) for count in counts],
        }
    else:
        summary = {
            "length_min": 0,
            "length_mean": 0.0,
            "length_median": 0.0,
            "length_p90": 0.0,
            "length_max": 0,
            "histogram_edges": [],
            "histogram_counts": [],
        }
    return DataStats(
        rows=rows,
        truncated_rows=truncated_rows,
        dropped_rows=dropped_rows,
        cutoff_len=cutoff_len,
        total_tokens=total_tokens,
        trained_tokens=trained_tokens,
        boundary_merges=boundary_merges,
        **summary,
    )
