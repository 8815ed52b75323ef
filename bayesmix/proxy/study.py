"""A study folder: its settings, prepared data, ledger and checkpoints.

Layout::

    <study>/study.yaml          settings (corpus, tokenizer, ladder, training)
    <study>/ledger.sqlite       the run ledger
    <study>/cache/              tokenizer and tokenized sequences (``tokens-<key>.npz``)
    <study>/checkpoints/<run>.pt

``study.yaml`` holds::

    corpus: {kind: embedded, domains: [legal, code], train_bytes: 2000000, validation_bytes: 200000}
    # or    {kind: local, paths: {legal: ./legal/, code: code.jsonl}, text_field: text}
    tokenizer: {kind: bpe, vocab_size: 4096}      # or {kind: gpt2} or {kind: auto, path: ./tok}
    ladder: cpu                                   # or a YAML path
    max_eval_tokens: 8192
    train: {batch_size: 16, lr: 0.003, ...}       # TrainConfig fields

Relative corpus paths and ``tokenizer.path`` are read from the study folder, not from the current
working directory.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from bayesmix.data.corpus import DOMAINS, Corpus, load_embedded, load_local
from bayesmix.data.files import atomic_path, write_failure
from bayesmix.data.ledger import Ledger
from bayesmix.data.tokenizer import Tokenizer, auto_tokenizer, gpt2_tokenizer, train_bpe
from bayesmix.errors import InputError
from bayesmix.proxy.config import ModelSpec, load_ladder
from bayesmix.proxy.data import TokenizedCorpus, tokenize_corpus
from bayesmix.proxy.plan import RunSpec
from bayesmix.proxy.trainer import TrainConfig

DEFAULT_SETTINGS: dict[str, Any] = {
    "corpus": {"kind": "embedded", "train_bytes": 2_000_000, "validation_bytes": 200_000},
    "tokenizer": {"kind": "bpe", "vocab_size": 4096},
    "ladder": "cpu",
    "max_eval_tokens": 8_192,
    "train": {},
}


@dataclass
class Prepared:
    """What every run of a study shares: tokenized data per sequence length, and ids."""

    data_paths: dict[int, Path]
    corpus_id: str
    tokenizer_id: str
    attributions: tuple[str, ...]


class Study:
    """A study folder (see the module docstring).

    Parameters
    ----------
    folder
        The study folder; it must hold ``study.yaml`` (see :meth:`create`).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / "study.yaml"
        if not path.is_file():
            raise InputError(
                "study", f"{path} does not exist", "create the study first (Study.create or `corpus build`)"
            )
        self.settings = check_settings(_read_yaml(path), str(path))
        self.train_config = TrainConfig(**self.settings["train"])
        try:
            self.ladder: dict[str, ModelSpec] = load_ladder(self.settings["ladder"])
        except InputError as err:
            raise InputError(f"{path}: ladder ({err.field})", err.problem, err.fix) from None

    @classmethod
    def create(
        cls, folder: str | Path, settings: dict[str, Any] | None = None, overwrite: bool = False
    ) -> Study:
        """Write ``study.yaml`` (defaults merged with ``settings``) and return the study.

        Raises
        ------
        InputError
            Settings of the wrong shape or type (nothing is written then), a folder that is a
            file, or a ``study.yaml`` there with other settings.
        """
        folder = Path(folder)
        path = folder / "study.yaml"
        if folder.exists() and not folder.is_dir():
            raise InputError("study", f"{folder} is a file", "give a folder for the study")
        merged = check_settings(settings, "settings")
        load_ladder(merged["ladder"])
        if path.exists() and not overwrite:
            old = merge_settings(DEFAULT_SETTINGS, _read_yaml(path) or {})
            if old != merged:
                raise InputError(
                    "study",
                    f"{path} exists with other settings",
                    "use another folder, or pass overwrite=True (its ledger stays)",
                )
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(path) as temporary:  # a rewritten study.yaml is never left half-written
                temporary.write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
        except OSError as exc:
            raise write_failure(exc, path, "the study settings") from None
        return cls(folder)

    @property
    def ledger(self) -> Ledger:
        """The study's ledger."""
        return Ledger(self.folder / "ledger.sqlite")

    @property
    def cache_dir(self) -> Path:
        """The study's cache folder."""
        return self.folder / "cache"

    def checkpoint_path(self, run_id: str) -> Path:
        """Checkpoint file of a run."""
        return self.folder / "checkpoints" / f"{run_id}.pt"

    @property
    def domains(self) -> list[str]:
        """Domains of the study's corpus, from the settings (without loading the corpus)."""
        corpus = self.settings["corpus"]
        if corpus.get("kind", "embedded") == "local":
            return [str(d) for d in corpus["paths"]]
        return [str(d) for d in (corpus.get("domains") or DOMAINS)]

    @property
    def validation_domains(self) -> list[str]:
        """Validation sets of the study: the training domains, or an external corpus's ``validation`` list."""
        corpus = self.settings["corpus"]
        if corpus.get("kind") == "external" and corpus.get("validation"):
            return [str(d) for d in corpus["validation"]]
        return self.domains

    def check_runs(self, runs: Sequence[RunSpec]) -> None:
        """Refuse planned runs this study cannot train, before any data is prepared.

        Raises
        ------
        InputError
            A run names a model that is not in the ladder, or a domain the corpus lacks.
        """
        domains = set(self.domains)
        for run in runs:
            self.model(run.model)
            unknown = sorted(set(run.mixture) - domains)
            if unknown:
                raise InputError(
                    f"run {run.id} mixture",
                    f"names domains {unknown} that the study's corpus lacks",
                    f"use domains among {self.domains}",
                )

    def model(self, name: str) -> ModelSpec:
        """Return a ladder entry by name."""
        if name not in self.ladder:
            raise InputError("model", f"{name!r} is not in the ladder", f"choose from {list(self.ladder)}")
        return self.ladder[name]

    def load_corpus(self) -> Corpus:
        """Load the corpus the settings describe."""
        spec = dict(self.settings["corpus"])
        kind = spec.pop("kind", "embedded")
        if kind == "embedded":
            return load_embedded(**spec)
        if kind == "local":
            paths = {
                d: (self.folder / p if not Path(p).is_absolute() else Path(p))
                for d, p in spec.pop("paths").items()
            }
            return load_local(paths, **spec)
        if kind == "external":
            return external_corpus(**spec)
        raise InputError("corpus.kind", f"is {kind!r}", "use embedded or local (or build a Corpus in Python)")

    def load_tokenizer(self, corpus: Corpus) -> Tokenizer:
        """Build or load the tokenizer the settings describe."""
        spec = dict(self.settings["tokenizer"])
        kind = spec.get("kind", "bpe")
        if kind == "bpe":
            return train_bpe(
                corpus.train_texts(),
                corpus.fingerprint(),
                int(spec.get("vocab_size", 4096)),
                cache_dir=self.cache_dir,
            )
        if kind == "gpt2":
            return gpt2_tokenizer()
        if kind == "auto":
            return self._auto_tokenizer(str(spec["path"]))
        raise InputError("tokenizer.kind", f"is {kind!r}", "use bpe, gpt2 or auto")

    def _auto_tokenizer(self, raw: str) -> Tokenizer:
        """Load ``tokenizer: {kind: auto, path: ...}``, a relative path read from the study folder.

        Parameters
        ----------
        raw
            The path as written in ``study.yaml``; relative paths resolve against the study
            folder, like the corpus paths, whatever the current working directory.

        Returns
        -------
        Tokenizer
            Named by ``raw`` (so run records do not change when the study folder moves).

        Raises
        ------
        InputError
            Naming ``tokenizer.path`` and the resolved folder when it is missing or holds no
            tokenizer that ``transformers`` can load.
        """
        yaml_path = self.folder / "study.yaml"
        field = f"{yaml_path}: tokenizer.path"
        given = Path(raw)
        folder = (given if given.is_absolute() else self.folder / given).absolute()
        relative = (
            ""
            if given.is_absolute()
            else f" (relative paths are read from the study folder {self.folder.absolute()})"
        )
        if not folder.is_dir():
            raise InputError(
                field,
                f"{raw!r} resolves to {folder}, which is not a folder{relative}",
                f"save the tokenizer there with save_pretrained, or set tokenizer.path in {yaml_path} "
                "to its folder (absolute, or relative to the study folder)",
            )
        try:
            tok = auto_tokenizer(folder)
        except InputError as err:
            raise InputError(field, err.problem, err.fix) from None
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                field,
                f"{folder} holds no tokenizer that transformers can load ({type(exc).__name__}: {first})",
                "save a tokenizer there with save_pretrained (tokenizer.json or vocab/merges files), "
                "or point tokenizer.path at such a folder",
            ) from None
        tok.name = str(given)
        return tok

    def prepare(self, seq_lens: list[int] | None = None) -> Prepared:
        """Load the corpus, build the tokenizer and tokenize for every sequence length needed."""
        corpus = self.load_corpus()
        tok = self.load_tokenizer(corpus)
        lens = sorted(set(seq_lens or [m.seq_len for m in self.ladder.values()]))
        paths = {}
        for n in lens:
            data = tokenize_corpus(
                corpus, tok, n, int(self.settings["max_eval_tokens"]), cache_dir=self.cache_dir
            )
            paths[n] = self.cache_dir / f"tokens-{data.key}.npz"
        return Prepared(
            paths, corpus.fingerprint(), f"{tok.name}:{tok.fingerprint[:16]}", corpus.attributions
        )

    def data(self, prepared: Prepared, seq_len: int) -> TokenizedCorpus:
        """Load the tokenized data of one sequence length."""
        return TokenizedCorpus.load(prepared.data_paths[seq_len])


def _read_yaml(path: Path) -> Any:
    """Parse a YAML file; unreadable or invalid files raise :class:`InputError` naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), f"cannot be read ({exc.strerror})", "give a readable YAML file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(
            str(path),
            f"is not valid YAML ({type(exc).__name__})",
            "fix the file's syntax (see the Study docs)",
        ) from None


def _count(value: Any, low: int = 1) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


#: corpus settings and the loader each kind goes to (the loader's keyword arguments are its settings)
def external_corpus(domains: Sequence[str], validation: Sequence[str] | None = None) -> Corpus:
    """The corpus of a project whose runs were trained elsewhere: domain names and no text.

    Parameters
    ----------
    domains
        Training domains (the runs' mixture columns).
    validation
        Validation sets (the runs' loss domains; any names, e.g. downstream sets); default the
        training domains.

    Raises
    ------
    InputError
        Always: such a project has no text, so nothing can be trained or tokenized on it.
    """
    raise InputError(
        "corpus.kind",
        f"is external (domains {list(domains)}): this project studies runs trained elsewhere and has no text",
        "import its runs with `bayesmix runs import`; to train proxies, create a project on an embedded "
        "or local corpus (`bayesmix quickstart`, `bayesmix corpus import`)",
    )


_CORPUS_LOADERS = {"embedded": load_embedded, "local": load_local, "external": external_corpus}
_TOKENIZER_KINDS = ("bpe", "gpt2", "auto")


def check_settings(settings: Any, where: str = "study.yaml") -> dict[str, Any]:
    """Merge ``settings`` over :data:`DEFAULT_SETTINGS` and check every known key's shape and type.

    Parameters
    ----------
    settings
        The parsed ``study.yaml`` (a mapping, or None for the defaults). Keys other than the
        study's own (``corpus``, ``tokenizer``, ``ladder``, ``max_eval_tokens``, ``train``) are
        kept unchecked for the layers that own them (e.g. ``project``).
    where
        Named in errors (the file).

    Returns
    -------
    dict
        The merged settings.

    Raises
    ------
    InputError
        Naming the key (``<where>: train.lr``) and the fix.
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise InputError(where, f"is a {type(settings).__name__}, not a mapping", "write key: value settings")
    for key in ("corpus", "tokenizer", "train"):
        if key in settings and not isinstance(settings[key], dict):
            raise InputError(
                f"{where}: {key}", f"is {settings[key]!r}, not a mapping", f"write {key}: {{...}}"
            )
    merged = merge_settings(DEFAULT_SETTINGS, settings)
    corpus = merged["corpus"]
    kind = corpus.get("kind", "embedded")
    if kind not in _CORPUS_LOADERS:
        raise InputError(f"{where}: corpus.kind", f"is {kind!r}", f"use one of {list(_CORPUS_LOADERS)}")
    allowed = ["kind", *inspect.signature(_CORPUS_LOADERS[kind]).parameters]
    unknown = sorted(str(k) for k in corpus if k not in allowed)
    if unknown:
        raise InputError(f"{where}: corpus", f"has unknown keys {unknown} for kind {kind}", f"use {allowed}")
    if kind == "external":
        for key in ("domains", "validation"):
            names = corpus.get(key)
            if (key == "domains" or names is not None) and (
                not isinstance(names, list) or not names or not all(isinstance(d, str) and d for d in names)
            ):
                raise InputError(
                    f"{where}: corpus.{key}", f"is {names!r}", f"write {key}: [name, ...] (the runs' domains)"
                )
    if kind == "local":
        paths = corpus.get("paths")
        if not isinstance(paths, dict) or not paths:
            raise InputError(
                f"{where}: corpus.paths", f"is {paths!r}", "write paths: {domain: folder or file}"
            )
    if (
        "domains" in corpus
        and corpus["domains"] is not None
        and (
            not isinstance(corpus["domains"], list) or not all(isinstance(d, str) for d in corpus["domains"])
        )
    ):
        raise InputError(
            f"{where}: corpus.domains", f"is {corpus['domains']!r}", "write a list of domain names"
        )
    for key in ("train_bytes", "validation_bytes"):
        value = corpus.get(key)
        per_domain = isinstance(value, dict) and value and all(isinstance(d, str) and _count(v) for d, v in value.items())
        if value is not None and not _count(value) and not per_domain:
            raise InputError(
                f"{where}: corpus.{key}",
                f"is {value!r}",
                "give a positive integer, {domain: positive integer, ...} for every domain, or null",
            )
    fraction = corpus.get("val_fraction", 0.1)
    if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool) or not 0 < fraction < 1:
        raise InputError(f"{where}: corpus.val_fraction", f"is {fraction!r}", "give a fraction in (0, 1)")
    tokenizer = merged["tokenizer"]
    tok_kind = tokenizer.get("kind", "bpe")
    if tok_kind not in _TOKENIZER_KINDS:
        raise InputError(f"{where}: tokenizer.kind", f"is {tok_kind!r}", f"use one of {_TOKENIZER_KINDS}")
    if tok_kind == "bpe" and not _count(tokenizer.get("vocab_size", 4096), 300):
        raise InputError(
            f"{where}: tokenizer.vocab_size",
            f"is {tokenizer['vocab_size']!r}",
            "give an integer from 300 to 65536",
        )
    if tok_kind == "auto" and not isinstance(tokenizer.get("path"), str):
        raise InputError(
            f"{where}: tokenizer.path", f"is {tokenizer.get('path')!r}", "give the tokenizer's folder"
        )
    if not isinstance(merged["ladder"], str) or not merged["ladder"].strip():
        raise InputError(
            f"{where}: ladder", f"is {merged['ladder']!r}", "give 'cpu', 'gpu' or a ladder YAML path"
        )
    if not _count(merged["max_eval_tokens"]):
        raise InputError(
            f"{where}: max_eval_tokens",
            f"is {merged['max_eval_tokens']!r}",
            "give a positive integer, e.g. 8192",
        )
    known = [f.name for f in fields(TrainConfig)]
    unknown = sorted(str(k) for k in merged["train"] if k not in known)
    if unknown:
        raise InputError(f"{where}: train", f"has unknown keys {unknown}", f"use {known}")
    try:
        TrainConfig(**merged["train"])
    except InputError as err:
        raise InputError(f"{where}: train.{err.field}", err.problem, err.fix) from None
    return merged


def merge_settings(
    base: dict[str, Any], extra: dict[str, Any], replaced: tuple[str, ...] = ("corpus",)
) -> dict[str, Any]:
    """Settings ``extra`` over ``base`` (deep copies).

    Nested dicts merge key by key, except those under a key in ``replaced``, which ``extra``
    replaces whole (a corpus, a target scale).
    """
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in replaced:
            out[key] = merge_settings(out[key], value, replaced)
        else:
            out[key] = copy.deepcopy(value)
    return out
