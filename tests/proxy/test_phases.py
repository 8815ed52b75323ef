"""Multi-phase runs: a mixture per phase, switched at a step, recorded and resumable."""

import numpy as np
import pytest
import torch

from bayesmix.data.ledger import Ledger
from bayesmix.errors import InputError
from bayesmix.proxy.plan import RunSpec, load_plan, save_plan
from bayesmix.proxy.sampler import MixtureSampler
from bayesmix.proxy.trainer import TrainConfig, train_run

CFG = TrainConfig(batch_size=8, lr=1e-2, warmup_steps=2, n_evals=2, checkpoint_every=3, device="cpu")
PHASES = [{"start": 0, "mixture": {"legal": 0.8, "code": 0.2}}, {"start": 9, "mixture": {"dialogue": 1.0}}]


def test_run_average_mixture_is_token_weighted():
    run = RunSpec.make(None, "tiny", steps=12, seed=0, phases=PHASES)
    assert run.mixture == pytest.approx({"legal": 0.6, "code": 0.15, "dialogue": 0.25})
    assert run.phase_index(8) == 0 and run.phase_index(9) == 1
    assert run.mixture_at(0) == {"code": 0.2, "legal": 0.8} and run.mixture_at(11) == {"dialogue": 1.0}
    single = RunSpec.make(run.mixture, "tiny", steps=12, seed=0)
    assert single.id != run.id and single.phases == ()


@pytest.mark.parametrize(
    ("phases", "mixture", "field"),
    [
        ([{"start": 3, "mixture": {"legal": 1.0}}], None, "phases"),  # first phase not at 0
        ([{"start": 0, "mixture": {"legal": 1.0}}, {"start": 12, "mixture": {"code": 1.0}}], None, "phases"),
        ([{"start": 0, "mixture": {"legal": 1.0}}, {"start": 0, "mixture": {"code": 1.0}}], None, "phases"),
        ([{"start": 0, "mixture": {"legal": 0.5}}], None, "mixture"),  # not a distribution
        ([{"start": 0, "mix": {"legal": 1.0}}], None, "phases[0]"),
        ([], None, "phases"),
        (PHASES, {"legal": 1.0}, "mixture"),  # both given
    ],
)
def test_bad_phases_are_refused_with_the_field(phases, mixture, field):
    with pytest.raises(InputError) as err:
        RunSpec.make(mixture, "tiny", steps=12, phases=phases)
    assert err.value.field == field


def test_the_refusal_advice_works():
    bad = [{"start": 0, "mixture": {"legal": 1.0}}, {"start": 20, "mixture": {"code": 1.0}}]
    with pytest.raises(InputError) as err:
        RunSpec.make(None, "tiny", steps=12, phases=bad)
    suggested = [int(s) for s in str(err.value).split("e.g. [")[1].split("]")[0].split(",")]
    fixed = [{"start": s, "mixture": p["mixture"]} for s, p in zip(suggested, bad, strict=True)]
    assert RunSpec.make(None, "tiny", steps=12, phases=fixed).phases[1][0] == suggested[1]


def test_plan_file_round_trip(tmp_path):
    runs = [RunSpec.make(None, "tiny", steps=12, seed=1, phases=PHASES), RunSpec.make({"legal": 1.0}, "tiny", 12)]
    assert load_plan(save_plan(runs, tmp_path / "plan.yaml")) == runs
    (tmp_path / "hand.yaml").write_text(
        "defaults: {model: tiny, steps: 12}\n"
        "runs:\n  - {id: p1, phases: [{start: 0, mixture: {legal: 1}}, {start: 6, mixture: {code: 1}}]}\n",
        encoding="utf-8",
    )
    (run,) = load_plan(tmp_path / "hand.yaml")
    assert run.phases == ((0, {"legal": 1.0}), (6, {"code": 1.0})) and run.mixture == {"code": 0.5, "legal": 0.5}


def test_sampler_realises_each_phase_mixture_exactly():
    sampler = MixtureSampler([0.75, 0.25, 0.0], [50, 50, 50], batch_size=4, seed=0)
    first = [d for _ in range(5) for d, _ in sampler.next_batch()]
    sampler.start_phase(1, [0.0, 0.5, 0.5])
    second = [d for _ in range(5) for d, _ in sampler.next_batch()]
    assert np.bincount(first, minlength=3).tolist() == [15, 5, 0]
    assert np.bincount(second, minlength=3).tolist() == [0, 10, 10]
    with pytest.raises(InputError, match="phase mixture"):
        sampler.start_phase(2, [0.5, 0.5])


def test_sampler_state_resumes_inside_a_phase():
    a = MixtureSampler([0.5, 0.5], [7, 9], batch_size=3, seed=2)
    a.next_batch()
    a.start_phase(1, [0.2, 0.8])
    a.next_batch()
    b = MixtureSampler([0.5, 0.5], [7, 9], batch_size=3, seed=2)
    b.load_state_dict(a.state_dict())
    assert [a.next_batch() for _ in range(6)] == [b.next_batch() for _ in range(6)]


def test_two_phase_run_switches_records_and_resumes(tiny_data, tiny_spec, tmp_path):
    run = RunSpec.make(None, "tiny", steps=12, seed=3, phases=PHASES)
    whole = train_run(run, tiny_spec, tiny_data, CFG, checkpoint_path=tmp_path / "a.pt")
    # only dialogue after the switch: 3 of 12 steps x 8 sequences
    assert whole.epochs["dialogue"] == pytest.approx(24 / tiny_data.sizes()["dialogue"])

    ledger = Ledger(tmp_path / "study.sqlite")

    class Interrupt(Exception):
        pass

    def kill_at_10(step, loss):
        if step == 10:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_run(run, tiny_spec, tiny_data, CFG, ledger=ledger, checkpoint_path=tmp_path / "b.pt", on_step=kill_at_10)
    resumed = train_run(run, tiny_spec, tiny_data, CFG, ledger=ledger, checkpoint_path=tmp_path / "b.pt")
    assert resumed.resumed_from == 9  # the checkpoint before the kill lies in the second phase
    assert resumed.train_losses == whole.train_losses
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    record = ledger.get_run(run.id)
    assert record.phases == [(0, {"code": 0.2, "legal": 0.8}), (9, {"dialogue": 1.0})]
    assert record.mixture == pytest.approx(run.mixture)


def test_plan_phase_starts_may_be_fractions_of_the_steps():
    run = RunSpec.make(None, "tiny", steps=200, phases=[{"start": 0, "mixture": {"legal": 1}}, {"start": 0.8, "mixture": {"code": 1}}])
    assert run.phases[1][0] == 160
