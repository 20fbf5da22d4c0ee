"""Seeded synthetic corpora written in the *real* MIMIC-CXR and CT-RATE file layouts.

``write_corpus("mimic-cxr", n=5000, seed=0, out="data/synthetic/mimic")`` writes report files, label and
split tables exactly where and how the real datasets ship them, so the real loaders read them end to end.

How a report is made (tables in :mod:`radcore.data.synth_findings`):

1. A latent clinical context per report (MIMIC-CXR: normal, heart failure, infection, ICU lines and tubes,
   trauma, ...; CT-RATE: normal, smoker-COPD, infection, ...), persistent within a patient most of the
   time, sets per-label chances, so findings co-occur realistically (cardiomegaly + edema + effusion).
   Chances are scaled per label so the marginal prevalence meets a target near the real datasets'.
2. Each label gets a mention state: present, hedged, negated or not mentioned.
3. Each state becomes a sentence from several phrasings (synonyms, severity, laterality, comparison
   with a prior study); some sentences mention several labels ("No pleural effusion or pneumothorax.").
   Filler sentences carry no label. Negated and hedged mentions use the same words as positive ones,
   so spotting a keyword is not enough to label a report.
4. Labels follow the text: MIMIC-CXR present 1.0, hedged -1.0, negated 0.0, unmentioned blank, and
   ``No Finding`` 1.0 exactly when nothing but support devices is present or hedged; CT-RATE present 1,
   hedged 1 half the time, otherwise 0. Then labeller noise: about 3% of the mentioned (non-blank)
   cells are changed. MIMIC-CXR's NegBio table copies the CheXpert one with about 2% of cells changed.
   As with the real labellers, the indication ("evaluate for pneumonia") is a question, not a finding:
   only the findings and impression sentences carry labels.

Splits are by patient: MIMIC-CXR about 80/10/10 train/validate/test here (the real split is about
98/1/1 by patient); CT-RATE about 85/15 train/valid patients (its ``valid`` set is the test set).
Only ``numpy.random.default_rng(seed)`` draws, so files are byte-identical for one (dataset, n, seed)
(gzip headers carry no time stamp). A corpus is built in a hidden sibling folder
(``.NAME.HOST-PID.partial``), flushed to disk and renamed into place at the end, so ``out`` is the whole
corpus or absent, even after a crash (:func:`radcore.outputs.staged_folder`); ``SYNTHETIC.json`` marks it. A
staging folder left by a writer that was killed is removed by the next write on the same host.
:func:`corpus_files` returns the same files in memory.

MIMIC-CXR reports are laid out like the real ``.txt`` files (centred title, one-space-indented upper-case
headers, 78-column wrap, ``___`` for de-identified spans): about 80% have FINDINGS and IMPRESSION, 10%
IMPRESSION only, 5% no section header (the loader's last-paragraph fallback) and 5% a combined
"FINDINGS AND IMPRESSION:" header. Each study has 1-3 images (rows of the split table); patients 1-4 studies.
CT-RATE findings are one paragraph ordered by anatomy; a missing section is the literal ``Not given.``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import string
from pathlib import Path

import numpy as np

from radcore.data import synth_findings as T
from radcore.data.synth_findings import ABSENT, LABEL_NOISE, NEG, POS, UNC
from radcore.labels import CT_RATE_LABELS, MIMIC_CXR_LABELS, labels_for
from radcore.outputs import check_folder_target, refuse_nonempty, staged_folder

GENERATOR_VERSION = "1"
MARKER = "SYNTHETIC.json"
MAX_N = 1_000_000
NEGBIO_CHANGES = 0.02
MIMIC_SPLIT_SHARES = {"train": 0.8, "validate": 0.1, "test": 0.1}
CT_VALID_SHARE = 0.15
_TITLE = " " * 33 + "FINAL REPORT"


# ============================================================================================ public

def write_corpus(dataset: str, *, n: int, seed: int, out: str | Path) -> Path:
    """Write ``n`` synthetic reports of ``dataset`` ('mimic-cxr' or 'ct-rate') into ``out`` in the real layout.

    For CT-RATE ``n`` counts scans (unique reports); each scan has 1-3 reconstruction rows. ``out`` must
    not exist or be empty; nothing is left behind if writing fails. Returns ``out``.
    """
    _check_args(dataset, n, seed)
    out = check_folder_target(out)
    refuse_nonempty(out)
    with staged_folder(out) as tmp:
        _produce(dataset, n, seed, _DiskSink(tmp))
    return out


def corpus_files(dataset: str, *, n: int, seed: int) -> dict[str, bytes]:
    """The files :func:`write_corpus` writes, in memory: relative POSIX path -> bytes (for tests and previews)."""
    _check_args(dataset, n, seed)
    files: dict[str, bytes] = {}
    _produce(dataset, n, seed, files.__setitem__)
    return files


def is_synthetic(path: str | Path) -> bool:
    """Whether ``path`` holds a corpus written by this generator (it has the marker file)."""
    return (Path(path) / MARKER).is_file()


def data_source(path: str | Path) -> str:
    """``"synthetic"`` for a corpus this generator wrote (it has ``SYNTHETIC.json``), else ``"real"``.

    Real is the default: a directory is treated as patient data unless it proves otherwise.
    """
    return "synthetic" if is_synthetic(path) else "real"


# ============================================================================================ checks & files

def _check_args(dataset: str, n, seed) -> None:
    labels_for(dataset)
    if dataset not in ("mimic-cxr", "ct-rate"):
        raise ValueError(f"no synthetic generator for {dataset!r}: its reports are public "
                         f"(`radcore data {dataset} --out DIR`)")
    _check_int("n", n, 1, MAX_N)
    _check_int("seed", seed, 0, 2**63 - 1)


def _produce(dataset: str, n: int, seed: int, sink) -> None:
    """Generate every file of the corpus and hand each to ``sink(relative_path, data)``."""
    writer = {"mimic-cxr": _write_mimic, "ct-rate": _write_ct}[dataset]
    writer(np.random.default_rng(seed), n, sink)
    sink(MARKER, _marker(dataset, n, seed))


def _check_int(name: str, value, low: int, high: int) -> None:
    """Raise ValueError unless ``value`` is an int in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low:,} to {high:,}, got {value!r}")


class _DiskSink:
    """Writes each file under ``root``, creating folders as needed and never overwriting."""

    def __init__(self, root: Path):
        self._root, self._made = os.fspath(root), set()

    def __call__(self, rel: str, data: bytes) -> None:
        path = os.path.join(self._root, *rel.split("/"))
        folder = os.path.dirname(path)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def _marker(dataset: str, n: int, seed: int) -> bytes:
    """``SYNTHETIC.json``: tells tools this corpus is invented, and how to make it again."""
    info = {"synthetic": True, "dataset": dataset, "n": int(n), "seed": int(seed),
            "generator": "radcore.data.synth", "version": GENERATOR_VERSION,
            "note": "Invented reports in the real file layout; no patient data."}
    return (json.dumps(info, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _csv_text(header, rows) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _write_csv(sink, rel: str, header, rows) -> None:
    """Hand a CSV to ``sink`` (gzipped with a fixed header when the name ends in .gz: reproducible bytes)."""
    data = _csv_text(header, rows).encode("utf-8")
    sink(rel, gzip.compress(data, compresslevel=6, mtime=0) if rel.endswith(".gz") else data)


# ============================================================================================ randomness

class _Dice:
    """Fast scalar draws from a numpy Generator (consumed in blocks; deterministic for the seed)."""

    def __init__(self, rng: np.random.Generator):
        self._rng, self._it = rng, iter(())

    def u(self) -> float:
        try:
            return next(self._it)
        except StopIteration:
            self._it = iter(self._rng.random(1 << 16).tolist())
            return next(self._it)

    def pick(self, seq):
        return seq[int(self.u() * len(seq))]

    def shuffle(self, items: list) -> list:
        for i in range(len(items) - 1, 0, -1):
            j = int(self.u() * (i + 1))
            items[i], items[j] = items[j], items[i]
        return items


_FIELDS: dict[str, tuple[str, ...]] = {}


def _fields(template: str) -> tuple[str, ...]:
    """Names of the ``{slot}`` fields of a template (cached)."""
    fields = _FIELDS.get(template)
    if fields is None:
        fields = _FIELDS[template] = tuple(f for _, f, _, _ in string.Formatter().parse(template) if f)
    return fields


def _fill(template: str, slots: dict, dice: _Dice, memo: dict | None = None) -> str:
    """Fill the template's ``{slot}`` fields at random and capitalise the first letter.

    ``memo`` keeps the values chosen for one finding, so its impression repeats its side and lobe.
    """
    fields = _fields(template)
    if fields:
        memo = {} if memo is None else memo
        for f in fields:
            if f not in memo:
                memo[f] = dice.pick(slots[f])
        template = template.format(**{f: memo[f] for f in fields})
    return template[0].upper() + template[1:]


def _scale(priors: np.ndarray, risk: np.ndarray, target: float, caps: np.ndarray) -> np.ndarray:
    """Per-context chances ``min(cap, s * risk)`` whose prior-weighted mean is ``target`` (bisection on s)."""
    lo, hi = 0.0, 1.0
    while (priors * np.minimum(caps, hi * risk)).sum() < target and hi < 1e6:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (priors * np.minimum(caps, mid * risk)).sum() < target else (lo, mid)
    return np.minimum(caps, hi * risk)


def _chances(contexts: dict, targets: dict, labels: tuple[str, ...]):
    """Arrays (contexts x labels) of present, hedged and negated-mention chances, and the priors."""
    ctxs = list(contexts.values())
    priors = np.array([c.prior for c in ctxs])
    priors = priors / priors.sum()
    pos = np.zeros((len(ctxs), len(labels)))
    unc, neg = np.zeros_like(pos), np.zeros_like(pos)
    for j, label in enumerate(labels):
        if label not in targets:
            continue
        t = targets[label]
        risk = np.array([c.risk.get(label, 1.0) for c in ctxs])
        pos[:, j] = _scale(priors, risk, t.pos, np.full(len(ctxs), 0.95))
        unc[:, j] = _scale(priors, risk, t.unc, 0.97 - pos[:, j])
        neg[:, j] = np.minimum(0.95, t.neg * np.array([c.negation for c in ctxs]))
    return priors, pos, unc, neg


def _states(rng: np.random.Generator, ctx: np.ndarray, chances, labels, no_negation_with) -> np.ndarray:
    """Mention state per (report, label): POS, UNC, NEG or ABSENT, drawn from the report's context.

    ``no_negation_with[a] = (b, ...)``: a negated ``a`` becomes unmentioned where a ``b`` is present or hedged.
    """
    _, pos, unc, neg = chances
    p, q, r = pos[ctx], unc[ctx], neg[ctx]
    u, v = rng.random(p.shape), rng.random(p.shape)
    states = np.full(p.shape, ABSENT, dtype=np.int8)
    states[v < r] = NEG
    states[u < p + q] = UNC
    states[u < p] = POS
    for label, blockers in no_negation_with.items():
        found = np.isin(states[:, [_index(labels, b) for b in blockers]], (POS, UNC)).any(axis=1)
        j = _index(labels, label)
        states[found & (states[:, j] == NEG), j] = ABSENT
    return states


def _contexts(rng, priors: np.ndarray, owner: np.ndarray, n_owners: int, keep: float) -> np.ndarray:
    """A context per report: its patient's usual one with chance ``keep``, otherwise a fresh draw."""
    base = rng.choice(len(priors), size=n_owners, p=priors)
    fresh = rng.choice(len(priors), size=len(owner), p=priors)
    return np.where(rng.random(len(owner)) < keep, base[owner], fresh)


def _per_patient(rng, n: int, sizes, probs) -> np.ndarray:
    """Patient index of each of ``n`` items, patients having ``sizes`` items with ``probs``."""
    counts = rng.choice(sizes, size=n, p=probs)
    owner = np.repeat(np.arange(n), counts)[:n]
    return owner


# ============================================================================================ sentences

def _mentions(states, labels, findings, combos, slots, dice: _Dice, follow_up: bool,
              memo: dict) -> list[tuple[str, str]]:
    """(label, sentence) for every mentioned label; several labels may share one combined sentence.

    ``memo`` (filled here) maps each label to the slot values its sentence used.
    """
    done, out = set(), []
    for combo, columns, wanted in _combo_keys(labels, combos):
        if tuple(map(states.__getitem__, columns)) == wanted and \
                not done.intersection(lab for lab, _ in combo.states) and dice.u() < combo.p:
            shared: dict = {}
            for lab, _ in combo.states:
                done.add(lab)
                memo[lab] = shared
            out.append((combo.states[0][0], _fill(dice.pick(combo.phrases), slots, dice, shared)))
    for label, state in zip(labels, states):
        if state == ABSENT or label in done or label not in findings:
            continue
        f = findings[label]
        if state == POS:
            phrases = f.pos
        elif state == UNC:
            phrases = f.unc
        else:
            phrases = f.resolved if follow_up and f.resolved and dice.u() < 0.08 else f.neg
        sentence, _, impression = dice.pick(phrases).partition("|")
        slot_values = memo.setdefault(label, {})
        out.append((label, _fill(sentence, slots, dice, slot_values)))
        if impression:
            slot_values["_imp"] = _fill(impression, slots, dice, slot_values)
    return out


_INDEX: dict[tuple[str, ...], dict[str, int]] = {}
_COMBO_KEYS: dict[int, list] = {}


def _combo_keys(labels: tuple[str, ...], combos) -> list:
    """(combo, label columns, wanted states) per combo, for a fast match against a report's states."""
    keys = _COMBO_KEYS.get(id(combos))
    if keys is None:
        keys = _COMBO_KEYS[id(combos)] = [
            (c, tuple(_index(labels, lab) for lab, _ in c.states), tuple(st for _, st in c.states)) for c in combos]
    return keys


def _index(labels: tuple[str, ...], label: str) -> int:
    """Column of ``label`` in ``labels`` (cached)."""
    table = _INDEX.get(labels)
    if table is None:
        table = _INDEX[labels] = {name: j for j, name in enumerate(labels)}
    return table[label]


def _compare(sentence: str, dice: _Dice) -> str:
    """Append a comparison with the prior study to a present finding ("..., unchanged from prior.")."""
    if "again" in sentence or not sentence.endswith("."):
        return sentence
    return sentence[:-1] + dice.pick(T.MIMIC_COMPARE_SUFFIXES)


def _restate(states, labels, findings, slots, dice: _Dice, memo: dict, p: float, limit: int,
             skip=()) -> list[str]:
    """Short impression sentences for present/hedged labels (each with chance ``p``, at least one)."""
    items = [(lab, s) for lab, s in zip(labels, states) if s in (POS, UNC) and lab in findings and lab not in skip]
    chosen = [it for it in items if dice.u() < p][:limit] or items[:1]
    return [_impression_of(findings[label], state, memo.setdefault(label, {}), slots, dice)
            for label, state in chosen]


def _impression_of(finding, state: int, slot_values: dict, slots, dice: _Dice) -> str:
    """The impression form of a mention: its own (``"sentence|impression"``), else the ``imp_*`` template
    that reuses the most of the mention's slot values (never one needing a value the mention did not set)."""
    if "_imp" in slot_values:
        return slot_values["_imp"]
    phrases = (finding.imp_pos or finding.pos) if state == POS else (finding.imp_unc or finding.unc)
    fits = [t for t in phrases if set(_fields(t)) <= slot_values.keys()] or list(phrases)
    most = max(len(_fields(t)) for t in fits)
    return _fill(dice.pick([t for t in fits if len(_fields(t)) == most]), slots, dice, slot_values)


def _wrap(text: str, width: int = 78) -> list[str]:
    """Greedy word wrap; every line starts with one space like MIMIC-CXR's report files."""
    lines, cur = [], ""
    for word in text.split(" "):
        if cur and len(cur) + len(word) + 2 > width:
            lines.append(" " + cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    if cur:
        lines.append(" " + cur)
    return lines


# ============================================================================================ MIMIC-CXR

def _mimic_ids(rng, n: int):
    """Sorted unique subject ids, study ids and the patient index of each study."""
    owner = _per_patient(rng, n, [1, 2, 3, 4], [0.45, 0.30, 0.15, 0.10])
    n_pat = int(owner[-1]) + 1
    subjects = np.sort(rng.choice(10_000_000, size=n_pat, replace=False)) + 10_000_000
    studies = rng.choice(10_000_000, size=n, replace=False) + 50_000_000
    return subjects, studies, owner


def _mimic_report(states, ctx_name: str, follow_up: bool, dice: _Dice) -> str:
    """One free-text report laid out like a MIMIC-CXR ``.txt`` file."""
    labels, ctx, memo = MIMIC_CXR_LABELS, T.MIMIC_CONTEXTS[ctx_name], {}
    portable = ctx_name == "icu lines and tubes" or dice.u() < 0.2
    mentions = _mentions(states, labels, T.MIMIC_FINDINGS, T.MIMIC_COMBOS, T.MIMIC_SLOTS, dice, follow_up, memo)
    body = [_compare(s, dice) if follow_up and states[_index(labels, lab)] == POS and dice.u() < 0.3 else s
            for lab, s in mentions]
    body += dice.shuffle(list(T.MIMIC_FILLERS))[:1 + int(dice.u() * 3)]
    body = [dice.pick(T.MIMIC_OPENERS["ap" if portable else "pa"])] + dice.shuffle(body)
    impression, normal = _mimic_impression(states, dice, memo)
    head = [_TITLE, f" EXAMINATION:  {'CHEST (PORTABLE AP)' if portable else 'CHEST (PA AND LAT)'}", " ",
            *_wrap(f"INDICATION:  {_fill(dice.pick(ctx.history), T.MIMIC_SLOTS, dice)}"), " ",
            f" TECHNIQUE:  {'Portable AP upright chest radiograph.' if portable else 'Chest PA and lateral.'}", " ",
            f" COMPARISON:  {'___.' if follow_up else dice.pick(('None.', 'None.', '___.'))}", " "]
    return "\n".join(head + _mimic_sections(body, impression, normal, dice)) + "\n"


def _mimic_impression(states, dice: _Dice, memo: dict) -> tuple[list[str], bool]:
    """Impression sentences (main findings restated, or a normal statement) and whether it is normal."""
    labels, sd = MIMIC_CXR_LABELS, T.M.SUPPORT_DEVICES
    items = _restate(states, labels, T.MIMIC_FINDINGS, T.MIMIC_SLOTS, dice, memo, 0.75, 4, skip=(sd,))
    normal = not items
    if normal:
        items = [dice.pick(T.MIMIC_NORMAL_IMPRESSIONS)]
    if states[_index(labels, sd)] == POS and dice.u() < 0.3:
        items.insert(0, _impression_of(T.MIMIC_FINDINGS[sd], POS, memo.setdefault(sd, {}), T.MIMIC_SLOTS, dice))
    return items, normal


def _mimic_sections(body: list[str], impression: list[str], normal: bool, dice: _Dice) -> list[str]:
    """Lay out findings and impression: both headers (80%), impression only, no header, or combined (5% each)."""
    roll = dice.u()
    if roll < 0.80:
        return [" FINDINGS:", " ", *_wrap(" ".join(body)), " ",
                " IMPRESSION:", " ", *_impression_lines(impression, dice), " "]
    if roll < 0.90:  # impression only: the description itself, closed by a normal statement if any
        return [" IMPRESSION:", " ", *_wrap(" ".join(body[1:] + (impression if normal else []))), " "]
    if roll < 0.95:  # no section header at all (the loader falls back to the last paragraph)
        return [*_wrap(" ".join(body)), " "]
    return [" FINDINGS AND IMPRESSION:", " ", *_wrap(" ".join(body + impression)), " "]


def _impression_lines(items: list[str], dice: _Dice) -> list[str]:
    """Impression as a paragraph, or numbered ("1. ...") a third of the time when it has several items."""
    if len(items) > 1 and dice.u() < 0.35:
        return [line for i, s in enumerate(items, 1) for line in _wrap(f"{i}. {s}")]
    return _wrap(" ".join(items))


def _mimic_codes(states: np.ndarray) -> np.ndarray:
    """CheXpert-style codes from mention states: 1 / 0 / -1, and 2 for blank; No Finding derived."""
    codes = states.copy()
    nf, sd = MIMIC_CXR_LABELS.index(T.M.NO_FINDING), MIMIC_CXR_LABELS.index(T.M.SUPPORT_DEVICES)
    pathology = np.ones(len(MIMIC_CXR_LABELS), dtype=bool)
    pathology[[nf, sd]] = False
    found = np.isin(states[:, pathology], (POS, UNC)).any(axis=1)
    codes[:, nf] = np.where(found, ABSENT, POS)
    return codes


_BY_REMAINDER = np.array([NEG, POS, ABSENT, UNC], dtype=np.int8)
"""The four MIMIC codes indexed by ``code % 4`` (UNC is -1, so it sits at 3)."""
_OTHERS = np.array([[v for v in _BY_REMAINDER if v != c] for c in _BY_REMAINDER], dtype=np.int8)
_CELLS = np.array(["0.0", "1.0", "", "-1.0"], dtype=object)


def _mimic_noise(rng, codes: np.ndarray, share: float, nonblank_only: bool) -> np.ndarray:
    """Change ``share`` of the (non-blank) cells to another value; No Finding only toggles 1.0/blank."""
    hit = rng.random(codes.shape) < share
    if nonblank_only:
        hit &= codes != ABSENT
    other = _OTHERS[codes % 4, rng.integers(0, 3, size=codes.shape)]
    noisy = np.where(hit, other, codes)
    nf = MIMIC_CXR_LABELS.index(T.M.NO_FINDING)
    noisy[:, nf] = np.where(hit[:, nf], np.where(codes[:, nf] == POS, ABSENT, POS), codes[:, nf])
    return noisy


def _label_rows(subjects, studies, codes) -> list[list]:
    """CSV rows ``subject_id, study_id, <labels>`` with cells '1.0', '0.0', '-1.0' or blank."""
    text = _CELLS[codes % 4].tolist()
    return [[int(s), int(t), *row] for s, t, row in zip(subjects, studies, text)]


def _write_mimic(rng: np.random.Generator, n: int, sink) -> None:
    """Reports under ``files/``, CheXpert and NegBio labels, and the per-image split table."""
    labels = MIMIC_CXR_LABELS
    subjects, studies, owner = _mimic_ids(rng, n)
    chances = _chances(T.MIMIC_CONTEXTS, T.MIMIC_TARGETS, labels)
    ctx = _contexts(rng, chances[0], owner, len(subjects), keep=0.7)
    states = _states(rng, ctx, chances, labels, T.MIMIC_NO_NEGATION_WITH)
    follow_up = np.r_[False, owner[1:] == owner[:-1]]
    names, dice, rows = list(T.MIMIC_CONTEXTS), _Dice(rng), states.tolist()
    for i, (patient, study, context, again) in enumerate(zip(owner.tolist(), studies.tolist(), ctx.tolist(),
                                                             follow_up.tolist())):
        subject = f"p{subjects[patient]}"
        text = _mimic_report(rows[i], names[context], again, dice)
        sink(f"files/{subject[:3]}/{subject}/s{study}.txt", text.encode("utf-8"))
    chexpert = _mimic_noise(rng, _mimic_codes(states), LABEL_NOISE, nonblank_only=True)
    negbio = _mimic_noise(rng, chexpert, NEGBIO_CHANGES, nonblank_only=False)
    order = np.lexsort((studies, subjects[owner]))
    header = ["subject_id", "study_id", *labels]
    for name, codes in (("chexpert", chexpert), ("negbio", negbio)):
        _write_csv(sink, f"mimic-cxr-2.0.0-{name}.csv.gz", header,
                   _label_rows(subjects[owner][order], studies[order], codes[order]))
    _write_csv(sink, "mimic-cxr-2.0.0-split.csv.gz", ["dicom_id", "study_id", "subject_id", "split"],
               _split_rows(rng, subjects, studies, owner, order))


def _split_rows(rng, subjects, studies, owner, order) -> list[list]:
    """One row per image (1-3 per study) with a patient-level split."""
    shares = np.array(list(MIMIC_SPLIT_SHARES.values()))
    split = np.array(list(MIMIC_SPLIT_SHARES))[rng.choice(len(shares), size=len(subjects), p=shares)]
    images = rng.choice([1, 2, 3], size=len(studies), p=[0.3, 0.5, 0.2])
    hexes = rng.bytes(20 * int(images.sum())).hex()
    rows, k = [], 0
    for i in order:
        for _ in range(images[i]):
            h = hexes[40 * k: 40 * k + 40]
            k += 1
            dicom = "-".join(h[j: j + 8] for j in range(0, 40, 8))
            rows.append([dicom, int(studies[i]), int(subjects[owner[i]]), split[owner[i]]])
    return rows


# ============================================================================================ CT-RATE

CT_REPORT_COLUMNS = ("VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN")


def _ct_findings(states, contrast: bool, dice: _Dice, memo: dict) -> str:
    """A findings paragraph ordered by anatomy, with fillers and one sentence per mentioned label."""
    labels, slots = CT_RATE_LABELS, T.CT_SLOTS
    by_group: dict[str, list[str]] = {g: [] for g in T.CT_GROUPS}
    for label, sentence in _mentions(states, labels, T.CT_FINDINGS, T.CT_COMBOS, slots, dice, False, memo):
        by_group[T.CT_FINDINGS[label].group].append(sentence)
    out = []
    for group in T.CT_GROUPS:
        said = dice.shuffle(by_group[group])
        fillers = [_fill(dice.pick(alts), slots, dice) for p, alts in T.CT_FILLERS.get(group, ()) if dice.u() < p]
        if contrast and fillers and "contrast" in fillers[0]:
            fillers = fillers[1:]
        if group == "lung" and not said:
            said = ["Aeration of both lungs is normal."]
        out += fillers + said
    return " ".join(out)


def _ct_report(states, ctx_name: str, dice: _Dice) -> list[str]:
    """The four text columns of one CT-RATE report."""
    ctx, memo = T.CT_CONTEXTS[ctx_name], {}
    clinical = "Not given." if dice.u() < 0.25 else dice.pick(ctx.history)
    tech = int(dice.u() * len(T.CT_TECHNIQUES))
    findings = _ct_findings(states, tech in T.CT_CONTRAST_TECHNIQUES, dice, memo)
    given = dice.u() >= 0.01  # rarely the findings are missing and the impression lists everything
    items = _restate(states, CT_RATE_LABELS, T.CT_FINDINGS, T.CT_SLOTS, dice, memo,
                     0.85 if given else 1.0, 6 if given else 99)
    findings = findings if given else "Not given."
    impression = " ".join(items) if items else dice.pick(T.CT_NORMAL_IMPRESSIONS)
    return [clinical, T.CT_TECHNIQUES[tech], findings, impression]


def _ct_labels(rng, states: np.ndarray) -> np.ndarray:
    """0/1 labels: present 1, hedged 1 half the time; then ~3% of mentioned cells flipped."""
    hedge = rng.random(states.shape) < 0.5
    labels = ((states == POS) | ((states == UNC) & hedge)).astype(np.int8)
    flip = (rng.random(states.shape) < LABEL_NOISE) & (states != ABSENT)
    return np.where(flip, 1 - labels, labels)


def _ct_volumes(rng, n: int):
    """Split, patient number and scan letter per scan, and the number of reconstructions of each."""
    owner = _per_patient(rng, n, [1, 2], [0.7, 0.3])
    n_pat = int(owner[-1]) + 1
    valid = rng.random(n_pat) < CT_VALID_SHARE
    number = np.zeros(n_pat, dtype=np.int64)
    for flag in (False, True):
        mask = valid == flag
        number[mask] = np.arange(1, mask.sum() + 1)
    scan = np.r_[0, (owner[1:] == owner[:-1]).astype(np.int64)]
    recons = rng.choice([1, 2, 3], size=n, p=[0.3, 0.45, 0.25])
    return owner, valid, number, scan, recons


def _write_ct(rng: np.random.Generator, n: int, sink) -> None:
    """Report and label CSVs for the train and valid splits, one row per reconstruction."""
    labels = CT_RATE_LABELS
    owner, valid, number, scan, recons = _ct_volumes(rng, n)
    chances = _chances(T.CT_CONTEXTS, T.CT_TARGETS, labels)
    ctx = _contexts(rng, chances[0], owner, len(valid), keep=0.6)
    states = _states(rng, ctx, chances, labels, T.CT_NO_NEGATION_WITH)
    y = _ct_labels(rng, states)
    names, dice, state_rows = list(T.CT_CONTEXTS), _Dice(rng), states.tolist()
    rows = {False: ([], []), True: ([], [])}
    for i in range(n):
        split = "valid" if valid[owner[i]] else "train"
        text = _ct_report(state_rows[i], names[ctx[i]], dice)
        ys = y[i].tolist()
        reports, label_rows = rows[bool(valid[owner[i]])]
        for r in range(1, recons[i] + 1):
            volume = f"{split}_{number[owner[i]]}_{'ab'[scan[i]]}_{r}.nii.gz"
            reports.append([volume, *text])
            label_rows.append([volume, *ys])
    for flag, rep_name, lab_name in ((False, "train_reports", "train_predicted_labels"),
                                     (True, "validation_reports", "valid_predicted_labels")):
        reports, label_rows = rows[flag]
        _write_csv(sink, f"dataset/radiology_text_reports/{rep_name}.csv", CT_REPORT_COLUMNS, reports)
        _write_csv(sink, f"dataset/multi_abnormality_labels/{lab_name}.csv", ("VolumeName", *labels), label_rows)
