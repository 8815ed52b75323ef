"""The greedy target-region variance batch (:func:`bayesmix.design.region_variance_batch`)."""

from __future__ import annotations

import numpy as np
import pytest

from bayesmix.design import region_variance_batch
from bayesmix.errors import InputError


def _draws(seed: int = 0):
    """Candidates 0 and 1 (an exact copy) reveal the region's first part, 2 its second, 3 nothing."""
    rng = np.random.default_rng(seed)
    first, second, other = rng.normal(size=(3, 400, 1))
    draws = np.stack(
        [
            np.c_[first, 0.5 * first],
            np.c_[first, 0.5 * first],
            np.c_[second, 0.3 * second],
            np.c_[other, other],
        ],
        axis=1,
    )  # (sample, candidate, output)
    region = np.c_[2 * first, second]
    return draws, region


def test_picks_informative_candidate_and_does_not_buy_it_twice():
    draws, region = _draws()
    picks = region_variance_batch(draws, region, 1e-6, [2])
    assert picks[0] in (0, 1)
    assert picks[1] == 2  # the copy teaches nothing once the first is conditioned on
    again = region_variance_batch(draws, region, 1e-6, [2])
    np.testing.assert_array_equal(picks, again)


def test_groups_counts_and_exclusions():
    draws, region = _draws()
    picks = region_variance_batch(draws, region, np.full((4, 2), 0.01), [1, 2], groups=np.array([0, 0, 1, 1]),
                                  exclude=[0])
    assert picks.tolist() == [1, 2, 3]
    with pytest.raises(InputError):
        region_variance_batch(draws, region, 0.01, [3, 0], groups=np.array([0, 0, 1, 1]), exclude=[0])
    with pytest.raises(InputError):
        region_variance_batch(draws, region[:10], 0.01, [1])
    with pytest.raises(InputError):
        region_variance_batch(draws, region, -1.0, [1])
