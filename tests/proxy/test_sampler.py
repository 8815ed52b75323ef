import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayesmix.errors import InputError
from bayesmix.proxy.sampler import MixtureSampler


@settings(max_examples=30, deadline=None)
@given(
    raw=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6).filter(lambda w: sum(w) > 0.1),
    batch=st.integers(1, 16),
    steps=st.integers(1, 40),
)
def test_realised_shares_match_r(raw, batch, steps):
    r = np.asarray(raw) / sum(raw)
    sampler = MixtureSampler(r, [7] * len(r), batch, seed=0)
    drawn = np.zeros(len(r))
    for _ in range(steps):
        for d, i in sampler.next_batch():
            drawn[d] += 1
            assert 0 <= i < 7
    n = batch * steps
    assert np.all(np.abs(drawn - r * n) < 1.0 + 1e-9)  # within one sequence of r at any length
    assert drawn[r == 0].sum() == 0


def test_epochs_cover_each_domain_without_replacement_then_reshuffle():
    sampler = MixtureSampler([0.5, 0.5], [5, 50], batch_size=10, seed=3)
    first = [i for d, i in sampler.next_batch() if d == 0]
    assert sorted(first) == list(range(5))
    second = [i for d, i in sampler.next_batch() if d == 0]
    assert sorted(second) == list(range(5)) and second != first
    assert sampler.epochs() == [2.0, 0.2]


def test_deterministic_and_resumable():
    a = MixtureSampler([0.2, 0.3, 0.5], [11, 13, 17], batch_size=4, seed=9)
    run = [a.next_batch() for _ in range(20)]
    b = MixtureSampler([0.2, 0.3, 0.5], [11, 13, 17], batch_size=4, seed=9)
    for _ in range(7):
        b.next_batch()
    state = b.state_dict()
    c = MixtureSampler([0.2, 0.3, 0.5], [11, 13, 17], batch_size=4, seed=9)
    c.load_state_dict(state)
    assert [c.next_batch() for _ in range(13)] == run[7:]
    other = MixtureSampler([0.2, 0.3, 0.5], [11, 13, 17], batch_size=4, seed=10)
    assert [other.next_batch() for _ in range(20)] != run


def test_bad_mixtures():
    with pytest.raises(InputError, match="sum to 1"):
        MixtureSampler([0.5, 0.6], [3, 3], 2, 0)
    with pytest.raises(InputError, match="no training sequences"):
        MixtureSampler([0.5, 0.5], [3, 0], 2, 0)
    with pytest.raises(InputError, match="lacks"):
        MixtureSampler.from_mixture({"news": 1.0}, {"code": 3}, ["code"], 2, 0)
