"""Compiled models, reused: a refit of the same model structure on new runs does not recompile.

Compiling a PyMC model for nutpie (PyTensor -> numba) takes 85-97% of a NUTS fit on a small
study; sampling takes a second or two. Every bayesmix model keeps its data (runs, losses and the
data scales of the priors) in shared variables (``pm.Data``), so two models built on different
runs of the same shape, or of the same structure with another number of runs, have the same
*graph* and differ only in the values of those variables. :func:`compiled` keys a process-wide
cache on a fingerprint of that graph (operations, constants, the names and ranks of shared
variables) and, on a hit, swaps the new values into the compiled model (``with_data``) instead
of compiling again. A graph that bakes data into constants (a user law that reads numbers from
its :class:`~bayesmix.laws.base.DataSummary`) simply gets another fingerprint: the cache can
miss, never mix up two models.

The same compiled object serves NUTS (:func:`sample_nuts`), the posterior mode and the Laplace
approximation (:mod:`bayesmix.inference.approx`): one compile per structure per process.

Across processes nutpie's numba functions cannot be cached (they close over dynamic globals);
PyTensor caches the numba kernels of individual operations on disk, which makes later cold
compiles in new processes somewhat faster. Measured figures: ``benchmarks/speed.py``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import numbers
import threading
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from bayesmix.errors import InputError
from bayesmix.inference import _arviz

#: compiled model structures kept per process (least recently used dropped first)
CACHE_SIZE = 16
#: NUTS adapts a low-rank-modified mass matrix (nutpie) above this many parameters, a diagonal
#: one below: on RegMix (282 parameters) it cut the leapfrog steps per draw from 137 to 19 and
#: the sampling time ~2.5-fold; on a 7-domain study (73 parameters) the diagonal one was faster
LOW_RANK_MIN_DIM = 100
#: NUTS tuning steps per chain when a fit does not name them (``tune=None``): with the low-rank
#: mass matrix (above :data:`LOW_RANK_MIN_DIM` parameters) nutpie's adaptation settles within a
#: few hundred steps (RegMix 512 x 17 x 13 and 64 x 64 domains x 1,000 runs: the same r_hat,
#: ESS and held-out coverage at 500 as at 1,000, in 24-33% less time); with the diagonal one,
#: small hierarchical studies diverged more often at 500 (62 against 37 divergences in 16,000
#: draws of 3-domain, 20-run studies), so they keep PyMC's 1,000. Chains warm-started at an
#: earlier posterior's draws (:func:`warm_start_points`) skip the transient from the prior and
#: tune the low-rank mass matrix in 300 (RegMix refits and a 16 x 16-domain, 500-run study, 3
#: seeds each: the same r_hat, divergences and held-out coverage as at 500, 13-22% less time,
#: bulk ESS 25-40% lower on RegMix; at 200 RegMix needed 33 leapfrog steps per draw, not 19-22)
DEFAULT_TUNE = {"diagonal": 1000, "low_rank": 500, "low_rank_warm": 300}
#: data containers named so are inputs of the compiled model, not data of the study (the data
#: scales of the priors, inputs derived from the runs' mixtures): they stay out of ``constant_data``
INTERNAL_DATA_PREFIXES = ("prior_", "derived_")
#: a chain whose mean log density is this many nats below the best chain's is stuck (see
#: :func:`drop_stuck_chains`); well-mixed chains differ by a fraction of a nat
STUCK_LOGP_GAP = 10.0
#: a warm start turns this many draws of the earlier posterior into starting points; each chain
#: starts at one of them, chosen by its seed
WARM_START_POINTS = 64
#: an earlier posterior needs this many draws to start chains apart (a point fit has one)
WARM_START_MIN_DRAWS = 4
WARM_START_FIX = "pass a fit of the same law on the same domains (runs may differ), or warm_start=None"

logger = logging.getLogger(__name__)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run with one BLAS thread (via threadpoolctl when installed).

    Small dense algebra (the fits' and the optimiser's) is many times slower when OpenBLAS
    threads spin against other processes: measured 14-19x for the paper protocol and ~2x for MAP
    on a shared 2-core machine, 20-70x for the optimiser's SLSQP solves.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it, BLAS keeps its own thread count
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@contextmanager
def quiet() -> Iterator[None]:
    """Silence the third-party warnings that compiling and sampling emit (BLAS, FutureWarning)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*BLAS.*")
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*Cannot cache compiled function.*")
        yield


# --------------------------------------------------------------------------- fingerprint


def _constant_key(var: Any) -> tuple:
    data = np.asarray(var.data)
    if data.dtype == object:  # slices, None, ...: their bytes are addresses, their repr is the value
        return ("const-object", str(var.type), repr(data.tolist()))
    data = np.ascontiguousarray(data)
    return ("const", str(var.type), str(data.dtype), data.shape, data.tobytes())


def _outputs(model: Any) -> list[Any]:
    """The graphs nutpie compiles: the joint log density and the deterministics, in value variables."""
    logp = model.logp()
    deterministics = model.replace_rvs_by_values(list(model.deterministics))
    return [logp, *deterministics]


def structure_key(model: Any, extra: Hashable = (), outputs: list[Any] | None = None) -> Hashable:
    """A hashable fingerprint of ``model``'s graph that ignores the values of shared variables.

    Two models with the same key compile to the same function: the same operations (compared by
    their properties), constants (by value), free variables and transforms, deterministics, and
    shared variables of the same names, dtypes and ranks.

    Parameters
    ----------
    model
        A ``pymc.Model``.
    extra
        Anything else that selects the compiled object (e.g. the backend).
    outputs
        ``model``'s compiled graphs when the caller has built them already.
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs, io_toposort

    outputs = _outputs(model) if outputs is None else outputs
    index: dict[Any, int] = {}
    items: list[tuple] = []

    def ref(var: Any) -> int:
        if var not in index:
            if isinstance(var, SharedVariable) and var.name is not None:
                value = var.get_value(borrow=True)
                items.append(("shared", var.name, str(getattr(value, "dtype", "")), np.ndim(value)))
            elif isinstance(var, SharedVariable):
                # an unnamed shared variable cannot be swapped by name: its value is part of the key
                value = np.asarray(var.get_value(borrow=True))
                items.append(("shared-value", str(value.dtype), value.shape, value.tobytes()))
            elif isinstance(var, Constant):
                items.append(_constant_key(var))
            else:
                items.append(("input", var.name, str(var.type)))
            index[var] = len(index)
        return index[var]

    for var in graph_inputs(outputs):
        ref(var)
    for node in io_toposort(list(graph_inputs(outputs)), outputs):
        inputs = tuple(ref(v) for v in node.inputs)
        items.append(("apply", node.op, inputs))
        for out in node.outputs:
            index[out] = len(index)
            items.append(("out", str(out.type)))
    names = (
        tuple(v.name for v in model.free_RVs),
        tuple(v.name for v in model.value_vars),
        tuple(v.name for v in model.deterministics),
    )
    # the compiled function has the shapes of the stored variables built in (a law whose shapes
    # come only from dims, or a deterministic over runs, would otherwise match another study)
    from nutpie.compile_pymc import _compute_shapes

    shapes = tuple(sorted((name, tuple(int(d) for d in shape)) for name, shape in _compute_shapes(model).items()))
    return (tuple(items), tuple(index[o] for o in outputs), names, shapes, bool(model.check_bounds), extra)


def shared_variables(model: Any, outputs: list[Any] | None = None) -> dict[str, Any]:
    """The named shared variables (``pm.Data``) that ``model``'s compiled graphs read, by name."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    outputs = _outputs(model) if outputs is None else outputs
    return {var.name: var for var in graph_inputs(outputs) if isinstance(var, SharedVariable) and var.name is not None}


def shared_values(model: Any, outputs: list[Any] | None = None) -> dict[str, np.ndarray]:
    """Current values of ``model``'s shared variables (its ``pm.Data``), by name."""
    return {name: np.asarray(var.get_value(borrow=True)) for name, var in shared_variables(model, outputs).items()}


# --------------------------------------------------------------------------- cache


@dataclasses.dataclass
class Compiled:
    """A compiled model structure and the PyMC model it was compiled from.

    Attributes
    ----------
    nutpie
        nutpie's ``CompiledPyMCModel`` with the current data.
    model
        The cache's private copy of the PyMC model that was compiled; its shared variables
        (``shared``) hold the current data, so the initial-point function (Python) sees the same
        data as the compiled C functions.
    compile_seconds
        Seconds the compile took (0 when this object came from the cache).
    cached
        Whether it came from the cache.
    shared
        ``model``'s named shared variables, by name.
    helpers
        Functions built on demand from ``model`` (e.g. :meth:`unconstrained`'s), shared by every
        handle on the same compiled structure.
    """

    nutpie: Any
    model: Any
    compile_seconds: float
    cached: bool = False
    shared: dict[str, Any] = dataclasses.field(default_factory=dict)
    helpers: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_dim(self) -> int:
        """Number of unconstrained parameters."""
        return int(self.nutpie.n_dim)

    def logp_dlogp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Joint log density and its gradient at an unconstrained point ``x`` (``(n_dim,)``).

        Calls the sampler's own compiled C function (no second compile); a point where the
        density or its gradient is not finite gives ``-inf``.
        """
        x = self._point(x)
        grad = np.zeros(self.n_dim)
        logp = np.zeros(1)
        code = self._c_logp(self.n_dim, x.ctypes.data, grad.ctypes.data, logp.ctypes.data, self._user_data)
        if code != 0:
            return float("-inf"), grad
        return float(logp[0]), grad

    def _point(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        if x.shape != (self.n_dim,):  # the C function reads n_dim values whatever it is given
            raise ValueError(f"expected an unconstrained point of shape ({self.n_dim},), got {x.shape}")
        return x

    def __post_init__(self) -> None:
        import ctypes

        address = ctypes.c_void_p
        self._c_logp = ctypes.CFUNCTYPE(
            ctypes.c_int64, ctypes.c_uint64, address, address, address, address
        )(self.nutpie.compiled_logp_func.address)
        self._c_expand = ctypes.CFUNCTYPE(
            ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64, address, address, address
        )(self.nutpie.compiled_expand_func.address)
        # the arrays user_data points into belong to self.nutpie, which lives as long as self
        self._user_data = self.nutpie.user_data.ctypes.data

    def initial_point(self, seed: int) -> np.ndarray:
        """A jittered unconstrained starting point (the one nutpie starts its chains from)."""
        return np.asarray(self.nutpie.initial_point_func(int(seed)), dtype=float)

    def unconstrained(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The unconstrained point (``(n_dim,)``) of the free variables' constrained ``values``.

        The inverse of :meth:`expand` on the free variables: each variable goes through its
        transform (``log`` for a positive scale, ...) and the results are laid out as the
        sampler's vector. ``values`` maps every free variable's name to an array of its shape.
        """
        fn = self.helpers.get("unconstrained")
        if fn is None:
            fn = self.helpers["unconstrained"] = _unconstrained_function(self.model)
        rvs = self.model.free_RVs
        return np.asarray(fn(*[np.asarray(values[rv.name], dtype=float) for rv in rvs]), dtype=float)

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every stored variable (free and deterministic, constrained) at unconstrained ``x``."""
        x = self._point(x)
        flat = np.zeros(int(self.nutpie.n_expanded))
        code = self._c_expand(self.n_dim, flat.size, x.ctypes.data, flat.ctypes.data, self._user_data)
        if code != 0:
            flat[:] = np.nan
        names, slices, shapes = self.nutpie.shape_info
        return {n: flat[s].reshape(shape) for n, s, shape in zip(names, slices, shapes, strict=True)}


_CACHE: OrderedDict[Hashable, Compiled] = OrderedDict()
_LOCK = threading.Lock()
_STATS = {"hits": 0, "misses": 0}


def cache_info() -> dict[str, int]:
    """Hits, misses and the number of compiled structures held in this process."""
    return {**_STATS, "size": len(_CACHE)}


def clear_cache() -> None:
    """Forget every compiled model of this process (the next fit compiles again)."""
    with _LOCK:
        _CACHE.clear()
        _STATS.update(hits=0, misses=0)


def compiled(model: Any, *, reuse: bool = True) -> Compiled:
    """The compiled form of ``model`` (nutpie, numba backend), from the cache when its graph is known.

    The cache compiles and keeps a private clone of ``model`` (its own shared variables), so a
    later fit never writes into a model the caller holds. A model PyMC cannot clone (one with
    custom initial values) is compiled and not cached.

    Parameters
    ----------
    model
        A ``pymc.Model`` whose data live in ``pm.Data``.
    reuse
        ``False`` compiles afresh (and does not store the result).

    Returns
    -------
    Compiled
        With ``compile_seconds`` 0 and ``cached=True`` on a cache hit.
    """
    import time

    import nutpie
    from pymc.model.fgraph import clone_model

    outputs = _outputs(model) if reuse else None
    key = structure_key(model, extra=("nutpie", "numba"), outputs=outputs) if reuse else None
    if reuse:
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                out = _with_data(hit, model, shared_values(model, outputs))
                _STATS["hits"] += 1
                return out
    started = time.perf_counter()
    private = model
    if reuse:
        try:
            private = clone_model(model)
        except NotImplementedError:  # PyMC cannot clone models with custom initial values
            reuse = False
    with quiet():
        compiled_model = nutpie.compile_pymc_model(private, backend="numba")
    out = Compiled(
        nutpie=compiled_model,
        model=private,
        compile_seconds=time.perf_counter() - started,
        shared=shared_variables(private) if reuse else {},
    )
    if reuse:
        with _LOCK:
            _STATS["misses"] += 1
            _CACHE[key] = out
            while len(_CACHE) > CACHE_SIZE:
                _CACHE.popitem(last=False)
        out = dataclasses.replace(out)  # the caller's handle; the cache keeps its own
    return out


def _with_data(hit: Compiled, model: Any, values: dict[str, np.ndarray]) -> Compiled:
    """``hit`` with ``model``'s data ``values`` and coordinates swapped in (no compile); under the lock."""
    from nutpie.compile_pymc import _prepare_dims_and_coords

    # the Python-side initial-point function reads the private model's shared variables
    for name, var in hit.shared.items():
        if name in values:
            var.set_value(values[name])
    updates = {name: values[name] for name in hit.nutpie.shared_data if name in values}
    new = hit.nutpie.with_data(**updates)
    dims, coords = _prepare_dims_and_coords(model, new.shape_info)
    new = dataclasses.replace(new, dims=dims, _coords=coords)
    return Compiled(
        nutpie=new, model=hit.model, compile_seconds=0.0, cached=True, shared=hit.shared, helpers=hit.helpers
    )


def _unconstrained_function(model: Any) -> Any:
    """A compiled function: the free variables' constrained values -> the sampler's flat vector."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.graph.replace import graph_replace

    rvs = list(model.free_RVs)
    values = [rv.type(name=rv.name) for rv in rvs]
    swap = dict(zip(rvs, values, strict=True))
    parts = []
    for rv, value in zip(rvs, values, strict=True):
        transform = model.rvs_to_transforms.get(rv)
        if transform is None:
            parts.append(value.ravel())
            continue
        # a transform may read the variable's parameters (an interval's bounds), which may be
        # other free variables: those are replaced by their given values as well
        inputs = graph_replace(rv.owner.inputs, swap, strict=False)
        parts.append(pt.as_tensor(transform.forward(value, *inputs)).ravel())
    return pytensor.function(values, pt.concatenate(parts), on_unused_input="ignore", mode="FAST_COMPILE")


# --------------------------------------------------------------------------- NUTS


def sample_nuts(
    model: Any,
    *,
    draws: int,
    tune: int | None,
    chains: int,
    target_accept: float,
    seed: int,
    progressbar: bool = False,
    reuse: bool = True,
    low_rank: bool | None = None,
    warm_start: _arviz.InferenceData | dict[str, np.ndarray] | None = None,
    start_jitter: float | None = None,
) -> _arviz.InferenceData:
    """NUTS (nutpie) on ``model``, compiled once per structure; InferenceData like ``pm.sample``.

    ``tune=None`` takes :func:`default_tune` for the model's number of parameters and start;
    ``low_rank`` chooses nutpie's low-rank-modified mass matrix (``None``: above
    :data:`LOW_RANK_MIN_DIM` parameters), which also learns strong correlations between a few
    parameters.

    Where the chains start: ``warm_start`` (an earlier fit of the same law on the same domains,
    or its draws as :func:`earlier_draws` returns them) starts each at one of its draws
    (:func:`warm_start_points`); otherwise ``start_jitter``
    starts them within ``+-start_jitter`` of the prior's centre in every sampler coordinate
    (:func:`jittered_starts`), and ``None`` at PyMC's default (``+-1``). The posterior is the
    same (the tuning steps are discarded); the draws differ, and a warm-started low-rank model
    tunes less by default (:data:`DEFAULT_TUNE`).

    Returns
    -------
    arviz.InferenceData
        ``posterior`` and ``sample_stats`` from nutpie, ``constant_data`` and ``observed_data``
        from ``model``; ``posterior.attrs`` gain ``bayesmix_tune`` (the tuning steps used),
        ``bayesmix_warm_start`` (1 or 0), ``bayesmix_start_jitter`` (when the chains started
        so), ``bayesmix_compile_seconds``, ``bayesmix_sample_seconds`` and
        ``bayesmix_compiled_from_cache``.

    Raises
    ------
    InputError
        A ``warm_start`` that is not a posterior of this model's free variables and domains, or
        a ``start_jitter`` that is not a number >= 0.
    """
    import time

    import nutpie

    with one_blas_thread():
        # checked before compiling
        earlier = warm_start if warm_start is None or isinstance(warm_start, dict) else earlier_draws(
            model, warm_start, seed=seed
        )
        if warm_start is None and start_jitter is not None:
            _check_jitter(start_jitter)
        comp = compiled(model, reuse=reuse)
        tune = default_tune(comp.n_dim, warm=warm_start is not None) if tune is None else int(tune)
        points = None
        if earlier is not None:
            points = warm_start_points(comp, earlier, seed=seed)
        elif start_jitter is not None:
            points = jittered_starts(comp, start_jitter, seed=seed)
            if points is None:
                logger.info("NUTS: the prior's centre has no finite log density; PyMC's starting points used")
                start_jitter = None
        nuts_model = comp.nutpie if points is None else dataclasses.replace(comp.nutpie, initial_point_func=_StartAt(points))
        logger.info(
            "NUTS: %d chains x %d tuning + %d draws of %d parameters (model %s in %.1f s)",
            int(chains), int(tune), int(draws), comp.n_dim,
            "reused" if comp.cached else "compiled", comp.compile_seconds,
        )
        started = time.perf_counter()
        with quiet():
            idata = nutpie.sample(
                nuts_model,
                draws=int(draws),
                tune=int(tune),
                chains=int(chains),
                target_accept=float(target_accept),
                seed=int(seed),
                progress_bar=bool(progressbar),
                save_warmup=False,
                low_rank_modified_mass_matrix=comp.n_dim > LOW_RANK_MIN_DIM if low_rank is None else bool(low_rank),
            )
    sample_seconds = time.perf_counter() - started
    logger.info("NUTS: sampled in %.1f s", sample_seconds)
    # the sampler's unconstrained copies (``sigma_log__``, ...) are internal: drop them
    internal = [name for name in idata.posterior.data_vars if str(name).endswith("__")]
    if internal:
        idata.posterior = idata.posterior.drop_vars(internal)
        unused = [dim for dim in idata.posterior.dims if "__dim_" in str(dim)]
        idata.posterior = idata.posterior.drop_dims(unused, errors="ignore")
    dropped = drop_stuck_chains(idata)
    attach_model_data(idata, model)
    idata.posterior.attrs["bayesmix_dropped_chains"] = json.dumps(dropped)
    idata.posterior.attrs["bayesmix_tune"] = int(tune)
    idata.posterior.attrs["bayesmix_warm_start"] = int(warm_start is not None)
    if earlier is None and start_jitter is not None:
        idata.posterior.attrs["bayesmix_start_jitter"] = float(start_jitter)
    idata.posterior.attrs["bayesmix_compile_seconds"] = float(comp.compile_seconds)
    idata.posterior.attrs["bayesmix_sample_seconds"] = float(sample_seconds)
    idata.posterior.attrs["bayesmix_compiled_from_cache"] = int(comp.cached)
    return idata


def warm_start_points(comp: Compiled, earlier: Any, *, seed: int, n: int = WARM_START_POINTS) -> np.ndarray:
    """Starting points for NUTS from an earlier posterior: ``n`` of its draws, unconstrained.

    A refit after a few more runs (a designer's next batch, a backtest fold, a study grown by a
    batch) has a posterior close to the last one. Chains started there skip the transient of a
    start from the prior, in which the early adaptation windows see long trajectories (RegMix
    512 x 17 x 13: 200-700 leapfrog steps per iteration over the first 70, against 15-20 per
    draw after tuning). Where the chains start does not change what they converge to: the
    tuning steps are discarded.

    Parameters
    ----------
    comp
        The compiled model to start.
    earlier
        An InferenceData (or its ``posterior``) holding every free variable of ``comp.model``
        with the same dims and labels (a fit of the same law on the same domains; the number of
        runs may differ), or what :func:`earlier_draws` returned for it.
    seed
        Chooses the draws.
    n
        How many draws (at most the posterior's).

    Returns
    -------
    numpy.ndarray
        ``(n, comp.n_dim)`` finite unconstrained points.

    Raises
    ------
    InputError
        See :func:`earlier_draws`; or no chosen draw gives a finite point.
    """
    arrays = earlier if isinstance(earlier, dict) else earlier_draws(comp.model, earlier, seed=seed, n=n)
    n_points = min(len(values) for values in arrays.values())
    points = [comp.unconstrained({name: values[i] for name, values in arrays.items()}) for i in range(n_points)]
    points = [p for p in points if p.shape == (comp.n_dim,) and np.isfinite(p).all()]
    if not points:
        raise InputError("warm_start", "none of the earlier draws gives a finite starting point", WARM_START_FIX)
    return np.stack(points)


def earlier_draws(model: Any, earlier: Any, *, seed: int, n: int = WARM_START_POINTS) -> dict[str, np.ndarray]:
    """``n`` draws (chosen under ``seed``) of every free variable of ``model`` from a posterior.

    Parameters
    ----------
    model
        The PyMC model to start.
    earlier
        An InferenceData or its ``posterior``, with at least :data:`WARM_START_MIN_DRAWS` draws.

    Returns
    -------
    dict
        By free variable name: ``(n, *shape)`` constrained values, laid out in ``model``'s dims
        (a posterior whose labels are in another order is reordered to them).

    Raises
    ------
    InputError
        ``earlier`` is not a posterior with enough draws, lacks a free variable, or has one
        with other dims or other labels (another domain, another law).
    """
    posterior = getattr(earlier, "posterior", earlier)
    if not hasattr(posterior, "data_vars") or not {"chain", "draw"} <= set(posterior.dims):
        raise InputError(
            "warm_start", f"got {type(earlier).__name__}, not a posterior with chains and draws", WARM_START_FIX
        )
    n_draws = int(posterior.sizes["chain"] * posterior.sizes["draw"])
    if n_draws < WARM_START_MIN_DRAWS:
        raise InputError(
            "warm_start",
            f"the earlier posterior has {n_draws} draw(s): a point fit (MAP, paper protocol) cannot start "
            "chains apart from each other",
            "pass a NUTS fit of the same law on the same domains, or warm_start=None",
        )
    picked = np.sort(np.random.default_rng(seed).choice(n_draws, size=min(int(n), n_draws), replace=False))
    arrays = {}
    for rv in model.free_RVs:
        if rv.name not in posterior:
            raise InputError("warm_start", f"the earlier posterior has no {rv.name!r}", WARM_START_FIX)
        var = posterior[rv.name]
        dims = tuple(model.named_vars_to_dims.get(rv.name, ()))
        have = tuple(d for d in var.dims if d not in ("chain", "draw"))
        if set(have) != set(dims):
            raise InputError(
                "warm_start", f"the earlier {rv.name!r} has dims {have}, this model's {dims}", WARM_START_FIX
            )
        for dim in dims:
            mine = [str(v) for v in model.coords[dim]]
            theirs = [str(v) for v in var[dim].to_numpy()]
            if sorted(mine) != sorted(theirs):
                raise InputError(
                    "warm_start", f"the earlier {dim!r} is {theirs}, this model's {mine}", WARM_START_FIX
                )
            if mine != theirs:
                var = var.assign_coords({dim: theirs}).sel({dim: mine})
        flat = var.transpose("chain", "draw", *dims).to_numpy()
        arrays[rv.name] = flat.reshape((n_draws, *flat.shape[2:]))[picked]
    return arrays


def jittered_starts(comp: Compiled, jitter: float, *, seed: int, n: int = WARM_START_POINTS) -> np.ndarray | None:
    """``n`` starting points: the model's initial point plus uniform noise in ``[-jitter, jitter]``.

    The initial point is the prior's centre in the sampler's coordinates (PyMC's support
    point, unjittered). PyMC and nutpie jitter it by up to 1 in every coordinate; where a law
    reads a quotient of its parameters (the mixing law's ``t = slope / k``), most such starts
    can lie where the law overflows (the mixing law at a quickstart's target scale: 62 of 64
    starts had log densities below -1e4, and chains that started there stuck).

    Returns
    -------
    numpy.ndarray or None
        ``(n, comp.n_dim)``; ``None`` when the initial point has no finite log density (the
        caller keeps PyMC's starts).

    Raises
    ------
    InputError
        ``jitter`` is not a finite number >= 0.
    """
    _check_jitter(jitter)
    model = comp.model
    centre = model.initial_point()
    x0 = np.concatenate([np.ravel(centre[model.rvs_to_values[rv].name]) for rv in model.free_RVs]).astype(float)
    if not np.isfinite(comp.logp_dlogp(x0)[0]):
        return None
    rng = np.random.default_rng(seed)
    return x0 + rng.uniform(-float(jitter), float(jitter), size=(int(n), x0.size))


def _check_jitter(jitter: Any) -> None:
    if not is_real_number(jitter) or not np.isfinite(jitter) or jitter < 0:
        raise InputError("start_jitter", f"got {jitter!r}", "give a number >= 0 (e.g. 0.3), or None")


@dataclasses.dataclass(frozen=True, eq=False)
class _StartAt:
    """nutpie's initial-point function: one of ``points`` (``(n, n_dim)``), chosen by the seed.

    nutpie calls it once per chain (from its threads, under the GIL) with a seed of its own.
    """

    points: np.ndarray

    def __call__(self, seed: Any) -> np.ndarray:
        return self.points[np.random.default_rng(int(seed)).integers(len(self.points))].copy()


def default_tune(n_parameters: int, *, warm: bool = False) -> int:
    """NUTS tuning steps per chain for a model of ``n_parameters`` (see :data:`DEFAULT_TUNE`).

    ``warm``: the chains start at an earlier posterior's draws (shorter for low-rank models).
    """
    if n_parameters <= LOW_RANK_MIN_DIM:
        return DEFAULT_TUNE["diagonal"]
    return DEFAULT_TUNE["low_rank_warm" if warm else "low_rank"]


def is_real_number(value: Any) -> bool:
    """A real number that fits a float (Python or numpy), never a bool or text."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def check_nuts_settings(draws: Any, tune: Any, chains: Any, target_accept: Any) -> None:
    """Raise :class:`~bayesmix.errors.InputError` unless the NUTS settings can run.

    ``draws`` and ``chains`` are integers >= 1, ``tune`` an integer >= 0 or ``None`` (the
    default for the model's size, :func:`default_tune`; integral floats are accepted),
    ``target_accept`` a number in [0.5, 1). Shared by every fit that samples with NUTS.
    """
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if name == "tune" and value is None:
            continue
        if not is_real_number(value) or not float(value).is_integer() or value < low:
            raise InputError(name, f"got {value!r}", f"give an integer >= {low}")
    if not is_real_number(target_accept) or not 0.5 <= target_accept < 1:
        raise InputError("target_accept", f"got {target_accept!r}", "give a value in [0.5, 1), e.g. 0.9")


def drop_stuck_chains(idata: _arviz.InferenceData, gap: float = STUCK_LOGP_GAP) -> list[dict[str, float]]:
    """Drop the chains stuck in a mode of negligible posterior mass (in place); return what was dropped.

    A chain whose mean log density lies more than ``gap`` nats below the best chain's sits where
    the posterior has ``exp(-gap)`` times less density on average: a mode the sampler found and
    could not leave, not posterior mass (the joint nested model has one, where per-run effects
    absorb the model-size law: 67 nats below, on the Data Mixing Laws runs). Its draws would widen
    every interval many-fold. Such chains are dropped when at least half of the chains (and at
    least two) remain; the others' r_hat and ESS are then checked as usual. Nothing is dropped
    with fewer than three chains.

    Returns
    -------
    list of dict
        One ``{"chain": index, "logp_gap": nats}`` per dropped chain (empty when none).
    """
    if "sample_stats" not in idata.groups() or "logp" not in idata.sample_stats:
        return []
    means = idata.sample_stats["logp"].mean("draw").to_numpy()
    n = len(means)
    stuck = [int(c) for c in np.flatnonzero(means < means.max() - gap)]
    if n < 3 or not stuck or n - len(stuck) < max(2, (n + 1) // 2):
        return []
    keep = [c for c in range(n) if c not in stuck]
    chain_values = idata.posterior["chain"].to_numpy()
    for group in ("posterior", "sample_stats"):
        dataset = getattr(idata, group)
        _arviz.set_group(idata, group, dataset.isel(chain=keep).assign_coords(chain=chain_values[: len(keep)]))
    found = [{"chain": c, "logp_gap": float(means.max() - means[c])} for c in stuck]
    logger.warning(
        "dropped %d of %d NUTS chains stuck in a minor mode (mean log density %s nats below the best chain)",
        len(stuck), n, ", ".join(f"{f['logp_gap']:.0f}" for f in found),
    )
    return found


def model_data(model: Any) -> tuple[dict, dict, dict, dict]:
    """``(coords, dims, constant_data, observed_data)`` of a PyMC model, as plain arrays."""
    coords = {k: list(v) for k, v in model.coords.items() if v is not None}
    dims = {k: list(v) for k, v in model.named_vars_to_dims.items()}
    constants = {
        v.name: np.asarray(v.get_value()) for v in model.data_vars if not v.name.startswith(INTERNAL_DATA_PREFIXES)
    }
    observed = {}
    for rv in model.observed_RVs:
        value = model.rvs_to_values[rv]
        data = value.get_value() if hasattr(value, "get_value") else getattr(value, "data", value)
        observed[rv.name] = np.asarray(data)
        # a data container that holds the observations is observed data, not a constant
        constants.pop(getattr(value, "name", None), None)
    return coords, dims, constants, observed


def attach_model_data(idata: _arviz.InferenceData, model: Any) -> None:
    """Add ``constant_data`` and ``observed_data`` groups from ``model`` to ``idata`` (in place)."""
    coords, dims, constants, observed = model_data(model)
    groups = {"constant_data": constants, "observed_data": observed}
    _arviz.add_groups(idata, {k: v for k, v in groups.items() if v}, coords=coords, dims=dims)
