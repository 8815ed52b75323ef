"""Train one proxy run: a model from the ladder on a mixture, evaluated into the ledger.

A multi-phase run (:attr:`RunSpec.phases`) switches the sampler's mixture at each phase's first
step; the learning-rate schedule runs over the whole run, unchanged. The loop is a deterministic
function of the run's seed: initial weights come from
``torch.manual_seed(seed)``, batches from :class:`~bayesmix.proxy.sampler.MixtureSampler`, and the
model has no dropout. A checkpoint (every ``checkpoint_every`` steps and at every evaluation)
holds everything the loop depends on, so a run killed at any point and started again continues
from its last checkpoint and ends with the same weights and losses as an uninterrupted run (on
the same machine and thread count; bitwise on CPU).
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayesmix.data.ledger import Ledger, RunRecord
from bayesmix.errors import InputError
from bayesmix.proxy.checkpoint import load_checkpoint, save_checkpoint
from bayesmix.proxy.config import ModelSpec, build_model, count_params, flops_per_token
from bayesmix.proxy.data import TokenizedCorpus
from bayesmix.proxy.device import maybe_compile, resolve
from bayesmix.proxy.evaluate import eval_steps, evaluate
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.sampler import MixtureSampler
from bayesmix.proxy.schedule import SCHEDULES, learning_rate

#: the ``device`` settings :func:`bayesmix.proxy.device.resolve` accepts
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule, batch, evaluation and checkpoint settings shared by a study's runs.

    Parameters
    ----------
    batch_size
        Sequences per optimizer step.
    lr
        Peak learning rate of AdamW.
    warmup_steps
        Linear warmup steps (capped at a tenth of the run).
    schedule
        ``"cosine"`` (to 10% of the peak) or ``"constant"``.
    weight_decay, beta1, beta2, grad_clip
        AdamW and gradient-clipping settings.
    n_evals
        Log-spaced validation evaluations per run (the last step is always one). Each runs a
        forward pass over every domain's validation sequences (``max_eval_tokens`` per domain),
        which for short CPU runs can cost more than the training itself.
    eval_batch_size
        Sequences per evaluation forward pass.
    checkpoint_every
        Steps between checkpoints (also written at every evaluation); 0: only at evaluations.
    keep_checkpoint
        Keep the final checkpoint (the trained weights) after a run finishes.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    compile
        ``"auto"`` (CUDA only), True or False.
    """

    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 20
    schedule: str = "cosine"
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    n_evals: int = 8
    eval_batch_size: int = 32
    checkpoint_every: int = 50
    keep_checkpoint: bool = False
    device: str = "auto"
    compile: str | bool = "auto"

    def __post_init__(self) -> None:
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise InputError("schedule", f"is {self.schedule!r}", f"use one of {SCHEDULES}")
        for key, low in (
            ("batch_size", 1),
            ("n_evals", 1),
            ("eval_batch_size", 1),
            ("warmup_steps", 0),
            ("checkpoint_every", 0),
        ):
            value = getattr(self, key)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
                raise InputError(key, f"is {value!r}", f"use an integer >= {low}")
        for key, low, high, fix in (
            ("lr", 0.0, math.inf, "use a positive learning rate, e.g. 0.003"),
            ("weight_decay", 0.0, math.inf, "use a number >= 0, e.g. 0.1"),
            ("beta1", 0.0, 1.0, "use a number in [0, 1), e.g. 0.9"),
            ("beta2", 0.0, 1.0, "use a number in [0, 1), e.g. 0.95"),
            ("grad_clip", 0.0, math.inf, "use a number >= 0 (0 turns clipping off), e.g. 1.0"),
        ):
            value = getattr(self, key)
            positive = key == "lr"
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or not (low < value if positive else low <= value)
                or not value < high
            ):
                raise InputError(key, f"is {value!r}", fix)
        if not isinstance(self.keep_checkpoint, bool):
            raise InputError("keep_checkpoint", f"is {self.keep_checkpoint!r}", "use true or false")
        if self.device not in DEVICES:
            raise InputError("device", f"is {self.device!r}", f"use one of {DEVICES}")
        if self.compile != "auto" and not isinstance(self.compile, bool):
            raise InputError("compile", f"is {self.compile!r}", "use auto, true or false")

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-able dict."""
        return asdict(self)


@dataclass
class RunResult:
    """What a finished run reports (the ledger holds the same numbers).

    Parameters
    ----------
    run_id
        The run.
    final
        ``{domain: (loss, bits per byte)}`` at the last step.
    train_losses
        Training loss of every step.
    tokens
        Training tokens seen.
    wall_s
        Seconds spent in this call (a resumed run counts only the resumed part).
    resumed_from
        Step the run resumed from (0 for a fresh start).
    epochs
        Passes over each domain's training sequences.
    model
        The trained model (on its device, uncompiled).
    """

    run_id: str
    final: dict[str, tuple[float, float]]
    train_losses: list[float]
    tokens: int
    wall_s: float
    resumed_from: int = 0
    epochs: dict[str, float] = field(default_factory=dict)
    model: Any = None


def run_record(
    run: RunSpec,
    spec: ModelSpec,
    data: TokenizedCorpus,
    config: TrainConfig,
    corpus_id: str,
    tokenizer_id: str,
) -> RunRecord:
    """Return the ledger record of a planned run."""
    non_emb, total = count_params(spec, data.vocab_size)
    return RunRecord(
        id=run.id,
        mixture=run.mixture,
        model_name=spec.name,
        model_config={**spec.to_dict(), "vocab_size": data.vocab_size},
        train_config={**config.to_dict(), "steps": run.steps, "data_key": data.key, **_phases_entry(run)},
        params_non_embedding=non_emb,
        params_total=total,
        flops_per_token=flops_per_token(spec, data.vocab_size),
        tokens=run.steps * config.batch_size * data.seq_len,
        seed=run.seed,
        corpus=corpus_id,
        tokenizer=tokenizer_id,
    )


def _phases_entry(run: RunSpec) -> dict[str, Any]:
    """``{"phases": [{start, mixture}, ...]}`` for a multi-phase run, else nothing."""
    return {"phases": run.to_dict()["phases"]} if run.phases else {}


def _fingerprint(run: RunSpec, spec: ModelSpec, data: TokenizedCorpus, config: TrainConfig) -> str:
    fields = asdict(run)
    if not run.phases:  # single-phase runs keep the fingerprint they always had
        fields.pop("phases")
    blob = json.dumps([fields, spec.to_dict(), data.key, config.to_dict()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def train_run(
    run: RunSpec,
    spec: ModelSpec,
    data: TokenizedCorpus,
    config: TrainConfig,
    ledger: Ledger | None = None,
    checkpoint_path: str | Path | None = None,
    corpus_id: str = "",
    tokenizer_id: str = "",
    on_step: Callable[[int, float], None] | None = None,
) -> RunResult:
    """Train one run (resuming from its checkpoint if one exists) and record its evaluations.

    Parameters
    ----------
    run
        Mixture, model name, steps and seed.
    spec
        The ladder entry named by ``run.model`` (its ``seq_len`` must equal the data's).
    data
        Tokenized corpus; the mixture's domains must be among its domains.
    config
        Shared training settings.
    ledger
        Where to record the run and its evaluations (``None``: nowhere).
    checkpoint_path
        Checkpoint file; resumed from when present, deleted after success unless
        ``config.keep_checkpoint``.
    corpus_id, tokenizer_id
        Fingerprints stored with the run.
    on_step
        Called with ``(step, training loss)`` after every optimizer step.

    Returns
    -------
    RunResult
        Final per-domain losses and the training-loss history.
    """
    import torch

    if spec.seq_len != data.seq_len:
        raise InputError(
            f"model {spec.name!r}",
            f"has seq_len {spec.seq_len} but the data has {data.seq_len}",
            "tokenize the corpus with the ladder's seq_len",
        )
    setup = resolve(config.device, config.compile)
    sampler = MixtureSampler.from_mixture(
        run.mixture_at(0), data.sizes(), data.domains, config.batch_size, run.seed
    )
    raw_model = build_model(spec, data.vocab_size, data.eos_id, run.seed).to(setup.device)
    decay = [p for n, p in raw_model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in raw_model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(config.beta1, config.beta2),
    )
    fingerprint = _fingerprint(run, spec, data, config)
    start, losses = 0, []
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    if ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt)
        if state.get("fingerprint") != fingerprint:
            raise InputError(
                f"checkpoint {ckpt}",
                "was written by a run with other settings",
                "delete it, or resume with the settings it was written with",
            )
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["torch_rng"])
        if setup.device == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"])
        start, losses = int(state["step"]), [float(x) for x in state["train_losses"]]

    if ledger is not None:
        ledger.add_run(run_record(run, spec, data, config, corpus_id, tokenizer_id))
        ledger.set_status(run.id, "running")

    def checkpoint(step: int) -> None:
        if ckpt is None:
            return
        state = {
            "fingerprint": fingerprint,
            "step": step,
            "model": raw_model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "sampler": sampler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "train_losses": list(losses),
        }
        if setup.device == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state()
        save_checkpoint(ckpt, state)

    model = maybe_compile(raw_model, setup)
    model.train()
    evals = set(eval_steps(run.steps, config.n_evals))
    warmup = min(config.warmup_steps, max(1, run.steps // 10))
    tokens_per_step = config.batch_size * data.seq_len
    autocast = setup.autocast()
    final: dict[str, tuple[float, float]] = {}
    t0 = time.perf_counter()
    try:
        for step in range(start, run.steps):
            phase = run.phase_index(step)
            if phase != sampler.phase:
                mixture = run.mixture_at(step)
                sampler.start_phase(phase, [float(mixture.get(d, 0.0)) for d in data.domains])
            batch = np.stack([data.train[data.domains[d]][i] for d, i in sampler.next_batch()])
            x = torch.from_numpy(batch.astype(np.int64)).to(setup.device)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, run.steps, config.lr, warmup, config.schedule)
            if autocast is not None:
                with autocast:
                    loss = model(input_ids=x, labels=x).loss
            else:
                loss = model(input_ids=x, labels=x).loss
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            done = step + 1
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(
                    f"training loss is {losses[-1]} at step {done}; lower the learning rate"
                )
            if done in evals:
                final = evaluate(model, data, config.eval_batch_size, setup.device, setup.autocast())
                if ledger is not None:
                    ledger.record_eval(run.id, done, done * tokens_per_step, final)
            if done in evals or (config.checkpoint_every and done % config.checkpoint_every == 0):
                checkpoint(done)
            if on_step is not None:
                on_step(done, losses[-1])
    except BaseException as exc:
        if ledger is not None:
            ledger.set_status(run.id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    if not final:  # resumed from the last checkpoint of an already complete run
        final = evaluate(model, data, config.eval_batch_size, setup.device, setup.autocast())
        if ledger is not None:
            ledger.record_eval(run.id, run.steps, run.steps * tokens_per_step, final)
    if ledger is not None:
        ledger.set_status(run.id, "finished", tokens=run.steps * tokens_per_step)
    if ckpt is not None and not config.keep_checkpoint:
        ckpt.unlink(missing_ok=True)
    return RunResult(
        run_id=run.id,
        final=final,
        train_losses=losses,
        tokens=run.steps * tokens_per_step,
        wall_s=time.perf_counter() - t0,
        resumed_from=start,
        epochs=dict(zip(data.domains, sampler.epochs(), strict=True)),
        model=raw_model,
    )
