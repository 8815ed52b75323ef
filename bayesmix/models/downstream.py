"""Bind the downstream laws to a model ladder: task evaluations per checkpoint, over tasks.

:class:`LadderData` holds a ladder's evaluations (one row per checkpoint; per task its loss and
accuracy, and the run's validation-domain losses); :func:`build_task_loss_model` and
:func:`build_link_model` build the two hierarchical PyMC models over tasks (their posteriors are
independent given the data, so they are sampled apart):

* step 1 (:class:`~bayesmix.laws.downstream.TaskLossLaw`) on each fitted run's final task loss
  (the mean of its last checkpoints, as the paper does): ``log L_obs ~ StudentT(5, log L(N, D),
  sigma_t)``, with ``sigma_t`` log-normal around the noise the ladder itself shows (the spread
  between each run and its seed rerun, plus the late-checkpoint jitter);
* step 2 (:class:`~bayesmix.laws.downstream.AccuracyLaw`) on the runs' checkpoints after the
  first ``skip`` of each run: ``acc_ij = Acc_t(x_ij) + u_jt + e_ij``, with a per-run offset
  ``u_jt ~ Normal(0, tau_t)`` (a run that is better or worse at the same loss, partially pooled
  over tasks) and checkpoint noise ``e_ij ~ Normal(0, sd_t)`` informed by the late-checkpoint
  jitter. The offsets are integrated out in closed form (a compound-symmetric Gaussian per run and
  task), so no variable has a run dim and one compiled model serves any set of runs.

Dims: ``task``; ``run`` (step-1 observations) and ``checkpoint`` (step-2 observations) for the
data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from bayesmix.errors import InputError, NotEnoughDataError
from bayesmix.laws.downstream import AccuracyLaw, AccuracySummary, TaskLossLaw, TaskLossSummary

#: chance accuracy per task of the OLMo ladder (the repository's ``task_utils``); others 0.25
CHANCE = {"piqa": 0.5, "boolq": 0.5, "winogrande": 0.5, "socialiqa": 1.0 / 3.0, "csqa": 0.2}
#: MMLU's subject weights in its average (the repository's ``task_utils``)
MMLU_WEIGHTS = {"mmlu_stem": 0.215, "mmlu_humanities": 0.335, "mmlu_social_sciences": 0.219, "mmlu_other": 0.231}
#: the paper's 8 tasks: name -> (task, split, weight) parts of ladder_tasks_long.csv
PAPER_TASKS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "mmlu": tuple((name, "test", weight) for name, weight in MMLU_WEIGHTS.items()),
    "hellaswag": (("hellaswag", "val", 1.0),),
    "arc_challenge": (("arc_challenge", "test", 1.0),),
    "arc_easy": (("arc_easy", "test", 1.0),),
    "piqa": (("piqa", "val", 1.0),),
    "csqa": (("csqa", "val", 1.0),),
    "socialiqa": (("socialiqa", "val", 1.0),),
    "openbookqa": (("openbookqa", "test", 1.0),),
}
#: checkpoints averaged into a run's final value (the paper's moving average of 5)
N_LAST = 5
#: share of each run's first checkpoints left out of the accuracy link (the paper's ``skip_perc``)
LINK_SKIP = 0.1
#: at most this many checkpoints per run enter the link (evenly spaced, the last kept): neighbouring
#: checkpoints share most of their deviations, so more would only feign precision
LINK_MAX_PER_RUN = 20
#: degrees of freedom of the step-1 likelihood (robust to the odd run, like the paper's Huber loss)
STEP1_NU = 5.0
#: prior sd of the mean size effect of the link (accuracy per e-fold of model size)
SIZE_EFFECT_PRIOR_SD = 0.02
#: late checkpoints per run used to measure the evaluation jitter
JITTER_LAST = 10


def _chance(task: str) -> float:
    base = task.split(":")[0]
    return float(CHANCE.get(base, 0.25))


@dataclass(frozen=True)
class LadderData:
    """Evaluations of a model ladder: per checkpoint, each task's loss and accuracy.

    Build it with :meth:`from_olmo` (the OLMo ladder's CSV tables) or :meth:`from_frames`.

    Attributes
    ----------
    runs
        One row per run (index ``run``): ``model_size`` (non-embedding parameters) and any other
        run metadata (``role``, ``rerun``, ...).
    checkpoints
        One row per checkpoint (index ``checkpoint``, sorted by run and tokens): ``run``,
        ``tokens`` (training tokens seen) and the validation-domain losses (``loss_<domain>``,
        nats per token) when known.
    task_loss, accuracy
        ``(checkpoint, task)``: the task loss (bits per byte of the correct answer) and the
        accuracy (a fraction).
    chance
        Chance accuracy per task.
    """

    runs: pd.DataFrame
    checkpoints: pd.DataFrame
    task_loss: pd.DataFrame
    accuracy: pd.DataFrame
    chance: pd.Series

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_frames(
        cls,
        checkpoints: pd.DataFrame,
        task_loss: pd.DataFrame,
        accuracy: pd.DataFrame,
        model_size: Mapping[str, float] | pd.Series,
        chance: Mapping[str, float] | None = None,
    ) -> LadderData:
        """Build from a checkpoint table and two ``(checkpoint, task)`` tables of the same index.

        Parameters
        ----------
        checkpoints
            Columns ``run`` and ``tokens`` (positive), optionally ``loss_<domain>`` columns.
        task_loss, accuracy
            Task loss (BPB, positive) and accuracy (in [0, 1]) per checkpoint and task.
        model_size
            Each run's non-embedding parameter count.
        chance
            Chance accuracy per task (default: the OLMo ladder's, 0.25 for unknown tasks).

        Raises
        ------
        InputError
            Missing columns, mismatched indexes or tasks, values out of range.
        """
        for name, frame in (("checkpoints", checkpoints), ("task_loss", task_loss), ("accuracy", accuracy)):
            if not isinstance(frame, pd.DataFrame):
                raise InputError(name, f"got a {type(frame).__name__}", "give a pandas DataFrame")
        missing = [c for c in ("run", "tokens") if c not in checkpoints.columns]
        if missing:
            raise InputError("checkpoints", f"has no column(s) {missing}", "add each checkpoint's run and tokens")
        if not task_loss.index.equals(checkpoints.index) or not accuracy.index.equals(checkpoints.index):
            raise InputError(
                "task_loss", "the index differs from the checkpoint table's", "index all three tables by checkpoint"
            )
        if list(task_loss.columns) != list(accuracy.columns) or task_loss.shape[1] == 0:
            raise InputError("accuracy", "its tasks differ from task_loss's (or there are none)", "give the same task columns")
        tokens = checkpoints["tokens"].to_numpy(dtype=float)
        if not np.all(np.isfinite(tokens)) or np.any(tokens <= 0):
            raise InputError("tokens", "has missing, zero or negative values", "give the training tokens seen, > 0")
        losses = task_loss.to_numpy(dtype=float)
        accs = accuracy.to_numpy(dtype=float)
        if np.any(losses[np.isfinite(losses)] <= 0):
            raise InputError("task_loss", "has zero or negative values", "give bits per byte (> 0)")
        if np.any((accs[np.isfinite(accs)] < 0) | (accs[np.isfinite(accs)] > 1)):
            raise InputError("accuracy", "has values outside [0, 1]", "give accuracies as fractions, not percent")
        sizes = pd.Series(model_size, dtype=float) if not isinstance(model_size, pd.Series) else model_size.astype(float)
        runs_needed = pd.unique(checkpoints["run"].astype(str))
        absent = [r for r in runs_needed if r not in sizes.index]
        if absent:
            raise InputError("model_size", f"no size for run(s) {absent[:5]}", "give every run's parameter count")
        if not np.all(np.isfinite(sizes.loc[runs_needed])) or np.any(sizes.loc[runs_needed] <= 0):
            raise InputError("model_size", "has missing, zero or negative sizes", "give parameters (> 0)")
        tasks = [str(t) for t in task_loss.columns]
        chance_map = {t: (float(chance[t]) if chance is not None and t in chance else _chance(t)) for t in tasks}
        runs = pd.DataFrame({"model_size": sizes.loc[runs_needed].to_numpy()}, index=pd.Index(runs_needed, name="run"))
        ckpt = checkpoints.copy()
        ckpt["run"] = ckpt["run"].astype(str)
        return cls._assemble(runs, ckpt, task_loss.set_axis(tasks, axis=1), accuracy.set_axis(tasks, axis=1), chance_map)

    @classmethod
    def from_olmo(
        cls,
        checkpoints: pd.DataFrame,
        tasks_long: pd.DataFrame,
        tasks: Mapping[str, Sequence[tuple[str, str, float]]] | None = None,
        chance: Mapping[str, float] | None = None,
    ) -> LadderData:
        """Read the OLMo ladder's tables (``ladder_checkpoints.csv``, ``ladder_tasks_long.csv``).

        Parameters
        ----------
        checkpoints
            One row per checkpoint: ``run``, ``params`` (non-embedding N), ``tokens``, the run
            metadata (``role``, ``chinchilla_multiple``, ``rerun``, ...) and ``loss_<domain>``.
        tasks_long
            One row per checkpoint and task: ``run``, ``tokens``, ``task``, ``split``, ``acc``,
            ``bpb``.
        tasks
            Task name -> parts ``(task, split, weight)`` averaged with those weights (default
            :data:`PAPER_TASKS`: the paper's 8 tasks, MMLU the weighted average of its 4 subjects).
        chance
            Chance accuracy per task name (default :data:`CHANCE`, else 0.25).

        Raises
        ------
        InputError
            Missing columns, or a task part absent from ``tasks_long``.
        """
        tasks = dict(PAPER_TASKS if tasks is None else tasks)
        need = {"checkpoints": (checkpoints, ("run", "params", "tokens")),
                "tasks_long": (tasks_long, ("run", "tokens", "task", "split", "acc", "bpb"))}
        for name, (frame, columns) in need.items():
            if not isinstance(frame, pd.DataFrame):
                raise InputError(name, f"got a {type(frame).__name__}", "give a pandas DataFrame (pd.read_csv)")
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise InputError(name, f"has no column(s) {missing}", "use the ladder's tables as published")
        if not tasks:
            raise InputError("tasks", "is empty", "give at least one task, e.g. PAPER_TASKS")
        ckpt = checkpoints.copy()
        ckpt["run"] = ckpt["run"].astype(str)
        ckpt = ckpt.sort_values(["run", "tokens"], kind="stable").drop_duplicates(["run", "tokens"], keep="last")
        key = pd.MultiIndex.from_frame(ckpt[["run", "tokens"]])
        long = tasks_long.assign(run=tasks_long["run"].astype(str))
        loss_cols, acc_cols = {}, {}
        for name, parts in tasks.items():
            fix = f"give a list of (task, split, weight) parts, e.g. {name!r}: [('arc_challenge', 'test', 1.0)]"
            if not parts or isinstance(parts, (str, tuple)) or not all(
                isinstance(p, (tuple, list)) and len(p) == 3 for p in parts
            ):
                raise InputError("tasks", f"task {name!r} has parts {parts!r}", fix)
            loss_sum = np.zeros(len(ckpt))
            acc_sum = np.zeros(len(ckpt))
            total = 0.0
            for task, split, weight in parts:
                rows = long[(long["task"] == task) & (long["split"] == split)]
                if rows.empty:
                    raise InputError(
                        "tasks", f"no rows of task {task!r} split {split!r}", "check the names in ladder_tasks_long.csv"
                    )
                rows = rows.drop_duplicates(["run", "tokens"], keep="last").set_index(["run", "tokens"])
                aligned = rows.reindex(key)
                loss_sum = loss_sum + float(weight) * aligned["bpb"].to_numpy(dtype=float)
                acc_sum = acc_sum + float(weight) * aligned["acc"].to_numpy(dtype=float)
                total += float(weight)
            loss_cols[name] = loss_sum / total
            acc_cols[name] = acc_sum / total
        index = pd.RangeIndex(len(ckpt), name="checkpoint")
        frame = ckpt.reset_index(drop=True).set_axis(index, axis=0)
        meta = [c for c in ("role", "model", "chinchilla_multiple", "rerun") if c in frame.columns]
        runs = frame.groupby("run", sort=False).agg(model_size=("params", "first"), **{c: (c, "first") for c in meta})
        keep = ["run", "tokens", *(c for c in ("step",) if c in frame.columns),
                *(c for c in frame.columns if str(c).startswith("loss_"))]
        chance_map = {t: (float(chance[t]) if chance is not None and t in chance else _chance(t)) for t in tasks}
        return cls._assemble(
            runs, frame[keep], pd.DataFrame(loss_cols, index=index), pd.DataFrame(acc_cols, index=index), chance_map
        )

    @classmethod
    def _assemble(
        cls, runs: pd.DataFrame, checkpoints: pd.DataFrame, task_loss: pd.DataFrame, accuracy: pd.DataFrame,
        chance: Mapping[str, float],
    ) -> LadderData:
        """Drop checkpoints with a missing task value, sort, and build the object."""
        bad = {t: c for t, c in chance.items() if not 0 <= c < 1}
        if bad:
            raise InputError("chance", f"levels {bad} are not accuracies in [0, 1)", "give each task's chance accuracy, e.g. 0.25")
        complete = np.isfinite(task_loss.to_numpy(dtype=float)).all(axis=1) & np.isfinite(
            accuracy.to_numpy(dtype=float)
        ).all(axis=1)
        order = checkpoints.loc[complete].sort_values(["run", "tokens"], kind="stable").index
        if len(order) == 0:
            raise InputError("task_loss", "no checkpoint has every task's loss and accuracy", "check the tables")
        index = pd.RangeIndex(len(order), name="checkpoint")
        ckpt = checkpoints.loc[order].set_axis(index, axis=0)
        runs = runs.loc[[r for r in runs.index if r in set(ckpt["run"])]]
        runs.index.name = "run"
        tasks = list(task_loss.columns)
        return cls(
            runs=runs,
            checkpoints=ckpt,
            task_loss=task_loss.loc[order].set_axis(index, axis=0),
            accuracy=accuracy.loc[order].set_axis(index, axis=0),
            chance=pd.Series([chance[t] for t in tasks], index=pd.Index(tasks, name="task"), name="chance"),
        )

    # ------------------------------------------------------------------ views

    @property
    def tasks(self) -> list[str]:
        """Task names, in column order."""
        return [str(t) for t in self.task_loss.columns]

    @property
    def run_names(self) -> list[str]:
        """Run names, in order."""
        return [str(r) for r in self.runs.index]

    def select(self, runs: Sequence[str]) -> LadderData:
        """The same ladder restricted to ``runs`` (in that order).

        Raises
        ------
        InputError
            A name that is not a run of this ladder, or no run at all.
        """
        if isinstance(runs, str):
            runs = [runs]
        runs = [str(r) for r in runs]
        unknown = [r for r in runs if r not in self.runs.index]
        if unknown or not runs:
            raise InputError(
                "runs", f"unknown run(s) {unknown[:5]}" if unknown else "is empty",
                f"choose from {self.run_names[:8]}{' ...' if len(self.runs) > 8 else ''}",
            )
        mask = self.checkpoints["run"].isin(runs).to_numpy()
        ckpt = self.checkpoints.loc[mask]
        rank = {r: i for i, r in enumerate(runs)}
        order = ckpt.assign(_rank=ckpt["run"].map(rank)).sort_values(["_rank", "tokens"], kind="stable").index
        index = pd.RangeIndex(len(order), name="checkpoint")
        return replace(
            self,
            runs=self.runs.loc[runs],
            checkpoints=self.checkpoints.loc[order].set_axis(index, axis=0),
            task_loss=self.task_loss.loc[order].set_axis(index, axis=0),
            accuracy=self.accuracy.loc[order].set_axis(index, axis=0),
        )

    def final(self, n_last: int = N_LAST) -> LadderData:
        """One row per run: the mean of its last ``n_last`` checkpoints (tokens: the last one's).

        Validation losses are averaged the same way. This is the paper's "final" value of a run
        (its moving average of 5 at the end of training).
        """
        if isinstance(n_last, bool) or not isinstance(n_last, int | np.integer) or n_last < 1:
            raise InputError("n_last", f"got {n_last!r}", "give a positive integer, e.g. 5")
        tail = self.checkpoints.groupby("run", sort=False).tail(int(n_last)).index
        group = self.checkpoints.loc[tail, "run"]
        runs = list(pd.unique(group))
        numeric = [c for c in self.checkpoints.columns if str(c).startswith("loss_")]
        ckpt = self.checkpoints.loc[tail, numeric].groupby(group, sort=False).mean()
        ckpt.insert(0, "tokens", self.checkpoints.loc[tail, "tokens"].groupby(group, sort=False).last())
        ckpt.insert(0, "run", runs)
        index = pd.RangeIndex(len(runs), name="checkpoint")
        return replace(
            self,
            runs=self.runs.loc[runs],
            checkpoints=ckpt.reset_index(drop=True).set_axis(index, axis=0),
            task_loss=self.task_loss.loc[tail].groupby(group, sort=False).mean().loc[runs].set_axis(index, axis=0),
            accuracy=self.accuracy.loc[tail].groupby(group, sort=False).mean().loc[runs].set_axis(index, axis=0),
        )

    def link_points(self, skip: float = LINK_SKIP, max_per_run: int = LINK_MAX_PER_RUN) -> LadderData:
        """The checkpoints the accuracy link is fitted on.

        Each run's checkpoints after its first ``skip`` share, thinned evenly to at most
        ``max_per_run`` (the last checkpoint kept).
        """
        if not (isinstance(skip, int | float) and 0 <= skip < 1):
            raise InputError("skip", f"got {skip!r}", "give a share in [0, 1), e.g. 0.1")
        if isinstance(max_per_run, bool) or not isinstance(max_per_run, int | np.integer) or max_per_run < 2:
            raise InputError("max_per_run", f"got {max_per_run!r}", "give an integer >= 2")
        keep: list[int] = []
        for _, rows in self.checkpoints.groupby("run", sort=False):
            index = rows.index.to_numpy()
            index = index[int(np.ceil(skip * len(index))):]
            if len(index) > max_per_run:
                pick = np.unique(np.round(np.linspace(0, len(index) - 1, int(max_per_run))).astype(int))
                index = index[pick]
            keep += [int(i) for i in index]
        new = pd.RangeIndex(len(keep), name="checkpoint")
        return replace(
            self,
            checkpoints=self.checkpoints.loc[keep].set_axis(new, axis=0),
            task_loss=self.task_loss.loc[keep].set_axis(new, axis=0),
            accuracy=self.accuracy.loc[keep].set_axis(new, axis=0),
        )

    def checkpoint_sizes(self) -> np.ndarray:
        """Model size ``N`` of each checkpoint's run, ``(checkpoint,)``."""
        return self.runs["model_size"].reindex(self.checkpoints["run"]).to_numpy(dtype=float)

    def validation_loss(self, loss: str | Mapping[str, float]) -> np.ndarray:
        """A validation loss per checkpoint (one column, or a weighted mean of ``loss_*`` columns).

        Raises
        ------
        InputError
            A column that is not in the checkpoint table, or bad weights.
        """
        weights = link_weights(loss)
        missing = [c for c in weights if c not in self.checkpoints.columns]
        if missing:
            known = [c for c in self.checkpoints.columns if str(c).startswith("loss_")]
            raise InputError("loss", f"no column(s) {missing} in the checkpoint table", f"use one of {known}")
        total = sum(weights.values())
        values = sum(w * self.checkpoints[c].to_numpy(dtype=float) for c, w in weights.items()) / total
        return np.asarray(values, dtype=float)

    # ------------------------------------------------------------------ noise the ladder shows

    def noise(self, n_last: int = N_LAST) -> pd.DataFrame:
        """Noise scales per task, measured on the ladder itself.

        Columns: ``jitter_log_loss`` and ``jitter_accuracy`` (checkpoint-to-checkpoint noise:
        the RMS residual of each run's last :data:`JITTER_LAST` checkpoints around a line in log
        tokens), ``seed_log_loss`` (the seed-to-seed sd of a run's final log task loss, from the
        pairs ``<run>`` / ``<run>-rerun`` present, ``NaN`` when none) and ``n_rerun_pairs``.
        """
        log_loss = np.log(self.task_loss)
        res_loss: list[np.ndarray] = []
        res_acc: list[np.ndarray] = []
        for _, rows in self.checkpoints.groupby("run", sort=False):
            rows = rows.tail(JITTER_LAST)
            if len(rows) < 4:
                continue
            x = np.log(rows["tokens"].to_numpy(dtype=float))
            design = np.column_stack([np.ones_like(x), x - x.mean()])
            for target, out in ((log_loss.loc[rows.index].to_numpy(), res_loss), (self.accuracy.loc[rows.index].to_numpy(), res_acc)):
                coef, *_ = np.linalg.lstsq(design, target, rcond=None)
                resid = target - design @ coef
                out.append((resid**2).sum(axis=0) / max(len(rows) - 2, 1))
        tasks = self.tasks
        jitter_loss = np.sqrt(np.mean(res_loss, axis=0)) if res_loss else np.full(len(tasks), np.nan)
        jitter_acc = np.sqrt(np.mean(res_acc, axis=0)) if res_acc else np.full(len(tasks), np.nan)
        final = self.final(n_last)
        finals = np.log(final.task_loss.set_axis(final.checkpoints["run"].to_numpy(), axis=0))
        pairs = [(r[: -len("-rerun")], r) for r in finals.index if r.endswith("-rerun") and r[: -len("-rerun")] in finals.index]
        if pairs:
            diffs = np.array([finals.loc[a].to_numpy() - finals.loc[b].to_numpy() for a, b in pairs])
            seed = np.sqrt((diffs**2).mean(axis=0) / 2.0)
        else:
            seed = np.full(len(tasks), np.nan)
        return pd.DataFrame(
            {"jitter_log_loss": jitter_loss, "jitter_accuracy": jitter_acc, "seed_log_loss": seed, "n_rerun_pairs": len(pairs)},
            index=pd.Index(tasks, name="task"),
        )


def link_weights(loss: str | Mapping[str, float]) -> dict[str, float]:
    """``loss`` as ``{column: weight}`` (a column name gets weight 1).

    Raises
    ------
    InputError
        Not a string or mapping, empty, or weights that are not positive numbers.
    """
    if isinstance(loss, str):
        return {loss: 1.0}
    if not isinstance(loss, Mapping) or not loss:
        raise InputError("loss", f"got {loss!r}", "give a validation-loss column, e.g. 'loss_c4_en', or {column: weight}")
    out = {}
    for column, weight in loss.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.integer | np.floating) or not (
            np.isfinite(weight) and weight > 0
        ):
            raise InputError("loss", f"weight {weight!r} of {column!r}", "give positive weights")
        out[str(column)] = float(weight)
    return out


# ---------------------------------------------------------------------- priors' data scales


def task_loss_summary(finals: LadderData) -> TaskLossSummary:
    """Data scales of the step-1 priors from the fitted runs' final values."""
    sizes = finals.checkpoint_sizes()
    tokens = finals.checkpoints["tokens"].to_numpy(dtype=float)
    return TaskLossSummary(
        tasks=tuple(finals.tasks),
        level=np.exp(np.log(finals.task_loss.to_numpy(dtype=float)).mean(axis=0)),
        log_reference={"model_size": float(np.log(sizes).mean()), "tokens": float(np.log(tokens).mean())},
    )


def accuracy_summary(points: LadderData, x: np.ndarray) -> AccuracySummary:
    """Data scales of the step-2 priors from the link's points and losses ``x`` ``(checkpoint, task)``."""
    spread = np.maximum(x.std(axis=0), 1e-3 * np.abs(x.mean(axis=0)) + 1e-6)
    return AccuracySummary(
        tasks=tuple(points.tasks),
        chance=points.chance.to_numpy(dtype=float),
        x_median=np.median(x, axis=0),
        x_spread=spread,
    )


def step1_noise_prior(noise: pd.DataFrame, n_last: int = N_LAST) -> np.ndarray:
    """Prior median of the step-1 noise (sd of a run's final log task loss), per task.

    ``sqrt(seed^2 + jitter^2 / n_last)``: a new run's final loss differs from the curve by its
    seed's luck and by the evaluation jitter left after averaging ``n_last`` checkpoints. The
    seed part is estimated per task from few pairs, so it is shrunk halfway to the median over
    tasks; without reruns it is taken as twice the averaged jitter.
    """
    jitter = noise["jitter_log_loss"].to_numpy(dtype=float)
    jitter = np.where(np.isfinite(jitter), jitter, np.nanmedian(jitter) if np.isfinite(jitter).any() else 0.01)
    seed = noise["seed_log_loss"].to_numpy(dtype=float)
    if np.isfinite(seed).any():
        seed_var = 0.5 * (np.where(np.isfinite(seed), seed, 0.0) ** 2) + 0.5 * np.nanmedian(seed) ** 2
    else:
        seed_var = 4.0 * jitter**2 / n_last
    return np.maximum(np.sqrt(seed_var + jitter**2 / n_last), 1e-3)


def step2_noise_prior(noise: pd.DataFrame) -> np.ndarray:
    """Prior median of the checkpoint noise of accuracy (the late-checkpoint jitter), per task."""
    jitter = noise["jitter_accuracy"].to_numpy(dtype=float)
    jitter = np.where(np.isfinite(jitter), jitter, np.nanmedian(jitter) if np.isfinite(jitter).any() else 0.01)
    return np.maximum(jitter, 1e-3)


# ---------------------------------------------------------------------- model pieces


def _add_task_loss(finals: LadderData, noise_median: np.ndarray) -> tuple[Any, Any]:
    """Step 1 inside the current model: priors, and the likelihood of the final log task losses."""
    import pymc as pm
    import pytensor.tensor as pt

    summary = task_loss_summary(finals)
    sizes = pm.Data("model_size", finals.checkpoint_sizes(), dims="run")
    tokens = pm.Data("tokens", finals.checkpoints["tokens"].to_numpy(dtype=float), dims="run")
    data = {
        "level": pm.Data("prior_task_loss_level", summary.level, dims="task"),
        "log_n_ref": pm.Data("prior_log_n_ref", np.asarray(summary.log_reference["model_size"])),
        "log_d_ref": pm.Data("prior_log_d_ref", np.asarray(summary.log_reference["tokens"])),
    }
    params = TaskLossLaw.build_priors(summary, data)
    prior_noise = pm.Data("prior_task_loss_noise", noise_median, dims="task")
    sigma = pm.Deterministic(
        "task_loss_sigma", prior_noise * pt.exp(0.5 * pm.Normal("task_loss_sigma_z", 0.0, 1.0, dims="task")), dims="task"
    )
    mean = TaskLossLaw.evaluate(params, sizes, tokens, xp=pt)
    observed = pm.Data("log_task_loss_observed", np.log(finals.task_loss.to_numpy(dtype=float)), dims=("run", "task"))
    pm.StudentT("log_task_loss", nu=STEP1_NU, mu=pt.log(mean), sigma=sigma[None, :], observed=observed, dims=("run", "task"))
    return params, sigma


def size_effect_priors() -> Any:
    """The link's accuracy change per e-fold of model size at the same loss, per task (pooled).

    ``gamma_t = mu + sd z_t`` with ``mu ~ Normal(0, 0.02)`` and ``sd ~ HalfNormal(0.01)``: on the
    OLMo ladder, larger runs sit above the link that smaller runs trace (at the same task loss
    they answer more questions right), so runs are exchangeable only after this term.
    """
    import pymc as pm

    mu = pm.Normal("size_effect_mu", 0.0, SIZE_EFFECT_PRIOR_SD)
    sd = pm.HalfNormal("size_effect_sd", SIZE_EFFECT_PRIOR_SD / 2)
    return pm.Deterministic("size_effect", mu + sd * pm.Normal("size_effect_z", 0.0, 1.0, dims="task"), dims="task")


def _add_link(points: LadderData, x: np.ndarray, noise_median: np.ndarray, log_size_ref: float) -> dict[str, Any]:
    """Step 2 inside the current model: priors and the run-marginalised likelihood of the accuracies.

    ``x`` is the loss the link reads: ``(checkpoint, task)`` (each task's own loss) or
    ``(checkpoint,)`` (one validation loss for every task).
    """
    import pymc as pm
    import pytensor.tensor as pt

    # one loss per checkpoint (a validation domain's) is repeated over the tasks: the link to a
    # validation loss then compiles to the same model as the link to the tasks' own losses
    x_full = np.array(np.broadcast_to(np.asarray(x, dtype=float).reshape(len(points.checkpoints), -1), points.accuracy.shape))
    summary = accuracy_summary(points, x_full)
    data = {
        "chance": pm.Data("prior_chance", summary.chance, dims="task"),
        "x_median": pm.Data("prior_link_x_median", summary.x_median, dims="task"),
        "x_spread": pm.Data("prior_link_x_spread", summary.x_spread, dims="task"),
    }
    params = AccuracyLaw.build_priors(summary, data)
    run_index = pd.Index(list(pd.unique(points.checkpoints["run"]))).get_indexer(points.checkpoints["run"])
    pm.Data("checkpoint_run", run_index.astype("int64"), dims="checkpoint")
    membership = np.zeros((run_index.max() + 1, len(run_index)))
    membership[run_index, np.arange(len(run_index))] = 1.0
    members = pm.Data("derived_membership", membership)
    x_data = pm.Data("link_loss", x_full, dims=("checkpoint", "task"))
    observed = pm.Data("accuracy", points.accuracy.to_numpy(dtype=float), dims=("checkpoint", "task"))
    prior_noise = pm.Data("prior_accuracy_noise", noise_median, dims="task")
    sd = pm.Deterministic(
        "accuracy_sigma", prior_noise * pt.exp(0.5 * pm.Normal("accuracy_sigma_z", 0.0, 1.0, dims="task")), dims="task"
    )
    tau_mu = pm.Normal("run_sd_log_mu", float(np.log(0.01)), 1.0)
    tau_sd = pm.HalfNormal("run_sd_log_sd", 0.5)
    tau = pm.Deterministic("run_sd", pt.exp(tau_mu + tau_sd * pm.Normal("run_sd_log_z", 0.0, 1.0, dims="task")), dims="task")
    log_sizes = np.log(points.checkpoint_sizes())
    size_data = pm.Data("link_log_size", log_sizes - log_size_ref, dims="checkpoint")
    effect = size_effect_priors()
    params["size_effect"] = effect
    mean = AccuracyLaw.evaluate(params, x_data, xp=pt) + size_data[:, None] * effect[None, :]
    residual = observed - mean  # (checkpoint, task)
    sum1 = pt.dot(members, residual)  # (run, task)
    sum2 = pt.dot(members, residual**2)
    count = pt.sum(members, axis=1)[:, None]  # (run, 1)
    var = (sd**2)[None, :]
    run_var = (tau**2)[None, :]
    total = var + count * run_var
    logp = -0.5 * (sum2 / var - run_var * sum1**2 / (var * total)) - 0.5 * (
        (count - 1.0) * pt.log(var) + pt.log(total) + count * np.log(2 * np.pi)
    )
    pm.Potential("accuracy_loglik", pt.sum(logp))
    params["accuracy_sigma"] = sd
    params["run_sd"] = tau
    return params


def reference_log_size(data: LadderData) -> float:
    """``ln N_ref``: the mean log model size of the runs (the link's size effect is 0 there)."""
    return float(np.log(data.runs["model_size"].to_numpy(dtype=float)).mean())


def check_fit_runs(data: LadderData, what: str) -> None:
    """Raise unless ``data`` has enough runs and sizes to fit ``what``.

    Raises
    ------
    NotEnoughDataError
        Fewer than 2 model sizes or fewer than 6 runs (step 1 has 5 parameters per task).
    """
    sizes = np.unique(data.runs["model_size"].to_numpy(dtype=float))
    if len(sizes) < 2 or len(data.runs) < 6:
        raise NotEnoughDataError(
            "runs",
            f"{len(data.runs)} runs at {len(sizes)} model size(s) for {what}",
            "give at least 6 runs at 2 or more model sizes (the paper fits 16 runs at 4 sizes)",
        )


def build_task_loss_model(data: LadderData, *, n_last: int = N_LAST, noise: pd.DataFrame | None = None) -> Any:
    """Step 1 over tasks: the runs' final task losses as a function of ``N`` and ``D``.

    Parameters
    ----------
    data
        The runs to fit (all of them; select first with :meth:`LadderData.select`).
    n_last
        Checkpoints averaged into each run's final task loss.
    noise
        Noise scales (:meth:`LadderData.noise`) for the noise prior; default measured on ``data``.

    Returns
    -------
    pymc.Model
        Coords ``task`` and ``run``.

    Raises
    ------
    NotEnoughDataError
        Fewer than 6 runs or 2 model sizes.
    """
    import pymc as pm

    check_fit_runs(data, "the task-loss law")
    noise = data.noise(n_last) if noise is None else noise
    finals = data.final(n_last)
    coords = {"task": data.tasks, "run": [str(r) for r in finals.checkpoints["run"]]}
    with pm.Model(coords=coords) as model:
        _add_task_loss(finals, step1_noise_prior(noise, n_last))
    return model


def build_link_model(
    data: LadderData,
    loss: str | Mapping[str, float] | None = None,
    *,
    skip: float = LINK_SKIP,
    max_per_run: int = LINK_MAX_PER_RUN,
    noise: pd.DataFrame | None = None,
) -> Any:
    """Step 2 over tasks: accuracy as a sigmoid of a loss, with the runs' offsets integrated out.

    Parameters
    ----------
    data
        The runs to fit.
    loss
        ``None`` (default): each task's own loss (the paper's chain). Else a ``loss_<domain>``
        column of the checkpoint table, or ``{column: weight}`` (a weighted mean of several):
        the link a mixing law feeds. Both compile to the same model.
    skip, max_per_run
        Which checkpoints enter (:meth:`LadderData.link_points`).
    noise
        Noise scales (:meth:`LadderData.noise`) for the noise prior; default measured on ``data``.

    Returns
    -------
    pymc.Model
        Coords ``task``, ``run``, ``checkpoint``.

    Raises
    ------
    NotEnoughDataError
        Fewer than 3 runs.
    InputError
        Unknown loss columns.
    """
    import pymc as pm

    if len(data.runs) < 3:
        raise NotEnoughDataError("runs", f"{len(data.runs)} runs for the accuracy link", "give at least 3 runs")
    noise = data.noise() if noise is None else noise
    points = data.link_points(skip, max_per_run)
    x = points.task_loss.to_numpy(dtype=float) if loss is None else points.validation_loss(loss)
    coords = {
        "task": data.tasks,
        "run": [str(r) for r in pd.unique(points.checkpoints["run"])],
        "checkpoint": _checkpoint_labels(points),
    }
    with pm.Model(coords=coords) as model:
        _add_link(points, x, step2_noise_prior(noise), log_size_ref=reference_log_size(data))
    return model


def _checkpoint_labels(points: LadderData) -> list[str]:
    return [f"{run}@{int(tokens)}" for run, tokens in zip(points.checkpoints["run"], points.checkpoints["tokens"], strict=True)]
