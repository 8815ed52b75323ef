"""The law abstraction: a pure function of the mixture plus its default (data-scaled) priors.

A law is written once and evaluated two ways:

* with ``xp=numpy`` on posterior draws, where every parameter carries extra *leading* axes
  (for example ``(sample, domain, train_domain)``) that broadcast, and
* with ``xp=pytensor.tensor`` inside a PyMC model, where parameters have only their core dims.

So a law function may use only operations that both namespaces share and that act on the
trailing axes: ``exp``, ``log``, ``where``, ``matmul``, ``expand_dims``, ``swapaxes``, ``sum``.

To add a law, subclass :class:`Law`, implement :meth:`Law.evaluate` and :meth:`Law.build_priors`,
and decorate it with :func:`register_law`; the model builder, the samplers, ``predict`` and
``save``/``load`` then work with it unchanged.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from bayesmix.errors import InputError


@dataclass(frozen=True)
class ParameterSpec:
    """A law parameter and the names of its core dims (e.g. ``("domain", "train_domain")``)."""

    name: str
    dims: tuple[str, ...]


@dataclass(frozen=True)
class DataSummary:
    """What a law's default priors may know about the data: used to scale them.

    Attributes
    ----------
    domains, train_domains
        Names of the validation domains (model outputs) and of the training domains (inputs).
    loss_min, loss_mean, loss_sd
        Per validation domain, over the runs.
    mixture_mean
        Mean training mixture over the runs; laws use it as the reference point.
    self_index
        For each validation domain, the position of the training domain of the same name, or -1.
    n_runs
        Number of runs.
    """

    domains: tuple[str, ...]
    train_domains: tuple[str, ...]
    loss_min: np.ndarray
    loss_mean: np.ndarray
    loss_sd: np.ndarray
    mixture_mean: np.ndarray
    self_index: np.ndarray
    n_runs: int

    @classmethod
    def from_arrays(
        cls,
        mixtures: np.ndarray,
        losses: np.ndarray,
        domains: tuple[str, ...],
        train_domains: tuple[str, ...],
    ) -> DataSummary:
        """Summarise a mixture matrix ``(run, train_domain)`` and a loss matrix ``(run, domain)``."""
        position = {name: j for j, name in enumerate(train_domains)}
        sd = losses.std(axis=0)
        mean = losses.mean(axis=0)
        return cls(
            domains=tuple(domains),
            train_domains=tuple(train_domains),
            loss_min=losses.min(axis=0),
            loss_mean=mean,
            # a floor keeps priors proper when a domain barely varies across runs
            loss_sd=np.maximum(sd, 1e-3 * np.abs(mean) + 1e-6),
            mixture_mean=mixtures.mean(axis=0),
            self_index=np.array([position.get(d, -1) for d in domains], dtype=int),
            n_runs=int(losses.shape[0]),
        )


class Law(ABC):
    """Base class of every law (mixing laws now; scaling laws share the pattern).

    Subclasses set :attr:`name` (the registry key) and :attr:`parameters`, take their options as
    keyword arguments in ``__init__`` and return them from :meth:`options` so that a law can be
    rebuilt from a saved spec.
    """

    name: ClassVar[str]
    parameters: ClassVar[tuple[ParameterSpec, ...]]
    #: constant inputs the law reads besides the parameters (stored as ``constant_data``)
    constants: ClassVar[tuple[ParameterSpec, ...]] = ()
    #: ``True`` when :meth:`build_priors` only does tensor arithmetic on ``loss_mean`` and
    #: ``loss_sd``: the model builder then passes them as ``pm.Data`` tensors, and a refit on other
    #: runs of the same structure reuses the compiled model. ``False`` (the default, safe for any
    #: law) passes numpy arrays, which are compiled in as constants.
    symbolic_data: ClassVar[bool] = False
    #: positive hyperparameters (a hierarchy's spreads, log-transformed for the sampler) that the
    #: Laplace approximation holds at the mode: their posterior is far from Gaussian
    spread_parameters: ClassVar[tuple[str, ...]] = ()
    #: per-run inputs the law reads besides the mixture, by the name of the run table's column
    #: (e.g. ``("tokens",)``): the model builder passes each as ``pm.Data`` of dims ``("run",)``
    #: (stored in ``constant_data``), and :meth:`evaluate` receives it as a 1-D array over the
    #: rows of ``mixtures`` (or of length 1 for all rows); ``predict`` takes new values by keyword
    #: and ``optimise`` gets them from :meth:`plan_inputs`
    run_inputs: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def options(self) -> dict[str, Any]:
        """JSON-serialisable keyword arguments that rebuild this law."""

    @abstractmethod
    def evaluate(self, params: Mapping[str, Any], mixtures: Any, xp: Any = np) -> Any:
        """Predicted loss, shape ``(..., mixture, domain)``, for mixtures ``(mixture, train_domain)``.

        Parameters
        ----------
        params
            Parameter and constant values by name; numpy arrays may carry extra leading axes.
        mixtures
            Matrix of training mixtures, rows on the simplex.
        xp
            ``numpy`` or ``pytensor.tensor``.
        """

    @abstractmethod
    def build_priors(self, data: DataSummary) -> dict[str, Any]:
        """Create the PyMC variables of the parameters (inside a model context) and return them.

        Must register every name of :attr:`parameters` as a model variable with those dims, and
        return a mapping of parameter and constant names to tensors for :meth:`evaluate`.
        """

    @abstractmethod
    def n_parameters(self, n_domains: int, n_train_domains: int) -> int:
        """Number of identifiable parameters that each validation domain's curve needs."""

    def laplace_form(self) -> Law:
        """The same law and prior in a parameterisation whose joint density has a proper mode.

        The Laplace approximation (``fit(method="laplace")``) fits this form. A centred
        hierarchy (deviations ~ Normal(centre, spread)) has an unbounded density as the spread
        goes to 0, so a law with one returns its non-centred form; the default is the law itself.
        """
        return self

    def derived_inputs(self, mixtures: np.ndarray, constants: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Data-only inputs computed once per fit instead of at every evaluation (default none).

        The model builder passes them to :meth:`evaluate` as ``pm.Data`` under these names (which
        must start with ``derived_``); they describe the *fitted* runs, so they are not stored
        with the fit, and :meth:`evaluate` must compute the same values itself when they are
        absent (predictions at new mixtures).

        Parameters
        ----------
        mixtures
            The runs' mixtures ``(run, train_domain)``.
        constants
            The law's constant values (:meth:`constant_values`).
        """
        return {}

    def plan_inputs(
        self,
        train_domains: Sequence[str],
        *,
        tokens: Mapping[str, float] | None = None,
        target_tokens: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Values of :attr:`run_inputs` (and of constants that differ) for one planned run.

        The optimiser calls it with its ``tokens`` (unique tokens per training domain) and
        ``target_tokens`` (the planned run's tokens); the default (laws without run inputs) is none.
        """
        return {}

    def extra_coords(self) -> dict[str, list[Any]]:
        """Coordinates of dims that the law adds (e.g. latent ``component``)."""
        return {}

    def constant_values(self, data: DataSummary) -> dict[str, np.ndarray]:
        """Values of :attr:`constants` for this data (the reference mixture, a fixed exponent...)."""
        return {}

    def spec(self) -> dict[str, Any]:
        """Name and options: enough to rebuild the law with :func:`law_from_spec`."""
        return {"name": self.name, "options": self.options()}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Law) and json.dumps(self.spec(), sort_keys=True) == json.dumps(
            other.spec(), sort_keys=True
        )

    def __hash__(self) -> int:
        return hash(json.dumps(self.spec(), sort_keys=True))


_REGISTRY: dict[str, type[Law]] = {}


def register_law(cls: type[Law]) -> type[Law]:
    """Class decorator: make a law known to ``predict`` and ``load`` by its :attr:`Law.name`."""
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__name__} needs a class attribute `name` to be registered")
    _REGISTRY[cls.name] = cls
    return cls


def available_laws() -> list[str]:
    """Names of the registered laws."""
    return sorted(_REGISTRY)


def get_law(name: str, **options: Any) -> Law:
    """Instantiate a registered law by name.

    Raises
    ------
    InputError
        If no law of that name is registered.
    """
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise InputError(
            "law", f"unknown law {name!r}", f"use one of {available_laws()} or register your own"
        ) from None
    return cls(**options)


def law_from_spec(spec: Mapping[str, Any]) -> Law:
    """Rebuild a law from :meth:`Law.spec`."""
    return get_law(spec["name"], **dict(spec.get("options", {})))
