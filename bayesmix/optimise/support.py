"""Where the runs are: the support of a fit in mixture space, its trust region, and distances to it.

A law fitted on runs predicts well near them and only by its functional form beyond them. The
optimiser therefore keeps its answer, by default, inside the **trust region** of the runs: each
training domain's share within the range of shares the runs cover (``[min_j, max_j]`` over the
runs, widened by ``margin`` shares on each side). Whatever the limits, every answer reports how
far it lies from the runs: per domain, the share against the smallest and largest seen; and the
total-variation distance (``0.5 * sum_j |r_j - r'_j|``, in shares) to the nearest run, against
the distances between the runs themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.inference import _arviz

#: default margin (in shares) of the trust region beyond the runs' per-domain range
DEFAULT_TRUST_MARGIN = 0.0
#: a mixture farther from its nearest run than this quantile of the runs' own nearest-run
#: distances is reported as lying outside the runs (even inside every per-domain range)
NEAREST_QUANTILE = 0.95
#: slack (in shares) below which a share equal to a seen limit counts as inside
TOL = 1e-6


def total_variation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distance ``0.5 * sum_j |a_j - b_j|`` between rows of ``a (n, M)`` and ``b (m, M)``: ``(n, m)``."""
    return 0.5 * np.abs(np.atleast_2d(a)[:, None, :] - np.atleast_2d(b)[None, :, :]).sum(axis=-1)


@dataclass(frozen=True)
class Support:
    """The runs' mixtures and the summaries the trust region and the distance report use.

    Attributes
    ----------
    train_domains
        Training-domain names, in order.
    mixtures
        The runs' mixtures, shape ``(run, train_domain)``.
    lowest, highest
        Per training domain, the smallest and largest share seen in the runs.
    nearest_scale
        The :data:`NEAREST_QUANTILE` quantile of each run's distance to its nearest other run
        (total variation, shares): how far apart the runs themselves are.
    """

    train_domains: tuple[str, ...]
    mixtures: np.ndarray
    lowest: np.ndarray
    highest: np.ndarray
    nearest_scale: float

    @classmethod
    def from_mixtures(cls, mixtures: np.ndarray, train_domains: tuple[str, ...] | list[str]) -> Support:
        """Summaries of the run mixtures ``(run, train_domain)``."""
        mixtures = np.asarray(mixtures, dtype=float)
        unique = np.unique(np.round(mixtures, 9), axis=0)
        if len(unique) > 1:
            distance = total_variation(unique, unique)
            np.fill_diagonal(distance, np.inf)
            scale = float(np.quantile(distance.min(axis=1), NEAREST_QUANTILE))
        else:
            scale = 0.0
        return cls(tuple(train_domains), mixtures, mixtures.min(axis=0), mixtures.max(axis=0), scale)

    @classmethod
    def from_idata(cls, idata: _arviz.InferenceData) -> Support | None:
        """The support of a fit (its ``constant_data["mixtures"]``), or ``None`` when it has none."""
        if "constant_data" not in idata.groups() or "mixtures" not in idata.constant_data:
            return None
        data = idata.constant_data["mixtures"]
        names = [str(d) for d in data.coords[data.dims[-1]].values] if data.dims[-1] in data.coords else None
        values = np.asarray(data, dtype=float)
        if names is None or len(names) != values.shape[1]:
            return None
        return cls.from_mixtures(values, names)

    def trust_limits(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """Per-domain ``(lower, upper)`` shares of the trust region with ``margin`` shares of slack."""
        check_margin(margin)
        return np.clip(self.lowest - margin, 0.0, 1.0), np.clip(self.highest + margin, 0.0, 1.0)

    def describe(self, mixture: np.ndarray) -> dict[str, Any]:
        """How far ``mixture`` lies from the runs.

        Returns
        -------
        dict
            ``nearest_run_distance`` (total variation to the nearest run, shares),
            ``nearest_scale`` (see the class), ``outside`` (a list of
            ``{"domain", "share", "lowest_seen", "highest_seen"}`` for each share beyond the
            runs' range), ``beyond_runs`` (the nearest run is farther than ``nearest_scale``)
            and ``extrapolation`` (either of the two).
        """
        mixture = np.asarray(mixture, dtype=float)
        nearest = float(total_variation(mixture, self.mixtures).min())
        outside = [
            {
                "domain": name,
                "share": float(share),
                "lowest_seen": float(low),
                "highest_seen": float(high),
            }
            for name, share, low, high in zip(self.train_domains, mixture, self.lowest, self.highest, strict=True)
            if share > high + TOL or share < low - TOL
        ]
        beyond = nearest > self.nearest_scale + TOL
        return {
            "nearest_run_distance": nearest,
            "nearest_scale": self.nearest_scale,
            "outside": outside,
            "beyond_runs": bool(beyond),
            "extrapolation": bool(outside) or bool(beyond),
        }


def describe_support(info: dict[str, Any]) -> str:
    """One sentence on how far a mixture lies from the runs (from :meth:`Support.describe`)."""
    parts = [
        f"{item['domain']} {item['share']:.3f} (runs {item['lowest_seen']:.3f} to {item['highest_seen']:.3f})"
        for item in info["outside"]
    ]
    where = f"nearest run {info['nearest_run_distance']:.3f} away (runs lie within {info['nearest_scale']:.3f} of each other)"
    if not info["extrapolation"]:
        return f"Inside the runs: every share within the runs' range, {where}."
    shares = f"shares beyond every run: {', '.join(parts)}; " if parts else ""
    return f"EXTRAPOLATION: {shares}{where}. The law's form, not the runs, decides there."


def check_margin(margin: Any) -> None:
    """Raise :class:`InputError` unless ``margin`` is ``None`` or a share in ``[0, 1]``."""
    if margin is None:
        return
    numeric = isinstance(margin, int | float | np.integer | np.floating) and not isinstance(margin, bool)
    if not (numeric and np.isfinite(margin) and 0 <= margin <= 1):
        raise InputError(
            "trust_region",
            f"got {margin!r}",
            "give a margin in shares in [0, 1] (0 keeps the runs' range), or None to turn it off",
        )
