"""bayesmix: Bayesian data mixing laws for choosing LLM pretraining mixtures, with uncertainty.

The everyday API::

    import bayesmix as bm
    runs = bm.RunTable.from_wide("runs.csv")          # or from_long / from_joined
    idata = bm.fit(runs)                               # hierarchical M4 mixing law, NUTS (nutpie)
    draws = bm.predict(idata, {"web": 0.6, "code": 0.4})
    bm.interval(draws, prob=0.9)                       # mean, median, lower, upper
    bm.save(idata, "fit.nc"); idata = bm.load("fit.nc")

The public names are listed in ``bayesmix/__init__.pyi``; each is imported on first use, so
``import bayesmix`` and the command line start without loading PyMC.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
