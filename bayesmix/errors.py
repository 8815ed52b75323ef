"""The errors bayesmix raises on purpose.

Every error a user can trigger with bad input is a :class:`BayesmixError`; its message names the
field that is wrong and how to fix it. Catch :class:`BayesmixError` to handle all of them.
"""

from __future__ import annotations


class BayesmixError(Exception):
    """Base class of every documented bayesmix error."""


class InputError(BayesmixError, ValueError):
    """Bad user input: a run table, a mixture, an argument.

    Parameters
    ----------
    field
        The column, argument or file that is wrong.
    problem
        What is wrong with it.
    fix
        What the user should do about it.
    """

    def __init__(self, field: str, problem: str, fix: str):
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}. Fix: {fix}")


class NotEnoughDataError(InputError):
    """Fewer observations than the model has parameters (or than a stage needs)."""


class IncompatibleFileError(BayesmixError):
    """A saved file is corrupt, or was written by another spec or another version."""


class SamplerHealthWarning(UserWarning):
    """The sampler reported divergences, r_hat > 1.01 or a low effective sample size."""


class SamplerHealthError(BayesmixError):
    """Raised instead of :class:`SamplerHealthWarning` when a fit is run with ``strict=True``."""
