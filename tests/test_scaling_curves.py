"""CurveTable: the long table of the nested pipeline, validated with clear errors."""

import numpy as np
import pandas as pd
import pytest

from bayesmix.data.curves import CurveTable
from bayesmix.data.simulate_curves import random_nested_truth, simulate_curves
from bayesmix.errors import InputError, NotEnoughDataError


@pytest.fixture(scope="module")
def frame():
    truth = random_nested_truth(2, seed=3)
    df, _ = simulate_curves(truth, n_mixtures=2, model_sizes=(2e7, 6e7), tokens=np.geomspace(1e9, 1e10, 4))
    return df


def test_valid_table(frame):
    table = CurveTable.from_long(frame)
    assert table.domains == ["web", "code"]
    assert table.train_domains == ["web", "code"]
    assert list(table.mixtures.index) == ["m0", "m1"]
    assert len(table.runs) == 4 and set(table.runs["mixture"]) == {"m0", "m1"}
    assert list(table.model_sizes) == [2e7, 6e7]
    small = table.select(max_tokens=5e9)
    assert small.frame["tokens"].max() <= 5e9


def test_tokens_from_steps(frame):
    steps = frame.assign(step=frame["tokens"] / 1e6).drop(columns=["tokens"])
    table = CurveTable.from_long(steps, tokens_per_step=1e6)
    np.testing.assert_allclose(np.sort(table.frame["tokens"].unique()), np.sort(frame["tokens"].unique()))
    with pytest.raises(InputError, match="tokens_per_step"):
        CurveTable.from_long(steps)


def test_not_enough_data(frame):
    with pytest.raises(NotEnoughDataError, match="1 model size"):
        CurveTable.from_long(frame[frame["model_size"] == 2e7])
    few = frame[frame["tokens"] <= np.sort(frame["tokens"].unique())[1]]
    with pytest.raises(NotEnoughDataError, match="2 checkpoints"):
        CurveTable.from_long(few)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["model_size"]), "missing columns"),
        (lambda f: f.drop(columns=["mix_web", "mix_code"]), "mix_"),
        (lambda f: f.assign(loss=np.where(f.index == 3, -1.0, f["loss"])), "finite and positive"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "several losses"),
        (lambda f: f.assign(model_size=np.where(f.index == 0, 3e7, f["model_size"])), "several values"),
        (lambda f: f.assign(mix_web=0.9), "do not sum to 1"),
    ],
)
def test_bad_input(frame, change, message):
    with pytest.raises(InputError, match=message):
        CurveTable.from_long(change(frame.copy()))
