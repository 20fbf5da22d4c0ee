"""Dataset loaders: each real format becomes one :class:`~radcore.corpus.Corpus`.

>>> corpus = load_corpus("mimic-cxr", "~/physionet.org", uncertain="positive")  # doctest: +SKIP

Real-data mode is decided by the data, not by a flag that could be forgotten: a corpus is ``"synthetic"``
only when its directory holds the generator's ``SYNTHETIC.json`` marker, and ``"real"`` otherwise.
:func:`load_corpus` stamps that on ``Corpus.source``; runs record it in ``results.json`` (``data.source``),
and report text is only ever shown for synthetic corpora.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from radcore.corpus import Corpus
from radcore.data.ct_rate import CtRateOptions, load_ct_rate
from radcore.data.mimic_cxr import MimicOptions, load_mimic_cxr
from radcore.data.openi import OpeniOptions, load_openi

LOADERS = {"mimic-cxr": (MimicOptions, load_mimic_cxr), "ct-rate": (CtRateOptions, load_ct_rate),
           "openi": (OpeniOptions, load_openi)}
log = logging.getLogger(__name__)

__all__ = ["CtRateOptions", "LOADERS", "MimicOptions", "OpeniOptions", "load_corpus", "load_ct_rate",
           "load_mimic_cxr", "load_openi", "options_for"]


def options_for(dataset: str, **options):
    """The options dataclass of ``dataset`` built from keyword ``options`` (unknown names raise ``ValueError``)."""
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(LOADERS)}")
    cls = LOADERS[dataset][0]
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {dataset}; {cls.__name__} accepts {known}")
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    return cls(**{name: _coerce(value, defaults[name]) for name, value in options.items()})


def _coerce(value, default):
    """Command-line strings take the type of the option's default (``"0.2"`` -> ``0.2``)."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    kind = type(default)
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"option value {value!r} is not a valid {kind.__name__}") from None


def load_corpus(dataset: str, data_dir: str | Path, **options) -> Corpus:
    """Load ``dataset`` ('mimic-cxr', 'ct-rate' or 'openi') from ``data_dir``; ``options`` set fields of its options class."""
    from radcore.data.synth import data_source

    chosen = options_for(dataset, **options)
    path = Path(data_dir).expanduser()
    corpus = LOADERS[dataset][1](path, chosen)
    source = data_source(path)
    log.info("%s: %s data (%s), %d reports", dataset, source,
             "SYNTHETIC.json present" if source == "synthetic" else "no SYNTHETIC.json", len(corpus))
    return dataclasses.replace(corpus, source=source)
