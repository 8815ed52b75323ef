"""The phase law of multi-phase schedules: maths, tables, recovery, prediction and the optimiser."""

import json

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import yaml

import bayesmix as bm
from bayesmix.data.ledger import Ledger, RunRecord
from bayesmix.errors import InputError
from bayesmix.inference.schedule import schedule_arrays
from bayesmix.laws import MixingLaw
from bayesmix.laws.schedule import PhaseMixingLaw
from bayesmix.optimise.export import RepetitionWarning

DOMAINS = ["a", "b", "c"]
TRUTH = {
    "c": np.array([2.0, 2.5, 3.0]),
    "log_k": np.log([0.5, 0.4, 0.6]),
    "t": np.array([[-3.0, 1.5, 1.5], [1.0, -2.0, 1.0], [0.5, 0.5, -1.0]]),
    "recency": np.array([0.3, 1.0, 0.6]),
}


def _schedules(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        first, second = (0.1 + 0.7 * rng.dirichlet(np.ones(3)) for _ in range(2))
        out.append([(0.0, dict(zip(DOMAINS, first, strict=True))), (float(rng.choice([0.5, 0.7, 0.9])), dict(zip(DOMAINS, second, strict=True)))])
    return out


def _truth(reference):
    return {**TRUTH, "reference_mixture": reference}


def test_numpy_and_pytensor_agree_with_sample_axes():
    mixtures, tails = schedule_arrays(_schedules(5, 0), DOMAINS)
    rng = np.random.default_rng(1)
    draws = {
        "c": 2 + rng.random((4, 3)),
        "log_k": rng.normal(-1, 0.2, (4, 3)),
        "t": rng.normal(0, 1, (4, 3, 3)),
        "recency": np.exp(rng.normal(0, 0.5, (4, 3))),
        "reference_mixture": np.full(3, 1 / 3),
    }
    numpy_values = PhaseMixingLaw.evaluate(draws, mixtures, tails, np)
    assert numpy_values.shape == (4, 5, 3)
    symbols = {k: pt.as_tensor_variable(v) for k, v in draws.items() if k == "reference_mixture"}
    inputs = {"c": pt.dvector("c"), "log_k": pt.dvector("log_k"), "t": pt.dmatrix("t"), "recency": pt.dvector("recency")}
    fn = pytensor.function(
        list(inputs.values()), PhaseMixingLaw.evaluate({**inputs, **symbols}, mixtures, tails, pt), mode="FAST_COMPILE"
    )
    for s in range(4):
        values = fn(*[draws[k][s] for k in inputs])
        np.testing.assert_allclose(values, numpy_values[s], rtol=1e-12)


def test_recency_one_is_the_average_mixture_and_weights_sum_to_one():
    mixtures, tails = schedule_arrays(_schedules(6, 2), DOMAINS)
    weights = PhaseMixingLaw.phase_weights(tails, np.array([0.3, 1.0, 2.0]), np)
    np.testing.assert_allclose(weights.sum(-1), 1.0)
    switch = 1 - tails[:, 1]
    average = (1 - tails[:, 1])[:, None] * mixtures[:, 0] + tails[:, 1][:, None] * mixtures[:, 1]
    effective = PhaseMixingLaw.effective_mixtures(mixtures, tails, np.ones(3), np)
    for i in range(3):
        np.testing.assert_allclose(effective[:, i], average)
    # recency < 1: the last phase weighs more than its share of tokens
    assert np.all(weights[:, 0, 1] > 1 - switch)
    # a single-phase schedule is the M4 law on its mixture
    params = _truth(np.full(3, 1 / 3))
    single, single_tails = schedule_arrays([[(0, dict(zip(DOMAINS, m, strict=True)))] for m in mixtures[:, 0]], DOMAINS)
    m4 = MixingLaw().evaluate({**params, "reference_mixture": params["reference_mixture"]}, mixtures[:, 0], np)
    np.testing.assert_allclose(PhaseMixingLaw.evaluate(params, single, single_tails, np), m4)


def _simulated_table(n=30, seed=0, noise=0.01):
    schedules = _schedules(n, seed)
    mixtures, tails = schedule_arrays(schedules, DOMAINS)
    table = bm.PhaseTable.from_schedules(schedules, pd.DataFrame(np.ones((n, 3)), index=[f"r{i}" for i in range(n)], columns=DOMAINS))
    reference = table.runs.mixtures.to_numpy().mean(axis=0)
    mean = PhaseMixingLaw.evaluate(_truth(reference), mixtures, tails, np)
    losses = mean + np.random.default_rng(seed + 100).normal(0, noise, mean.shape)
    frame = pd.DataFrame(losses, index=table.runs.losses.index, columns=DOMAINS)
    return bm.PhaseTable.from_schedules(schedules, frame), reference


@pytest.fixture(scope="module")
def simulated_fit():
    table, reference = _simulated_table()
    return bm.fit_schedule(table, draws=300, tune=300, chains=2, seed=3), table, reference


def test_recovers_recency_predicts_and_covers(simulated_fit):
    fit, _table, reference = simulated_fit
    recency = fit.posterior["recency"]
    low, high = recency.quantile([0.005, 0.995], ("chain", "draw")).to_numpy()
    assert np.all((low <= TRUTH["recency"]) & (TRUTH["recency"] <= high))
    assert float(recency.sel(domain="a").mean()) < 0.5 < float(recency.sel(domain="b").mean())
    # new schedules: the law's 90% interval of the expected loss holds the truth (most of the time)
    fresh = _schedules(40, 9)
    mixtures, tails = schedule_arrays(fresh, DOMAINS)
    truth = PhaseMixingLaw.evaluate(_truth(reference), mixtures, tails, np)
    draws = bm.predict_schedule(fit, fresh, kind="mean").to_numpy()
    inside = (np.quantile(draws, 0.05, axis=0) <= truth) & (truth <= np.quantile(draws, 0.95, axis=0))
    assert inside.mean() >= 0.75
    predictive = bm.predict_schedule(fit, fresh, kind="predictive", seed=1)
    assert predictive.dims == ("sample", "schedule", "domain")
    assert float(predictive.std("sample").mean()) > float(bm.predict_schedule(fit, fresh).std("sample").mean())
    again = bm.predict_schedule(fit, fresh, kind="predictive", seed=1)
    np.testing.assert_array_equal(predictive.to_numpy(), again.to_numpy())


def test_optimised_schedule_beats_the_best_single_mixture_in_truth(simulated_fit):
    fit, _, reference = simulated_fit
    best = bm.optimise_schedule(fit, "mean", max_draws=200, n_starts=4)
    assert best.phases[0][0] == 0.0 and 0.5 <= best.phases[1][0] <= 0.9  # within the fitted switches
    truth = _truth(reference)

    def true_loss(schedule):
        mixtures, tails = schedule_arrays([schedule], DOMAINS)
        return float(PhaseMixingLaw.evaluate(truth, mixtures, tails, np).mean())

    scheduled, single = true_loss(best.schedule()), true_loss([(0, best.single_mixture)])
    # the domains forget at different rates, so a schedule helps; the fit must see it
    assert scheduled < single - 0.01
    assert best.prob_beats_single > 0.95 and best.gain_interval[0] > 0
    assert best.interval[0] <= best.expected_loss <= best.interval[1]
    fixed = bm.optimise_schedule(fit, "a", switch=0.8, max_draws=100, n_starts=2)
    assert fixed.phases[1][0] == 0.8 and fixed.target == "a"
    with pytest.raises(InputError, match="switch"):
        bm.optimise_schedule(fit, switch=1.2)


def test_phase_table_from_phases_and_refusals():
    phases = pd.DataFrame(
        {
            "run": ["x", "x", "y"],
            "start": [0.0, 0.75, 0.0],
            "mix_a": [1.0, 0.0, 0.5],
            "mix_b": [0.0, 1.0, 0.5],
        }
    )
    losses = pd.DataFrame({"run": ["y", "x"], "a": [2.0, 2.1], "b": [3.0, 2.9]})
    table = bm.PhaseTable.from_phases(phases, losses)
    assert table.runs.mixtures.loc["x"].tolist() == pytest.approx([0.75, 0.25])
    assert table.n_phases == 2 and table.tails[0].tolist() == pytest.approx([1.0, 1e-6])  # y: one phase, padded
    np.testing.assert_allclose(table.phase_mixtures[0, 1], [0.5, 0.5])
    with pytest.raises(InputError) as err:
        bm.PhaseTable.from_phases(phases.assign(start=[0.0, 1.0, 0.0]), losses)
    assert err.value.field == "run x"
    with pytest.raises(InputError, match="one table only"):
        bm.PhaseTable.from_phases(phases, losses.iloc[:1])
    with pytest.raises(InputError, match="'start'"):
        bm.PhaseTable.from_phases(phases.rename(columns={"start": "begin"}), losses)
    table = bm.PhaseTable.from_phases(phases.rename(columns={"start": "begin"}), losses, start_column="begin")
    assert table.runs.n_runs == 2
    with pytest.raises(InputError, match="phase-law fit"):
        bm.predict_schedule(object(), [])
    with pytest.raises(InputError, match="PhaseTable"):
        bm.fit_schedule(table.runs)


def test_phase_table_from_a_ledger(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    for run_id, phases, mixture in (
        ("p", [{"start": 0, "mixture": {"a": 1.0}}, {"start": 30, "mixture": {"b": 1.0}}], {"a": 0.75, "b": 0.25}),
        ("s", [], {"a": 0.5, "b": 0.5}),
    ):
        config = {"steps": 40, **({"phases": phases} if phases else {})}
        ledger.add_run(RunRecord(run_id, mixture, "m", {}, config, 1, 1, 6.0, 0, 0, "c", "t"))
        ledger.record_eval(run_id, 40, 400, {"a": (2.0, 1.0), "b": (3.0, 1.0)})
        ledger.set_status(run_id, "finished")
    table = bm.PhaseTable.from_ledger(ledger)
    assert list(table.runs.mixtures.index) == ["p", "s"]
    assert table.tails[0].tolist() == pytest.approx([1.0, 0.25])
    np.testing.assert_allclose(table.phase_mixtures[0], [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(table.runs.mixtures.loc["p"], [0.75, 0.25])


SCHEDULE = [(0.0, {"a": 0.6, "b": 0.4}), (0.8, {"b": 1.0})]


def test_export_schedule_json_nanotron_and_per_phase_formats():
    with pytest.warns(RepetitionWarning, match="b 1.73 epochs"):
        out = bm.export_schedule(SCHEDULE, "json", budget="1B", available={"a": 1e9, "b": 3e8})
    record = json.loads(out.text)
    assert [p["start"] for p in record["phases"]] == [0.0, 0.8]
    assert record["phases"][0]["tokens"] == {"a": 480_000_000, "b": 320_000_000}
    assert record["phases"][1]["tokens"] == {"b": 200_000_000}
    assert record["epochs"]["b"] == pytest.approx((320e6 + 200e6) / 3e8, abs=1e-4)  # counted over both phases
    stages = yaml.safe_load(bm.export_schedule(SCHEDULE, "nanotron", steps=1000, paths="/d/{domain}").text)["data_stages"]
    assert [s["start_training_step"] for s in stages] == [1, 801]
    assert stages[1]["data"]["dataset"] == {"dataset_folder": ["/d/b"], "dataset_weights": [1.0]}
    megatron = bm.export_schedule(SCHEDULE, "megatron", paths="/d/{domain}").text
    assert "phase 1: from 0.0% to 80.0%" in megatron and "phase 2" in megatron and "1.0 /d/b" in megatron
    with pytest.raises(InputError) as err:
        bm.export_schedule(SCHEDULE, "nanotron", paths="/d/{domain}")
    assert err.value.field == "steps"
    with pytest.raises(InputError) as err:
        bm.export_schedule(SCHEDULE, "json", budget="1B", available={"a": 1e9, "b": 3e8}, max_epochs=1.5)
    assert err.value.field == "max_epochs"
    with pytest.raises(InputError, match="start at 0"):
        bm.export_schedule([(0.5, {"a": 1.0})])


def test_review_fixes_phase_tables_and_exports(tmp_path):
    phases = pd.DataFrame({"run": ["x", "x"], "start": [0.0, 0.5], "mix_a": [1.0, 0.9], "mix_b": [0.0, 0.6]})
    losses = pd.DataFrame({"run": ["x"], "a": [2.0]})
    with pytest.raises(InputError) as err:
        bm.PhaseTable.from_phases(phases, losses)
    assert "renormalise" not in str(err.value) and "sum to 1" in str(err.value)
    # a ledger given by its path; runs of two lengths are refused until one is chosen
    ledger = Ledger(tmp_path / "l.sqlite")
    for run_id, steps in (("a", 40), ("b", 40), ("c", 80)):
        ledger.add_run(RunRecord(run_id, {"a": 1.0}, "m", {}, {"steps": steps}, 1, 1, 6.0, 0, 0, "c", "t"))
        ledger.record_eval(run_id, steps, 400, {"a": (2.0, 1.0)})
        ledger.set_status(run_id, "finished")
    with pytest.raises(InputError, match="several models or lengths") as err:
        bm.PhaseTable.from_ledger(str(tmp_path / "l.sqlite"))
    assert "steps=40" in str(err.value)
    assert bm.PhaseTable.from_ledger(tmp_path / "l.sqlite", steps=40).runs.n_runs == 2
    with pytest.raises(InputError) as err:
        bm.PhaseTable.from_ledger(ledger, ["nope"], steps=40)
    assert err.value.field == "domains"
    written = bm.export_schedule(SCHEDULE, "yaml").write(tmp_path / "schedule.yaml")
    assert yaml.safe_load(written.read_text())["phases"][1]["start"] == 0.8


def test_a_phase_law_fit_saves_and_loads(simulated_fit, tmp_path):
    fit, _, _ = simulated_fit
    path = bm.save(fit, tmp_path / "phase.nc")
    loaded = bm.load(path)
    fresh = _schedules(3, 5)
    np.testing.assert_array_equal(bm.predict_schedule(loaded, fresh).to_numpy(), bm.predict_schedule(fit, fresh).to_numpy())
    with pytest.raises(bm.IncompatibleFileError, match="no law spec"):
        bm.load(path, expected=bm.MixingLaw())


def test_plausible_phase_tables_are_read_right_or_refused():
    phases = pd.DataFrame({"run": ["x", "x", "y"], "start": [0.0, 0.75, 0.0], "mix_a": [1.0, 0.0, 0.5], "mix_b": [0.0, 1.0, 0.5]})
    losses = pd.DataFrame({"run": ["y", "x"], "a": [2.0, 2.1], "b": [3.0, 2.9]})
    clean = bm.PhaseTable.from_phases(phases, losses)
    variants = [
        (phases.rename(columns={"mix_a": " MIX_a", "start": "start "}), losses.rename(columns={"a": " a"})),
        (phases.iloc[::-1], losses.iloc[::-1]),
    ]
    for phase_rows, loss_rows in variants:  # padded or upper-case headers, reordered rows: the same table
        read = bm.PhaseTable.from_phases(phase_rows, loss_rows)
        pd.testing.assert_frame_equal(read.runs.losses.loc[clean.runs.losses.index], clean.runs.losses)
        np.testing.assert_allclose(read.runs.mixtures.loc[clean.runs.mixtures.index].to_numpy(), clean.runs.mixtures.to_numpy())
    with pytest.raises(InputError, match="bookkeeping"):
        bm.PhaseTable.from_phases(phases, losses.assign(seed=[1, 2]))
    with pytest.raises(InputError, match="more than once"):
        bm.PhaseTable.from_phases(phases, pd.concat([losses, losses.iloc[:1]]))
    with pytest.raises(InputError, match="repeats columns"):
        bm.PhaseTable.from_phases(phases.assign(**{" mix_a": 0.0}), losses)
