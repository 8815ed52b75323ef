"""The mixture sampler: which training sequence fills each slot of each batch.

Domain of each slot
    Slots are numbered ``n = 1, 2, ...`` across batches. The ``k``-th slot of domain ``d`` must
    fall in the window ``floor((k - 1) / r_d) + 1 <= n <= ceil(k / r_d)``: exactly the slots at
    which taking it keeps the domain's count ``C_d(n)`` strictly within one of ``r_d n``. Each slot
    goes to the domain whose next window closes first among those whose next window is open
    (earliest deadline first; ties to the first domain). Such windows can always be met (Tijdeman
    1980, "The chairman assignment problem": a sequence within ``1 - 1/(2M - 2)`` of every
    ``r_d n`` exists), and earliest-deadline-first meets any feasible set of unit windows, so after
    any number of slots every domain's count is within one of ``r_d * slots``: the realised shares
    match ``r`` up to rounding, in every prefix of the run, with no sampling noise. (Taking the
    largest deficit ``r_d n - C_d`` instead can fall more than one behind with three or more
    domains.) Domains with ``r_d = 0`` are never drawn.
Sequence within a domain
    The ``k``-th draw from domain ``d`` is sequence ``perm_e[k mod n_d]`` with ``e = k // n_d``,
    where ``perm_e`` is a permutation of the domain's ``n_d`` training sequences seeded by
    ``(seed, d, e)``. Each domain is read without replacement within an *epoch*; when it runs out,
    a new epoch starts with a fresh permutation (the data repeat, reshuffled). :meth:`epochs`
    reports how many times each domain has been read.

Phases
    A multi-phase run switches the proportions at a step (:meth:`start_phase`): the deficit rule
    restarts from the phase's first slot, so every phase realises its own mixture exactly, and the
    within-domain order continues where the previous phase left it (no sequence is re-read before
    its domain's epoch ends).

The sampler's whole state is the slot counter, the per-domain counts and the current phase (its
index, proportions and first slot), so it is resumed exactly from :meth:`state_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bayesmix.errors import InputError


class MixtureSampler:
    """Deterministic mixture sampler (see the module docstring).

    Parameters
    ----------
    weights
        Mixture proportions per domain (non-negative, summing to 1).
    sizes
        Number of training sequences per domain, same order.
    batch_size
        Sequences per batch.
    seed
        Seed of the within-domain permutations.
    """

    def __init__(self, weights: Sequence[float], sizes: Sequence[int], batch_size: int, seed: int):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or len(w) != len(sizes) or len(w) == 0:
            raise InputError(
                "weights", "must be one proportion per domain", "give as many weights as domains"
            )
        if (w < 0).any() or abs(w.sum() - 1.0) > 1e-6:
            raise InputError(
                "mixture",
                f"proportions {w.tolist()} are negative or do not sum to 1",
                "give non-negative proportions that sum to 1",
            )
        for d, (wd, n) in enumerate(zip(w, sizes, strict=True)):
            if wd > 0 and n <= 0:
                raise InputError(
                    "mixture",
                    f"domain {d} has weight {wd} but no training sequences",
                    "give the domain more text or set its weight to 0",
                )
        if batch_size <= 0:
            raise InputError("batch_size", f"is {batch_size}", "use a positive integer")
        self.weights = w / w.sum()
        self.sizes = [int(n) for n in sizes]
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.slot = 0
        self.counts = np.zeros(len(w), dtype=np.int64)
        self.phase = 0
        self._phase_slot = 0
        self._phase_counts = np.zeros(len(w), dtype=np.int64)
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    @classmethod
    def from_mixture(
        cls,
        mixture: Mapping[str, float],
        sizes: Mapping[str, int],
        domains: Sequence[str],
        batch_size: int,
        seed: int,
    ) -> MixtureSampler:
        """Build a sampler over ``domains`` from a ``{domain: proportion}`` mixture (missing = 0)."""
        unknown = set(mixture) - set(domains)
        if unknown:
            raise InputError(
                "mixture",
                f"names domains {sorted(unknown)} that the corpus lacks",
                f"use domains from {list(domains)}",
            )
        return cls(
            [float(mixture.get(d, 0.0)) for d in domains], [sizes[d] for d in domains], batch_size, seed
        )

    def start_phase(self, phase: int, weights: Sequence[float]) -> None:
        """Switch to phase ``phase`` with proportions ``weights`` (one per domain) from the next slot.

        Raises
        ------
        InputError
            Proportions of the wrong length, negative, not summing to 1, or on a domain with no
            training sequences.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != self.weights.shape or (w < 0).any() or abs(w.sum() - 1.0) > 1e-6:
            raise InputError(
                "phase mixture",
                f"proportions {w.tolist()} are not one non-negative share per domain summing to 1",
                "give each phase a mixture over the corpus's domains",
            )
        empty = [d for d, (wd, n) in enumerate(zip(w, self.sizes, strict=True)) if wd > 0 and n <= 0]
        if empty:
            raise InputError(
                "phase mixture",
                f"domain {empty[0]} has weight {w[empty[0]]} but no training sequences",
                "give the domain more text or set its weight to 0",
            )
        self.weights = w / w.sum()
        self.phase = int(phase)
        self._phase_slot = self.slot
        self._phase_counts = self.counts.copy()

    def _perm(self, domain: int, epoch: int) -> np.ndarray:
        key = (domain, epoch)
        if key not in self._perms:
            if len(self._perms) > 64:
                self._perms.clear()
            rng = np.random.default_rng([self.seed, domain, epoch])
            self._perms[key] = rng.permutation(self.sizes[domain])
        return self._perms[key]

    def _next_domain(self) -> int:
        """The domain of the next slot: earliest deadline first (see the module docstring)."""
        n = self.slot - self._phase_slot + 1  # slots of this phase, this one included
        taken = self.counts - self._phase_counts
        active = self.weights > 0
        w = np.where(active, self.weights, 1.0)
        nxt = taken + 1
        release = np.floor((nxt - 1) / w + 1e-9) + 1
        deadline = np.ceil(nxt / w - 1e-9)
        open_ = active & (release <= n)
        if not open_.any():  # cannot happen for shares summing to 1; keep the loop total
            return int(np.argmax(self.weights * n - taken))
        return int(np.argmin(np.where(open_, deadline, np.inf)))

    def next_batch(self) -> list[tuple[int, int]]:
        """Return the next batch as ``(domain index, sequence index)`` pairs and advance."""
        out = []
        for _ in range(self.batch_size):
            d = self._next_domain()
            k = int(self.counts[d])
            n = self.sizes[d]
            out.append((d, int(self._perm(d, k // n)[k % n])))
            self.counts[d] += 1
            self.slot += 1
        return out

    def epochs(self) -> list[float]:
        """Return, per domain, how many passes over its training sequences have been drawn."""
        return [float(c) / n if n else 0.0 for c, n in zip(self.counts, self.sizes, strict=True)]

    def state_dict(self) -> dict[str, object]:
        """Return the resumable state (plain ints, safe for ``torch.load(weights_only=True)``)."""
        return {
            "slot": self.slot,
            "counts": [int(c) for c in self.counts],
            "seed": self.seed,
            "phase": self.phase,
            "phase_slot": self._phase_slot,
            "phase_counts": [int(c) for c in self._phase_counts],
            "weights": [float(w) for w in self.weights],
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore a state from :meth:`state_dict`."""
        if int(state["seed"]) != self.seed or len(state["counts"]) != len(self.counts):  # type: ignore[arg-type]
            raise InputError(
                "sampler state",
                "was saved for another seed or domain list",
                "resume with the same run settings",
            )
        self.slot = int(state["slot"])  # type: ignore[arg-type]
        self.counts = np.asarray(state["counts"], dtype=np.int64)
        if "phase" in state:
            self.phase = int(state["phase"])  # type: ignore[arg-type]
            self._phase_slot = int(state["phase_slot"])  # type: ignore[arg-type]
            self._phase_counts = np.asarray(state["phase_counts"], dtype=np.int64)
            self.weights = np.asarray(state["weights"], dtype=np.float64)
