"""Downstream targets: the two laws, the hierarchical fits, calibration and the optimiser's target.

A small simulated ladder (3 tasks, 12 runs at 4 sizes) with known laws: each task's loss is
linear in a validation loss that follows ``E + A/N^alpha + B/D^beta``, so the task losses follow
the same form (the step-1 truth), and accuracy is the paper's sigmoid of the task loss plus a size
effect, per-run offsets and checkpoint noise (the step-2 truth). One chained fit and one link fit
(2 chains x 300 draws; the link reuses the chained fit's compiled step-2 model) serve every test.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmix as bm
from bayesmix.data.simulate import random_law, simulate_runs
from bayesmix.errors import InputError
from bayesmix.inference import _arviz
from bayesmix.inference.downstream import DownstreamCalibration, link_parameters
from bayesmix.laws.downstream import AccuracyLaw, TaskLossLaw
from bayesmix.models.downstream import LadderData
from bayesmix.optimise.downstream import DownstreamTarget
from bayesmix.optimise.targets import resolve_target

TASKS = ("alpha_qa", "beta_qa", "gamma_qa")
VALIDATION = {"E": 2.0, "log_A": np.log(150.0), "log_B": np.log(250.0), "alpha": 0.32, "beta": 0.28}
#: task loss = U + V * validation loss
U = np.array([-0.9, -0.8, -1.0])
V = np.array([0.7, 0.65, 0.75])
STEP2 = {
    "a": np.array([-0.62, -0.7, -0.45]),
    "b": np.array([0.9, 0.95, 0.97]),
    "k": np.array([6.0, 5.0, 8.0]),
    "L0": np.array([1.1, 1.05, 1.2]),
}
SIZE_EFFECT = np.array([0.006, 0.004, 0.008])
SIZES = (6e7, 1.2e8, 2.5e8, 5e8)
LOG_SIZE_REF = float(np.log(SIZES).mean())
FIT = {"draws": 300, "tune": 300, "chains": 2, "seed": 1}


def validation_loss(n: float, d: float) -> float:
    params = {k: np.array([v]) for k, v in VALIDATION.items()}
    return float(TaskLossLaw.evaluate(params, np.array([n]), np.array([d]))[0, 0])


def task_law() -> dict[str, np.ndarray]:
    """The step-1 truth per task (the validation law scaled by V, shifted by U)."""
    return {
        "E": U + V * VALIDATION["E"],
        "log_A": np.log(V) + VALIDATION["log_A"],
        "log_B": np.log(V) + VALIDATION["log_B"],
        "alpha": np.full(3, VALIDATION["alpha"]),
        "beta": np.full(3, VALIDATION["beta"]),
    }


def simulate_ladder(
    seed: int, sizes=SIZES, multiples=(2, 5, 10), n_checkpoints: int = 12, prefix: str = ""
) -> LadderData:
    rng = np.random.default_rng(seed)
    rows, losses, accuracies, model_size = [], [], [], {}
    for n in sizes:
        for m in multiples:
            run = f"{prefix}{n / 1e6:.0f}M-{m}xC"
            model_size[run] = n
            seed_luck = 0.004 * rng.standard_normal(3)
            offset = 0.006 * rng.standard_normal(3)
            for d in np.linspace(0.1, 1.0, n_checkpoints) * 20 * m * n:
                val = validation_loss(n, d)
                task = (U + V * val) * np.exp(seed_luck + 0.002 * rng.standard_normal(3))
                acc = AccuracyLaw.evaluate(STEP2, task[None, :])[0]
                acc = acc + SIZE_EFFECT * (np.log(n) - LOG_SIZE_REF) + offset + 0.004 * rng.standard_normal(3)
                rows.append({"run": run, "tokens": d, "loss_web": val})
                losses.append(task)
                accuracies.append(acc)
    return LadderData.from_frames(
        pd.DataFrame(rows), pd.DataFrame(losses, columns=TASKS), pd.DataFrame(accuracies, columns=TASKS), model_size
    )


@pytest.fixture(scope="module")
def ladder() -> LadderData:
    return simulate_ladder(0)


@pytest.fixture(scope="module")
def chained(ladder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        return bm.fit_downstream(ladder, **FIT)


@pytest.fixture(scope="module")
def link(ladder, chained):  # after the chained fit: reuses its compiled step-2 model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        return bm.fit_downstream_link(ladder, "loss_web", **FIT)


@pytest.fixture(scope="module")
def mixing_point():
    """A paper-protocol mixing fit (one draw, no compile) whose domains include ``web``."""
    law = random_law(3, seed=4, noise_sd=0.01)
    return bm.fit(simulate_runs(law, 24, seed=4), method="paper")


def with_draws(idata, n: int, jitter: float, seed: int = 0):
    """The point fit repeated ``n`` times with Gaussian jitter on ``c`` and ``log_k``: a small posterior."""
    rng = np.random.default_rng(seed)
    out = _arviz.copy(idata)
    post = out.posterior.isel(draw=np.zeros(n, dtype=int)).assign_coords(draw=np.arange(n))
    post["c"] = post["c"] + jitter * rng.standard_normal(post["c"].shape)
    post["log_k"] = post["log_k"] + 2 * jitter * rng.standard_normal(post["log_k"].shape)
    _arviz.set_group(out, "posterior", post)
    return out


def interval_of(draws, prob: float = 0.98):
    summary = bm.interval(draws, prob=prob)
    return summary["lower"].to_numpy(), summary["upper"].to_numpy()


def posterior_interval(idata, name: str, prob: float = 0.98) -> tuple[np.ndarray, np.ndarray]:
    stacked = idata.posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
    tail = (1 - prob) / 2
    return np.quantile(stacked, tail, axis=0), np.quantile(stacked, 1 - tail, axis=0)


# ---------------------------------------------------------------------- the laws


def test_laws_numpy_matches_pytensor():
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(3)
    s, t = 4, 3
    step1 = {
        "E": rng.uniform(0.3, 0.8, (s, t)),
        "log_A": rng.uniform(3, 6, (s, t)),
        "log_B": rng.uniform(4, 7, (s, t)),
        "alpha": rng.uniform(0.2, 0.5, (s, t)),
        "beta": rng.uniform(0.2, 0.5, (s, t)),
    }
    step2 = {
        "a": rng.uniform(-0.7, -0.3, (s, t)),
        "L0": rng.uniform(0.8, 1.4, (s, t)),
        "k": rng.uniform(2, 12, (s, t)),
        "b": rng.uniform(0.8, 1.0, (s, t)),
    }
    sizes = np.array([1e8, 7e8, 7e9])
    tokens = np.array([2e9, 3e10, 4e12])
    losses = rng.uniform(0.5, 2.0, (5, t))
    loss_np = TaskLossLaw.evaluate(step1, sizes, tokens, xp=np)
    acc_np = AccuracyLaw.evaluate(step2, losses, xp=np)
    slope_np = AccuracyLaw.slope(step2, losses, xp=np)
    assert loss_np.shape == (s, 3, t) and acc_np.shape == (s, 5, t)
    x = pt.matrix("x")
    for i in range(s):
        one1 = {k: pt.as_tensor_variable(v[i]) for k, v in step1.items()}
        one2 = {k: pt.as_tensor_variable(v[i]) for k, v in step2.items()}
        np.testing.assert_allclose(TaskLossLaw.evaluate(one1, sizes, tokens, xp=pt).eval(), loss_np[i], rtol=1e-10)
        np.testing.assert_allclose(AccuracyLaw.evaluate(one2, losses, xp=pt).eval(), acc_np[i], rtol=1e-10)
        # the slope is the derivative of the law in the loss
        grad = pytensor.grad(AccuracyLaw.evaluate(one2, x, xp=pt).sum(), x)
        np.testing.assert_allclose(pytensor.function([x], grad)(losses), slope_np[i], rtol=1e-8)
    # the paper's form, written out
    expected = step2["a"][0] / (1 + np.exp(-step2["k"][0] * (losses - step2["L0"][0]))) + step2["b"][0]
    np.testing.assert_allclose(acc_np[0], expected, rtol=1e-12)
    assert np.all(slope_np < 0)


# ---------------------------------------------------------------------- recovery and coverage


def test_chained_fit_recovers_the_simulated_laws(ladder, chained):
    assert list(chained.posterior["E"].coords["task"].to_numpy()) == list(TASKS)
    assert set(chained.observed_data["log_task_loss"].dims) == {"run", "task"}
    assert set(chained.observed_data["accuracy"].dims) == {"checkpoint", "task"}
    truth = task_law()
    finals = ladder.final()
    sizes, tokens = finals.checkpoint_sizes(), finals.checkpoints["tokens"].to_numpy()
    # step 1: the expected task loss at the runs and at a model 4x larger than any, within 2% / 4%
    for scale, tolerance in ((1.0, 0.02), (4.0, 0.04)):
        true_loss = TaskLossLaw.evaluate(truth, sizes * scale, tokens * scale)
        predicted = bm.predict_downstream(
            chained, model_size=sizes * scale, tokens=tokens * scale, output="task_loss", kind="expected"
        ).median("sample")
        np.testing.assert_allclose(predicted.to_numpy(), true_loss, rtol=tolerance)
    for name in ("alpha", "beta"):
        low, high = posterior_interval(chained, name)
        assert np.all((low <= truth[name]) & (truth[name] <= high)), name
    # step 2: the link's parameters and its size effect
    for name, value in {**STEP2, "size_effect": SIZE_EFFECT}.items():
        low, high = posterior_interval(chained, name)
        assert np.all((low <= value) & (value <= high)), (name, low, high, value)


def test_link_on_a_validation_loss_recovers_the_transformed_sigmoid(link):
    # acc = a / (1 + exp(-k (U + V x - L0))) + b: in x the steepness is k V and the midpoint (L0 - U) / V
    for name, value in {"k": STEP2["k"] * V, "L0": (STEP2["L0"] - U) / V, "b": STEP2["b"]}.items():
        low, high = posterior_interval(link, name)
        assert np.all((low <= value) & (value <= high)), (name, low, high, value)
    assert "loss_web" in link.posterior.attrs["bayesmix_downstream"]


def test_predictive_intervals_cover_new_runs(chained):
    new = simulate_ladder(7, prefix="new-").final()
    sizes, tokens = new.checkpoint_sizes(), new.checkpoints["tokens"].to_numpy()
    draws = bm.predict_downstream(chained, model_size=sizes, tokens=tokens, seed=3)
    low, high = interval_of(draws, prob=0.9)
    actual = new.accuracy.to_numpy()
    coverage = float(np.mean((low <= actual) & (actual <= high)))
    assert coverage >= 0.75, coverage
    expected = bm.predict_downstream(chained, model_size=sizes, tokens=tokens, kind="expected", seed=3)
    e_low, e_high = interval_of(expected, prob=0.9)
    assert np.all(e_high - e_low < high - low)  # the curves alone are surer than a new run


def test_calibration_measures_and_adds_the_form_error(ladder, chained):
    larger = simulate_ladder(11, sizes=(1e9,), multiples=(2, 10), prefix="big-")
    calibration = bm.calibrate_downstream(chained, larger, runs=larger.run_names)
    assert set(calibration.residuals["run"]) == set(larger.run_names)
    # the simulated law is the fitted form: no unexplained error worth an interval
    assert calibration.kappa_task_loss < 0.02 and calibration.kappa_accuracy < 0.02
    target = {"model_size": [8e9], "tokens": [4e11]}
    plain = bm.predict_downstream(chained, **target, seed=2)
    wide = bm.predict_downstream(chained, **target, seed=2, calibration=DownstreamCalibration(0.02, 0.02))
    p_low, p_high = interval_of(plain, 0.9)
    w_low, w_high = interval_of(wide, 0.9)
    assert np.all(w_high - w_low > p_high - p_low)
    with pytest.raises(InputError) as err:
        bm.calibrate_downstream(chained, ladder, runs=[])
    assert err.value.field == "runs"


def test_posterior_calibration_recovers_a_known_error_growth():
    """Backtests whose residuals grow as ``kappa e z`` (z partly shared by tasks): kappa and rho come back."""
    from bayesmix.inference.downstream_calibration import _kappa_posterior

    rng = np.random.default_rng(5)
    kappa, rho, n_tasks = 0.02, 0.5, 4
    groups = []
    for _ in range(30):
        efolds = np.array([0.7, 1.5, 2.5])
        z = np.sqrt(rho) * rng.standard_normal() + np.sqrt(1 - rho) * rng.standard_normal(n_tasks)
        fit_sd = 0.005 * (1 + np.arange(n_tasks) / n_tasks)
        noise = fit_sd[None, :] * rng.standard_normal((len(efolds), n_tasks))
        residual = (kappa * efolds[:, None] * z[None, :] + noise).reshape(-1)
        cov = np.diag(np.tile(fit_sd**2, len(efolds)))
        groups.append((residual, cov, np.repeat(efolds, n_tasks), np.tile(np.arange(n_tasks), len(efolds))))
    kappas, rhos = _kappa_posterior(groups, np.random.default_rng(0), n_draws=2000)
    low, high = np.quantile(kappas, [0.05, 0.95])
    assert low < kappa < high and abs(np.median(kappas) / kappa - 1) < 0.3, (low, np.median(kappas), high)
    assert np.quantile(rhos, 0.05) < rho < np.quantile(rhos, 0.95)
    # no growth in the residuals: kappa's posterior sits near zero
    flat = [(0.005 * rng.standard_normal(len(g[0])), g[1], g[2], g[3]) for g in groups]
    assert np.quantile(_kappa_posterior(flat, np.random.default_rng(0), n_draws=2000)[0], 0.95) < 0.005


def test_multi_distance_calibration_widens_with_distance_and_repeats(chained):
    near = simulate_ladder(11, sizes=(1e9,), multiples=(2, 10), prefix="big-")
    far = simulate_ladder(12, sizes=(2e9,), multiples=(2, 10), prefix="far-")
    both = LadderData.from_frames(
        pd.concat([near.checkpoints, far.checkpoints], ignore_index=True)[["run", "tokens", "loss_web"]],
        pd.concat([near.task_loss, far.task_loss], ignore_index=True),
        pd.concat([near.accuracy, far.accuracy], ignore_index=True),
        pd.concat([near.runs["model_size"], far.runs["model_size"]]),
    )
    calibration = bm.calibrate_downstream(
        chained, both, near.run_names, backtests=[(chained, far.run_names)], method="posterior", seed=3
    )
    assert calibration.method == "posterior" and len(calibration.draws) > 0
    assert set(calibration.residuals["backtest"]) == {0, 1}
    assert (calibration.draws[["rho_task_loss", "rho_accuracy"]].to_numpy() <= 1).all()
    # the simulated law is the fitted form: a small error per e-fold
    assert calibration.kappa_task_loss < 0.03 and calibration.kappa_accuracy < 0.03
    again = bm.calibrate_downstream(
        chained, both, near.run_names, backtests=[(chained, far.run_names)], method="posterior", seed=3
    )
    pd.testing.assert_frame_equal(calibration.draws, again.draws)
    target = {"model_size": [2e9, 8e9], "tokens": [4e10, 4e11]}
    plain = bm.predict_downstream(chained, **target, seed=2)
    wide = bm.predict_downstream(chained, **target, seed=2, calibration=calibration)
    assert np.array_equal(wide.to_numpy(), bm.predict_downstream(chained, **target, seed=2, calibration=again).to_numpy())
    p_low, p_high = interval_of(plain, 0.9)
    w_low, w_high = interval_of(wide, 0.9)
    assert np.all(w_high - w_low >= p_high - p_low)
    added = (w_high - w_low) - (p_high - p_low)
    assert np.all(added[1] > added[0])  # the farther target gains more width
    for field, kwargs in (("method", {"method": "best"}), ("backtests", {"backtests": [chained]})):
        with pytest.raises(InputError) as err:
            bm.calibrate_downstream(chained, both, near.run_names, **kwargs)
        assert err.value.field == field


def test_average_of_tasks_and_seeds(chained):
    draws = bm.predict_downstream(
        chained, model_size=[1e9], tokens=[1e11], average={"alpha_qa": 1.0, "gamma_qa": 3.0}, seed=5
    )
    assert list(draws["task"].to_numpy()) == [*TASKS, "average"]
    manual = (draws.sel(task="alpha_qa") + 3 * draws.sel(task="gamma_qa")) / 4
    np.testing.assert_allclose(draws.sel(task="average").to_numpy(), manual.to_numpy())
    again = bm.predict_downstream(
        chained, model_size=[1e9], tokens=[1e11], average={"alpha_qa": 1.0, "gamma_qa": 3.0}, seed=5
    )
    np.testing.assert_array_equal(draws.to_numpy(), again.to_numpy())


def test_link_fit_is_reproducible(ladder, link):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        again = bm.fit_downstream_link(ladder, "loss_web", **FIT)
    np.testing.assert_array_equal(link.posterior["k"].to_numpy(), again.posterior["k"].to_numpy())


# ---------------------------------------------------------------------- the optimiser's target


def test_downstream_target_through_optimise(link, mixing_point):
    mixing = with_draws(mixing_point, 80, jitter=0.004)
    target = DownstreamTarget(link, domains={"web": 1.0}, seed=0)
    result = bm.optimise(mixing, target=target, n_starts=3)
    assert result.target.startswith("error_rate")
    row = result.summary.loc["target"]
    assert 0 < row["lower"] <= row["mean"] <= row["upper"] < 1
    # per draw the error rate rises with the web loss, so the optimum is (near) the web-loss optimum
    web = bm.optimise(mixing, target="web", n_starts=3)
    np.testing.assert_allclose(result.mixture.to_numpy(), web.mixture.to_numpy(), atol=0.05)
    # the link's uncertainty widens the interval: one link draw for every mixing draw is narrower
    def width(**options) -> float:
        out = bm.optimise(mixing, target=DownstreamTarget(link, domains={"web": 1.0}, kind="expected", **options))
        return float(out.summary.loc["target", "upper"] - out.summary.loc["target", "lower"])

    single, full = width(max_draws=1), width()
    assert full > 1.5 * single, (full, single)
    # the same seed gives the same answer
    again = bm.optimise(mixing, target=DownstreamTarget(link, domains={"web": 1.0}, seed=0), n_starts=3)
    np.testing.assert_array_equal(result.mixture.to_numpy(), again.mixture.to_numpy())
    assert result.p_beats_reference == again.p_beats_reference


def test_downstream_target_pairs_draws_and_has_exact_gradients(link):
    target = DownstreamTarget(link, domains={"web": 0.5, "code": 0.5}, tasks={"beta_qa": 1.0}, kind="expected")
    resolved = resolve_target(target, ["web", "code", "papers"])
    rng = np.random.default_rng(0)
    losses = rng.uniform(2.5, 3.5, (50, 2, 3))  # (sample, mixture, domain)
    values = resolved(losses)
    assert values.shape == (50, 2)
    index, offset = target.pairing(50)
    params = link_parameters(link)
    x = 0.5 * (losses[..., 0] + losses[..., 1])
    j = 1  # beta_qa
    curve = params["a"][index, j, None] / (1 + np.exp(-params["k"][index, j, None] * (x - params["L0"][index, j, None])))
    manual = 1 - (curve + params["b"][index, j, None] + offset[:, j, None])
    np.testing.assert_allclose(values, manual, rtol=1e-10)
    # the same draws pair with the same link draws at every mixture, and again on the next call
    np.testing.assert_array_equal(resolved(losses), values)
    flat = losses[:, 0, :]
    grad = resolved.gradient(flat)
    step = 1e-6
    numeric = np.stack([(resolved(flat + step * np.eye(3)[d]) - resolved(flat)) / step for d in range(3)], axis=-1)
    np.testing.assert_allclose(grad, numeric, atol=1e-5)
    assert np.all(grad[:, 2] == 0) and np.all(grad[:, :2] > 0)


def test_point_fit_of_the_mixing_law_gets_the_links_mean_curve(link, mixing_point):
    result = bm.optimise(mixing_point, target=DownstreamTarget(link, domains="web", kind="expected"), n_starts=2)
    row = result.summary.loc["target"]
    assert row["lower"] == row["upper"] == row["mean"]
    web = float(result.summary.loc["web", "mean"])
    params = link_parameters(link)
    mean_curve = AccuracyLaw.evaluate({k: params[k] for k in ("a", "L0", "k", "b")}, np.array([[web]])).mean(axis=0)
    np.testing.assert_allclose(row["mean"], 1 - mean_curve.mean(), rtol=1e-10)


# ---------------------------------------------------------------------- bad input


def test_bad_input_names_the_field(ladder, chained, link):
    ckpt, loss, acc = ladder.checkpoints, ladder.task_loss, ladder.accuracy
    sizes = ladder.runs["model_size"]
    cases = [
        ("accuracy", lambda: LadderData.from_frames(ckpt, loss, acc * 100, sizes)),
        ("task_loss", lambda: LadderData.from_frames(ckpt, -loss, acc, sizes)),
        ("model_size", lambda: LadderData.from_frames(ckpt, loss, acc, sizes.iloc[:3])),
        ("checkpoints", lambda: LadderData.from_frames(ckpt.drop(columns="tokens"), loss, acc, sizes)),
        ("runs", lambda: ladder.select(["no-such-run"])),
        ("loss", lambda: bm.fit_downstream_link(ladder, "loss_c4_en", **FIT)),
        ("kind", lambda: bm.predict_downstream(chained, model_size=[1e9], tokens=[1e11], kind="best")),
        ("model_size", lambda: bm.predict_downstream(chained, model_size=[-1.0], tokens=[1e11])),
        ("loss", lambda: bm.predict_downstream(link)),
        ("tasks", lambda: bm.predict_downstream(chained, model_size=[1e9], tokens=[1e11], average={"nope": 1})),
        ("link", lambda: DownstreamTarget(chained)),
        ("tasks", lambda: DownstreamTarget(link, tasks={"nope": 1.0})),
        ("domains", lambda: resolve_target(DownstreamTarget(link), ["code", "papers"])),
        ("draws", lambda: bm.fit_downstream(ladder, draws=0)),
        ("data", lambda: bm.fit_downstream(ladder.checkpoints)),
    ]
    for field, call in cases:
        with pytest.raises(InputError) as err:
            call()
        assert err.value.field == field, (field, str(err.value))
        assert "Fix:" in str(err.value)


def test_report_takes_an_accuracy_optimum(link, mixing_point, tmp_path):
    mixing = with_draws(mixing_point, 60, jitter=0.004)
    target = DownstreamTarget(link, domains={"web": 1.0}, seed=0)
    best = bm.optimise(mixing, target=target, n_starts=2)
    from bayesmix.report import build_report

    files = build_report(tmp_path / "report", fit=mixing, optimum=best, optimum_target=target, n_location=5)
    text = files.markdown.read_text(encoding="utf-8")
    assert "error rate (1 - accuracy)" in text and "P(beats reference)" in text
    assert f"{best.summary.loc['target', 'mean']:.4f} error rate" in text.replace("**", "")


def test_link_losses_outside_the_fitted_range_warn_and_nonsense_is_refused(link):
    from bayesmix.inference.downstream import downstream_info

    _, high = downstream_info(link)["loss_range"]
    with pytest.warns(UserWarning, match="outside the losses the link was fitted on"):
        bm.predict_downstream(link, loss=[high + 5.0], max_draws=20)
    with pytest.raises(InputError) as err:
        bm.predict_downstream(link, loss=[-1.0], max_draws=20)
    assert err.value.field == "loss"


def test_a_link_fit_saves_and_loads(link, tmp_path):
    loaded = bm.load(bm.save(link, tmp_path / "link.nc"))
    np.testing.assert_array_equal(
        bm.predict_downstream(loaded, loss=[3.0], seed=1, max_draws=30).to_numpy(),
        bm.predict_downstream(link, loss=[3.0], seed=1, max_draws=30).to_numpy(),
    )


def test_ladder_and_target_inputs_are_refused_by_name():
    from bayesmix.data.simulate import random_law  # any object that is not a link fit

    with pytest.raises(InputError) as err:
        DownstreamTarget(random_law(2, seed=0))
    assert err.value.field == "link"
    folder = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "olmo_ladder"
    if not folder.exists():
        pytest.skip("../shared/data/olmo_ladder is not next to this checkout")
    ckpt = pd.read_csv(folder / "ladder_checkpoints.csv")
    long = pd.read_csv(folder / "ladder_tasks_long.csv")
    with pytest.raises(InputError) as err:
        bm.LadderData.from_olmo(ckpt, long, tasks={"arc": ("arc_challenge", "test", 1.0)})
    assert err.value.field == "tasks" and "[('arc_challenge'" in str(err.value)
    with pytest.raises(InputError) as err:
        bm.LadderData.from_olmo(ckpt, long, tasks={"arc": [("arc_challenge", "test", 1.0)]}, chance={"arc": 1.5})
    assert err.value.field == "chance"
