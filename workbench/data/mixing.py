"""Several datasets in one run, each with a share of the rows (`data.datasets[i].share`).

How a mix is made, in this order:

1. A dataset's *pool* is its rows, or its first `max_samples` rows.
2. Without shares, the pools are concatenated: every row once.
3. With shares (`DataConfig.shares()`: datasets without one divide what is left equally), the mix has N rows and
   dataset i gives round(share_i × N) of them (largest remainders, so the counts add up to N):
   - `no_repeats` (the default): N is the largest size at which no dataset repeats a row, min_i ⌊pool_i / share_i⌋;
     bigger pools are sampled down to their share.
   - `every_row`: N is the smallest size at which every row is used, max_i ⌈pool_i / share_i⌉; a smaller pool is
     repeated whole as often as it fits, and the rest of its count drawn without repeating.
   Which rows are drawn, and their order, is random with the run's seed (`train.seed`): the same config gives the
   same mix. The mix is drawn once; every epoch passes over the same N rows.
4. The validation split (`data.val_size`) is taken from the mixed rows; rows that the cutoff leaves with nothing
   to train on are dropped after mixing, as they are from a single dataset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from workbench.config import DataConfig, MixStrategy
from workbench.errors import DataError

T = TypeVar("T")
_EPSILON = 1e-9  # shares are floats: 4 / 0.8 must count as 5


@dataclass(frozen=True)
class Part:
    """What one dataset gives a run: `rows` of its `pool` rows (repeats counted), as `share` of the mix (None:
    concatenated)."""

    file: str
    share: float | None
    rows: int
    pool: int

    def as_dict(self) -> dict:
        return {"file": self.file, "share": self.share, "rows": self.rows, "pool": self.pool}


def counts(pools: Sequence[int], shares: Sequence[float], strategy: MixStrategy = "no_repeats") -> list[int]:
    """How many rows each dataset gives a mix (see the module's rules); `shares` add up to 1."""
    if len(pools) != len(shares) or not pools:
        raise ValueError(f"{len(pools)} pools for {len(shares)} shares")
    if strategy == "no_repeats":
        size = min(math.floor(pool / share + _EPSILON) for pool, share in zip(pools, shares, strict=True))
    else:
        size = max(math.ceil(pool / share - _EPSILON) for pool, share in zip(pools, shares, strict=True))
    exact = [share * size for share in shares]
    given = [math.floor(value + _EPSILON) for value in exact]
    # The rows left by rounding down go to the largest remainders (the first dataset first among equals).
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - given[i]), i))
    for i in by_remainder[: size - sum(given)]:
        given[i] += 1
    return given


def draw(pool: int, count: int, rng: random.Random) -> list[int]:
    """`count` row indices of a pool of `pool` rows: whole copies of the pool while they fit, the rest drawn
    without repeating."""
    whole, rest = divmod(count, pool)
    return [i for _ in range(whole) for i in range(pool)] + rng.sample(range(pool), rest)


def mix(
    pools: Sequence[Sequence[T]],
    shares: Sequence[float] | None,
    strategy: MixStrategy,
    seed: int,
    files: Sequence[str],
) -> tuple[list[T], list[Part]]:
    """The rows a run trains on, from each dataset's pool (its rows within max_samples), and what each gave.

    Without shares the pools are concatenated in order; with shares the rows are drawn and shuffled with `seed`.
    """
    sizes = [len(pool) for pool in pools]
    if shares is None:
        parts = [Part(file, None, size, size) for file, size in zip(files, sizes, strict=True)]
        return [row for pool in pools for row in pool], parts
    empty = next((file for file, size in zip(files, sizes, strict=True) if size == 0), None)
    if empty is not None:
        raise DataError("has no rows to give the mix its share", file=empty)
    rng = random.Random(seed)
    wanted = counts(sizes, shares, strategy)
    rows = [pool[i] for pool, count in zip(pools, wanted, strict=True) for i in draw(len(pool), count, rng)]
    rng.shuffle(rows)
    parts = [Part(*item) for item in zip(files, shares, wanted, sizes, strict=True)]
    return rows, parts


def describe(parts: Sequence[dict], say: Callable[..., str] | None = None) -> str:
    """`faq.csv 80 % (4 rows) · alpaca_en_demo.json 20 % (1 of 1,000 rows)` for people; parts as `Part.as_dict`.
    `say(template, **values)` words it (the page passes its translator); English by default."""
    say = say or (lambda text, **values: text.format(**values))
    shown = []
    for part in parts:
        share = f" {part['share']:.0%}".replace("%", " %") if part.get("share") is not None else ""
        rows, pool = part["rows"], part["pool"]
        if rows > pool:
            of = say("{rows:,} rows, {pool:,} repeated", rows=rows, pool=pool)
        elif rows == pool:
            of = say("{rows:,} row" if rows == 1 else "{rows:,} rows", rows=rows)
        else:
            of = say("{rows:,} of {pool:,} rows", rows=rows, pool=pool)
        shown.append(f"{part['file']}{share} ({of})")
    return " · ".join(shown)


@dataclass
class Mixed:
    """The rows a run trains on (conversations, examples or documents, by the kind loaded), what each dataset
    gave, and the datasets as loaded."""

    rows: list
    parts: list[Part]
    loaded: list

    def report(self) -> list[dict]:
        return [part.as_dict() for part in self.parts]


def load_mixed(data: DataConfig, kind: str, seed: int) -> Mixed:
    """Load every training dataset of `data` as `kind` of data (with the data's system prompt), and mix them by
    their shares with `seed` (concatenated where none has a share)."""
    from workbench.data import saved
    from workbench.data.loading import LoadedDataset, load_for

    loaded = [load_for(kind, spec, system_prompt=data.system_prompt) for spec in data.training_datasets()]
    pools = [ds.conversations if isinstance(ds, LoadedDataset) else ds.examples for ds in loaded]
    files = [saved.name_of(ds.path) if ds.path.is_dir() else ds.path.name for ds in loaded]
    rows, parts = mix(pools, data.shares(), data.mix_strategy, seed, files)
    return Mixed(rows, parts, loaded)
