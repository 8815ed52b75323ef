"""Repetition-aware mixing law vs hard epoch caps on a simulated data-constrained study.

Four training domains (web without a limit, code, books, and a small high-quality ``papers`` pool
of 1.75B unique tokens). Under unlimited data the best mixture for the mean validation loss
puts 0.36 on papers; at the target run of 100B tokens that share would repeat papers ~21 times.
The truth is the repetition-aware law (:class:`bayesmix.RepetitionMixingLaw`: effective shares of
Muennighoff et al. 2023 inside the mixing law of Ye et al. 2024, with a cost of wasted share);
proxy runs at 2B-60B tokens and random mixtures repeat papers up to ~20 times.

Compared, on the same runs:

* the repetition-aware fit (``RepetitionMixingLaw``): its optimum at the target tokens, the 90%
  interval of the target loss it predicts there, and whether the true loss at that optimum lies
  inside it;
* the plain mixing law (``MixingLaw``, blind to repetition) optimised with hard caps
  ``max_epochs=1`` and ``max_epochs=4`` (``r_j D <= max_epochs U_j``), and with no cap.

Regret: the true target loss (mean over the four validation domains, nats/token) at each chosen
mixture minus the true minimum at the target tokens. Fits use NUTS (nutpie; ``--quick``: 4 chains
x 500 tuning + 500 draws; full: 4 x 1000 + 1000).

Usage::

    python benchmarks/repetition.py --quick      # < 3 min on 2 cores
    python benchmarks/repetition.py              # more runs and draws

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, print_json, print_table

import bayesmix as bm
from bayesmix.laws.repetition import effective_shares

DOMAINS = ("web", "code", "books", "papers")
#: unique tokens per limited domain (web has no limit)
UNIQUE = {"code": 3e10, "books": 1e10, "papers": 1.75e9}
TARGET_TOKENS = 1e11
PROXY_TOKENS = (2e9, 1e10, 3e10, 6e10)
SMALL = "papers"


class Truth:
    """The true repetition-aware law of the study (``R*`` in epochs; losses in nats/token)."""

    def __init__(self, waste_cost: np.ndarray | None = None) -> None:
        t0 = np.array(
            [
                [-2.0, 0.3, 0.2, 0.0],
                [0.4, -2.5, 0.3, 0.0],
                [0.0, 0.4, -2.0, 0.0],
                [0.5, 0.4, 0.2, -2.0],
            ]
        )
        self.t = 1.5 * (t0 - t0.mean(axis=1, keepdims=True))
        self.c = np.array([2.6, 1.4, 2.4, 2.1])
        self.log_k = np.log([0.9, 1.0, 0.8, 1.0])
        self.waste_cost = np.array([0.4, 0.6, 0.5, 0.7]) if waste_cost is None else waste_cost
        self.r_star = np.array([15.0, 12.0, 20.0, 8.0])
        self.reference = np.full(4, 0.25)
        self.inverse = np.array([1.0 / UNIQUE[d] if d in UNIQUE else 0.0 for d in DOMAINS])

    def losses(self, mixtures: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """Noise-free losses ``(mixture, domain)`` of runs of ``tokens`` each."""
        mixtures = np.atleast_2d(mixtures)
        tokens = np.broadcast_to(np.asarray(tokens, dtype=float), (len(mixtures),))
        shares = effective_shares(mixtures, tokens, self.inverse, self.r_star, np)
        wasted = 1.0 - shares.sum(axis=-1, keepdims=True)
        return self.c + np.exp(self.log_k + (shares - self.reference) @ self.t.T + wasted * self.waste_cost)

    def target(self, mixtures: np.ndarray, tokens: float = TARGET_TOKENS) -> np.ndarray:
        """Mean validation loss over the four domains."""
        return self.losses(mixtures, tokens).mean(axis=-1)

    def optimum(self, tokens: float, unlimited: bool = False) -> tuple[np.ndarray, float]:
        """The true best mixture and its target loss at ``tokens`` (multi-start SLSQP)."""
        inverse = self.inverse
        if unlimited:
            self.inverse = np.zeros(4)
        try:
            best = None
            for start in np.random.default_rng(0).dirichlet(np.ones(4), 16):
                out = minimize(
                    lambda x: float(self.target(x, tokens)[0]),
                    start,
                    bounds=[(0.0, 1.0)] * 4,
                    constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0}],
                    method="SLSQP",
                    options={"ftol": 1e-13, "maxiter": 500},
                )
                if best is None or out.fun < best.fun:
                    best = out
            r = np.clip(best.x, 0, None)
            r = r / r.sum()
            return r, float(self.target(r, tokens)[0])
        finally:
            self.inverse = inverse


def simulate(truth: Truth, n_mixtures: int, seed: int, noise_sd: float = 0.01) -> bm.RunTable:
    """``n_mixtures`` random mixtures at each proxy token count, with Gaussian run noise."""
    rng = np.random.default_rng(seed)
    rows, tokens = [], []
    for d in PROXY_TOKENS:
        rows.append(rng.dirichlet(np.full(4, 0.8), n_mixtures))
        tokens += [d] * n_mixtures
    mixtures = np.vstack(rows)
    tokens = np.asarray(tokens)
    losses = truth.losses(mixtures, tokens) + rng.normal(0.0, noise_sd, (len(mixtures), 4))
    index = pd.Index([f"run{i:03d}" for i in range(len(mixtures))], name="run")
    return bm.RunTable(
        pd.DataFrame(mixtures, index=index, columns=list(DOMAINS)),
        pd.DataFrame(losses, index=index, columns=list(DOMAINS)),
        pd.DataFrame({"tokens": tokens}, index=index),
    )


def epochs_of(mixture: np.ndarray, tokens: float = TARGET_TOKENS) -> np.ndarray:
    """Epochs of each domain at ``tokens`` (0 for web)."""
    return np.array([mixture[j] * tokens / UNIQUE[d] if d in UNIQUE else 0.0 for j, d in enumerate(DOMAINS)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and draws (< 3 min on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_mix = 8 if args.quick else 14
    chains, tune, draws = (4, 500, 500) if args.quick else (4, 1000, 1000)
    started = time.perf_counter()
    print(f"# {machine()}; {'quick' if args.quick else 'full'}; seed {args.seed}")

    truth = Truth()
    best_r, best_loss = truth.optimum(TARGET_TOKENS)
    free_r, _ = truth.optimum(TARGET_TOKENS, unlimited=True)
    no_waste = Truth(waste_cost=np.zeros(4))
    no_waste_r, _ = no_waste.optimum(TARGET_TOKENS)
    small = DOMAINS.index(SMALL)
    print(
        f"truth: best mixture under unlimited data puts {free_r[small]:.3f} on {SMALL} "
        f"({epochs_of(free_r)[small]:.1f} epochs at {TARGET_TOKENS:.0e} tokens); at those tokens the best "
        f"puts {best_r[small]:.3f} ({epochs_of(best_r)[small]:.1f} epochs), target loss {best_loss:.4f}; "
        f"without the waste cost the law would put {no_waste_r[small]:.3f} "
        f"({epochs_of(no_waste_r)[small]:.0f} epochs)"
    )
    runs = simulate(truth, n_mix, seed=args.seed)
    epochs_runs = runs.mixtures[SMALL].to_numpy() * runs.meta["tokens"].to_numpy() / UNIQUE[SMALL]
    print(
        f"{runs.n_runs} proxy runs at {', '.join(f'{d:.0e}' for d in PROXY_TOKENS)} tokens; {SMALL} repeated "
        f"(> 1 epoch) in {(epochs_runs > 1).sum()} runs, up to {epochs_runs.max():.1f} epochs"
    )

    settings = dict(chains=chains, tune=tune, draws=draws, seed=args.seed)
    fit_seconds = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplerHealthWarning)
        t0 = time.perf_counter()
        fit_rep = bm.fit(runs, bm.RepetitionMixingLaw(available_tokens=UNIQUE), **settings)
        fit_seconds["repetition"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit_plain = bm.fit(runs, bm.MixingLaw(), discrepancy=None, **settings)  # like for like: the law alone
        fit_seconds["plain"] = time.perf_counter() - t0

    common = dict(target="mean", seed=args.seed, max_draws=1000)
    answers = {
        "repetition": bm.optimise(fit_rep, tokens=UNIQUE, target_tokens=TARGET_TOKENS, **common),
        "cap1": bm.optimise(fit_plain, tokens=UNIQUE, target_tokens=TARGET_TOKENS, max_epochs=1.0, **common),
        "cap4": bm.optimise(fit_plain, tokens=UNIQUE, target_tokens=TARGET_TOKENS, max_epochs=4.0, **common),
        "nocap": bm.optimise(fit_plain, **common),
    }
    rows = [
        {
            "method": "truth",
            **{d: float(best_r[j]) for j, d in enumerate(DOMAINS)},
            f"{SMALL}_epochs": float(epochs_of(best_r)[small]),
            "true_loss": best_loss,
            "regret": 0.0,
        }
    ]
    figures: dict[str, object] = {}
    for name, result in answers.items():
        r = result.mixture.reindex(list(DOMAINS)).to_numpy()
        true_loss = float(truth.target(r)[0])
        row = {
            "method": name,
            **{d: float(r[j]) for j, d in enumerate(DOMAINS)},
            f"{SMALL}_epochs": float(epochs_of(r)[small]),
            "true_loss": true_loss,
            "regret": true_loss - best_loss,
            "pred_mean": float(result.summary.loc["target", "mean"]),
            "pred_lower": float(result.summary.loc["target", "lower"]),
            "pred_upper": float(result.summary.loc["target", "upper"]),
        }
        row["in_90"] = bool(row["pred_lower"] <= true_loss <= row["pred_upper"])
        rows.append(row)
        figures[f"{name}_regret"] = row["regret"]
        figures[f"{name}_in_interval"] = row["in_90"]
    columns = [
        "method",
        *DOMAINS,
        f"{SMALL}_epochs",
        "true_loss",
        "regret",
        "pred_mean",
        "pred_lower",
        "pred_upper",
        "in_90",
    ]
    print_table(
        rows, columns, f"Optimum at {TARGET_TOKENS:.0e} tokens (target: mean loss, nats/token; 90% intervals)"
    )
    print(
        "\n(the plain law's predictions ignore repetition: its interval is of the loss it believes, "
        "so in_90 for cap/nocap rows checks that belief against the truth)"
    )

    posterior = fit_rep.posterior
    r_star = posterior["r_star"].sel(train_domain=SMALL).to_numpy().ravel()
    waste = posterior["waste_cost"].to_numpy().reshape(-1, 4)
    rep_rows = [
        {
            "quantity": f"R* {d}",
            "true": float(truth.r_star[j]),
            "mean": float(posterior["r_star"].sel(train_domain=d).mean()),
            "q05": float(posterior["r_star"].sel(train_domain=d).quantile(0.05)),
            "q95": float(posterior["r_star"].sel(train_domain=d).quantile(0.95)),
        }
        for j, d in enumerate(DOMAINS)
    ] + [
        {
            "quantity": f"waste_cost {d}",
            "true": float(truth.waste_cost[j]),
            "mean": float(waste[:, j].mean()),
            "q05": float(np.quantile(waste[:, j], 0.05)),
            "q95": float(np.quantile(waste[:, j], 0.95)),
        }
        for j, d in enumerate(DOMAINS)
    ]
    print_table(rep_rows, ["quantity", "true", "mean", "q05", "q95"], "Repetition parameters (posterior)")
    print("(web is never limited, so R* web is its prior pooled with the others)")
    health_rep, health_plain = bm.health(fit_rep), bm.health(fit_plain)
    print(
        f"\nfits: repetition {fit_seconds['repetition']:.1f} s (health ok: {health_rep.ok}), "
        f"plain {fit_seconds['plain']:.1f} s (health ok: {health_plain.ok}); NUTS {chains} chains x "
        f"{tune} tuning + {draws} draws; total {time.perf_counter() - started:.1f} s"
    )
    print(f"repetition fit: {health_rep}\nplain fit: {health_plain}")
    rep_mixture = answers["repetition"].mixture.reindex(list(DOMAINS)).to_numpy()
    print_json(
        {
            "benchmark": "repetition",
            "quick": bool(args.quick),
            "method": "nuts",
            "repetition_regret": figures["repetition_regret"],
            "cap1_regret": figures["cap1_regret"],
            "cap4_regret": figures["cap4_regret"],
            "nocap_regret": figures["nocap_regret"],
            "optimum_in_interval": figures["repetition_in_interval"],
            "small_domain_share_true": float(best_r[small]),
            "small_domain_share_fitted": float(rep_mixture[small]),
            "small_domain_share_unlimited": float(free_r[small]),
            "small_domain_epochs_fitted": float(epochs_of(rep_mixture)[small]),
            "r_star_small_true": float(truth.r_star[small]),
            "r_star_small_mean": float(r_star.mean()),
            "r_star_small_q05": float(np.quantile(r_star, 0.05)),
            "r_star_small_q95": float(np.quantile(r_star, 0.95)),
            "health_ok_repetition": bool(health_rep.ok),
            "health_ok_plain": bool(health_plain.ok),
            "n_runs": int(runs.n_runs),
            "seconds": time.perf_counter() - started,
        }
    )


if __name__ == "__main__":
    main()
