"""Several datasets in one run: shares are checked in the config, counts follow the rules in
workbench/data/mixing.py, the draw is seeded, and the worker's data step reports what each dataset gave."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.conftest import PRESETS, only_dataset
from workbench.config import DataConfig, DatasetSpec, load_config, parse_config
from workbench.data import mixing
from workbench.errors import ConfigError


def data(*shares, strategy="no_repeats"):
    specs = [DatasetSpec(path=f"d{i}.json", share=share) for i, share in enumerate(shares)]
    return DataConfig(datasets=specs, mix_strategy=strategy)


def test_shares_add_up_or_the_rest_is_divided():
    assert data(None, None).shares() is None  # concatenated
    assert data(0.8, 0.2).shares() == pytest.approx([0.8, 0.2])
    assert data(None, 0.2).shares() == pytest.approx([0.8, 0.2])
    assert data(0.5, None, None).shares() == pytest.approx([0.5, 0.25, 0.25])
    assert data(0.33, 0.33, 0.34).shares() == pytest.approx([0.33, 0.33, 0.34])


@pytest.mark.parametrize(
    "shares, words",
    [
        ((0.8, 0.3), "add up to 1.1; they must add up to 1"),
        ((0.5, 0.4), "add up to 0.9; they must add up to 1"),
        ((1.0, None), "leaves nothing for the 1 dataset(s) without one"),
    ],
)
def test_shares_that_do_not_add_up_are_refused_naming_the_field(shares, words):
    specs = [{"path": f"d{i}.json", **({"share": s} if s is not None else {})} for i, s in enumerate(shares)]
    with pytest.raises(ConfigError) as err:
        parse_config({"data": {"datasets": specs}})
    (problem,) = err.value.problems
    assert problem.field == "data" and words in problem.message, problem


@pytest.mark.parametrize(
    "pools, shares, strategy, expected",
    [
        ((100, 1000), (0.8, 0.2), "no_repeats", [100, 25]),  # yours whole, the general set sampled down
        ((1000, 10), (0.8, 0.2), "no_repeats", [40, 10]),  # the small general set limits the mix
        ((1000, 10), (0.8, 0.2), "every_row", [1000, 250]),  # every row at least once: the general set repeats
        ((4, 1000), (0.8, 0.2), "no_repeats", [4, 1]),
        ((1, 100), (0.3, 0.7), "no_repeats", [1, 2]),  # N = 3: 0.9 and 2.1 rounded by the largest remainder
        ((7, 7, 7), (1 / 3, 1 / 3, 1 / 3), "no_repeats", [7, 7, 7]),
        ((10, 3), (0.5, 0.5), "every_row", [10, 10]),
    ],
)
def test_counts_follow_the_shares(pools, shares, strategy, expected):
    got = mixing.counts(pools, shares, strategy)
    assert got == expected
    if strategy == "no_repeats":
        assert all(count <= pool for count, pool in zip(got, pools, strict=True))
    else:
        assert all(count >= pool for count, pool in zip(got, pools, strict=True))


def test_a_mix_is_drawn_with_the_seed_and_holds_the_shares():
    yours = [("yours", i) for i in range(100)]
    general = [("general", i) for i in range(1000)]
    rows, parts = mixing.mix([yours, general], [0.8, 0.2], "no_repeats", seed=42, files=["y.json", "g.json"])
    assert Counter(source for source, _ in rows) == {"yours": 100, "general": 25}  # 80 % / 20 %
    assert len(set(rows)) == len(rows)  # no row twice
    assert [p.as_dict() for p in parts] == [
        {"file": "y.json", "share": 0.8, "rows": 100, "pool": 100},
        {"file": "g.json", "share": 0.2, "rows": 25, "pool": 1000},
    ]
    again, _ = mixing.mix([yours, general], [0.8, 0.2], "no_repeats", seed=42, files=["y.json", "g.json"])
    other, _ = mixing.mix([yours, general], [0.8, 0.2], "no_repeats", seed=7, files=["y.json", "g.json"])
    assert again == rows  # same seed, same rows in the same order
    assert {r for r in other if r[0] == "general"} != {r for r in rows if r[0] == "general"}
    assert rows[:10] != yours[:10]  # shuffled: the first rows are a mix, not the first dataset


def test_every_row_repeats_the_small_pool_whole_then_draws_the_rest():
    rows = mixing.draw(4, 10, random.Random(0))
    assert rows[:8] == [0, 1, 2, 3, 0, 1, 2, 3]  # the pool twice, whole
    assert len(set(rows[8:])) == 2  # then two rows of it, not the same one twice


def test_without_shares_the_datasets_are_concatenated():
    rows, parts = mixing.mix([[1, 2], [3]], None, "no_repeats", seed=1, files=["a", "b"])
    assert rows == [1, 2, 3] and [p.rows for p in parts] == [2, 1]
    assert mixing.describe([p.as_dict() for p in parts]) == "a (2 rows) · b (1 row)"


def test_describe_says_the_share_and_what_was_left_out():
    parts = [
        {"file": "faq.csv", "share": 0.8, "rows": 4, "pool": 4},
        {"file": "alpaca_en_demo.json", "share": 0.2, "rows": 1, "pool": 1000},
        {"file": "small.json", "share": 0.2, "rows": 9, "pool": 3},
    ]
    assert mixing.describe(parts) == (
        "faq.csv 80 % (4 rows) · alpaca_en_demo.json 20 % (1 of 1,000 rows) · small.json 20 % (9 rows, 3 repeated)"
    )


def test_the_cli_adds_a_dataset_with_its_share(tmp_path):
    config = load_config(
        PRESETS / "sft-lora-identity.yaml",
        [
            only_dataset(PRESETS / "data" / "identity.json"),  # without the preset's own replay dataset
            f"data.datasets.1.path={PRESETS / 'data' / 'alpaca_en_demo.json'}",
            "data.datasets.1.share=0.2",
            "data.datasets.1.max_samples=50",
        ],
    )
    first, second = config.data.datasets
    assert first.path.endswith("identity.json") and first.share is None
    assert (second.share, second.max_samples) == (0.2, 50)
    assert config.data.shares() == pytest.approx([0.8, 0.2])
    with pytest.raises(ConfigError, match="data.datasets.3.path: cannot set: .3. is not an index of a list of 1"):
        load_config(
            PRESETS / "sft-lora-identity.yaml",
            [only_dataset(PRESETS / "data" / "identity.json"), "data.datasets.3.path=x.json"],
        )


def test_the_worker_data_step_mixes_by_the_shares(tmp_path):
    """What the worker trains on (load_mixed), with max_samples as each pool and the seed of the run."""
    config = load_config(
        PRESETS / "sft-lora-identity.yaml",
        [
            only_dataset(PRESETS / "data" / "identity.json"),  # without the preset's own replay dataset
            "data.datasets.0.max_samples=20",
            "data.datasets.0.share=0.8",
            f"data.datasets.1.path={PRESETS / 'data' / 'alpaca_en_demo.json'}",
        ],
    )
    mixed = mixing.load_mixed(config.data, "conversations", seed=config.train.seed)
    assert [(p.file, p.rows, p.pool) for p in mixed.parts] == [
        ("identity.json", 20, 20),
        ("alpaca_en_demo.json", 5, 999),
    ]
    identity = {c[-1]["content"] for c in mixed.loaded[0].conversations}
    assert sum(c[-1]["content"] in identity for c in mixed.rows) == 20
    assert len(mixed.rows) == 25
