import numpy as np

from mtl_runner.data.splits import split_indices


def test_splits_are_disjoint_cover_all_rows_and_have_the_asked_sizes():
    parts = split_indices(100, 0.15, 0.15, seed=0)
    together = np.concatenate(list(parts.values()))
    assert sorted(together.tolist()) == list(range(100))
    assert {k: len(v) for k, v in parts.items()} == {"train": 70, "validation": 15, "test": 15}


def test_same_seed_same_split_other_seed_other_split():
    a, b, c = (split_indices(50, 0.2, 0.2, seed=s) for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_stratified_split_keeps_class_proportions():
    strata = np.array(["a"] * 80 + ["b"] * 20, dtype=object)
    parts = split_indices(100, 0.2, 0.2, seed=1, strata=strata)
    for name in ("validation", "test"):
        labels = strata[parts[name]]
        assert (labels == "b").sum() == 4 and (labels == "a").sum() == 16


def test_tiny_strata_fall_back_to_a_plain_split():
    strata = np.array(["a"] * 9 + ["b"], dtype=object)  # 'b' cannot be in every split
    parts = split_indices(10, 0.2, 0.2, seed=0, strata=strata)
    plain = split_indices(10, 0.2, 0.2, seed=0)
    assert {k: v.tolist() for k, v in parts.items()} == {k: v.tolist() for k, v in plain.items()}
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(10))
    assert {k: len(v) for k, v in parts.items()} == {"train": 6, "validation": 2, "test": 2}


def test_zero_fractions_keep_every_row_for_training():
    parts = split_indices(10, 0.0, 0.0, seed=0)
    assert len(parts["train"]) == 10 and len(parts["test"]) == 0
