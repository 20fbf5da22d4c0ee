"""Open-i MeSH "major" tags -> the 14 CheXpert labels.

Open-i's indexers tagged each report with MeSH-style terms such as ``Cardiomegaly/mild``,
``Pleural Effusion/right`` or ``Opacity/lung/base/left``: a **head term** (before the first ``/``) and
qualifiers (site, side, severity, shape, ...). Tags record findings the report states as present; a
finding stated absent gets no tag. So a label is 1 when a mapped tag is present and 0 otherwise.

The principle of the table: a tag maps to a label when the CheXpert labeller would put its finding under
that label, so the Open-i labels mean what MIMIC-CXR's CheXpert labels mean. That is why, for instance,
scarring counts as *Lung Opacity* and fibrosis as *Pleural Other* (CheXpert's own phrase lists put them
there), while granulomas, blunted costophrenic angles and volume loss map to nothing (CheXpert counts them
as "other findings", which only rule out *No Finding*). Each rule states its reason (``TagRule.why``);
:data:`UNMAPPED` lists the frequent tags deliberately left out, with theirs.

Two refinements of "1 when tagged":

* *No Finding* is 1 when the report is tagged ``normal`` **and** no other pathology label is 1 or
  uncertain (*Support Devices* does not count), CheXpert's definition.
* The qualifier ``borderline`` (``Cardiomegaly/borderline``: heart size at the upper limit of normal)
  marks an uncertain finding, handled like MIMIC-CXR's uncertain cells (``OpeniOptions.uncertain``).

Heads and qualifiers are compared case-insensitively with runs of spaces collapsed (the archive spells a
few tags two ways, e.g. ``Thoracic vertebrae``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radcore.labels import MIMIC_CXR_LABELS

NORMAL = "normal"
NO_INDEXING = "no indexing"
UNCERTAIN_QUALIFIERS = frozenset({"borderline"})
# Qualifiers naming a site outside the lung: an opacity or density there is not a lung opacity.
NOT_LUNG = ("ribs", "breast", "sternum", "clavicle", "humerus", "spine", "thoracic vertebrae", "mediastinum",
            "paratracheal", "adipose tissue")


@dataclass(frozen=True)
class TagRule:
    """Tags with head ``head`` (and qualifiers meeting the conditions) mark ``label`` present."""

    head: str
    """MeSH head term, the part before the first ``/``."""
    label: str
    """One of the 14 CheXpert labels."""
    any_of: tuple[str, ...] = ()
    """At least one of these qualifiers must be present (empty: any qualifiers, or none)."""
    none_of: tuple[str, ...] = ()
    """None of these qualifiers may be present."""
    why: str = ""
    """The reason for the rule, shown in the book."""

    def matches(self, head: str, qualifiers: frozenset[str]) -> bool:
        return (head == norm(self.head) and (not self.any_of or any(q in qualifiers for q in self.any_of))
                and not any(q in qualifiers for q in self.none_of))


RULES: tuple[TagRule, ...] = (
    TagRule("Mediastinum", "Enlarged Cardiomediastinum", any_of=("enlarged", "widened", "prominent"),
            why="an enlarged, widened or prominent mediastinum is CheXpert's enlarged cardiomediastinum, "
                "whatever the cause (lymph nodes included)"),
    TagRule("Cardiomegaly", "Cardiomegaly", why="the finding itself"),
    TagRule("Cardiac Shadow", "Cardiomegaly", any_of=("enlarged",),
            why="an enlarged cardiac shadow (silhouette) is cardiomegaly; an obscured or irregular one is not"),
    TagRule("Nodule", "Lung Lesion", why="CheXpert phrase: nodule"),
    TagRule("Mass", "Lung Lesion", none_of=("breast",), why="CheXpert phrase: mass; a breast mass is not in the lung"),
    TagRule("Cavitation", "Lung Lesion", why="CheXpert phrase: cavitary lesion"),
    TagRule("Opacity", "Lung Opacity", none_of=NOT_LUNG,
            why="CheXpert phrase: opacity; opacities of bone, breast or mediastinum are not lung opacities"),
    TagRule("Density", "Lung Opacity", none_of=NOT_LUNG,
            why="CheXpert phrase: increased density; densities of bone, breast or mediastinum excluded"),
    TagRule("Airspace Disease", "Lung Opacity", why="CheXpert phrase: airspace disease"),
    TagRule("Infiltrate", "Lung Opacity", why="CheXpert phrase: infiltrate"),
    TagRule("Cicatrix", "Lung Opacity", none_of=("pleura",),
            why="CheXpert phrase: scar (parenchymal scarring); a pleural scar is Pleural Other"),
    TagRule("Markings", "Lung Opacity", any_of=("interstitial",),
            why="CheXpert phrase: interstitial marking; bronchovascular markings are not"),
    TagRule("Lung Diseases, Interstitial", "Lung Opacity", why="CheXpert phrase: interstitial lung (disease)"),
    TagRule("Thickening", "Lung Opacity", any_of=("bronchi",), why="CheXpert phrase: peribronchial (wall) thickening"),
    TagRule("Pulmonary Edema", "Edema", why="the finding itself"),
    TagRule("Pulmonary Congestion", "Edema", why="CheXpert phrase: pulmonary (vascular) congestion"),
    TagRule("Heart Failure", "Edema", why="CheXpert phrase: heart failure"),
    TagRule("Consolidation", "Consolidation", why="the finding itself"),
    TagRule("Pneumonia", "Pneumonia", why="the finding itself"),
    TagRule("Pulmonary Atelectasis", "Atelectasis", why="the finding itself"),
    TagRule("Pneumothorax", "Pneumothorax", why="the finding itself"),
    TagRule("Hydropneumothorax", "Pneumothorax", why="air in the pleural space"),
    TagRule("Hemopneumothorax", "Pneumothorax", why="air in the pleural space"),
    TagRule("Pleural Effusion", "Pleural Effusion", why="the finding itself"),
    TagRule("Hydropneumothorax", "Pleural Effusion", why="fluid in the pleural space"),
    TagRule("Hemothorax", "Pleural Effusion", why="fluid (blood) in the pleural space"),
    TagRule("Hemopneumothorax", "Pleural Effusion", why="fluid (blood) in the pleural space"),
    TagRule("Thickening", "Pleural Other", any_of=("pleura",), why="CheXpert phrase: pleural thickening"),
    TagRule("Cicatrix", "Pleural Other", any_of=("pleura",), why="CheXpert phrase: pleural scar"),
    TagRule("Calcinosis", "Pleural Other", any_of=("pleura",), why="pleural calcification (plaques): a pleural "
            "abnormality other than effusion"),
    TagRule("Pulmonary Fibrosis", "Pleural Other", why="CheXpert phrase: fibrosis (filed under Pleural Other)"),
    TagRule("Fibrosis", "Pleural Other", why="CheXpert phrase: fibrosis"),
    TagRule("Fractures, Bone", "Fracture", why="the finding itself, healed fractures included (as in CheXpert)"),
    TagRule("Catheters, Indwelling", "Support Devices", why="lines and catheters"),
    TagRule("Implanted Medical Device", "Support Devices", why="pacemakers, defibrillators, ports"),
    TagRule("Medical Device", "Support Devices", why="CheXpert phrase: device"),
    TagRule("Tube, Inserted", "Support Devices", why="CheXpert phrase: tube"),
    TagRule("Stents", "Support Devices", why="an implanted device"),
)

UNMAPPED: dict[str, str] = {
    "Calcified Granuloma, Granuloma": "CheXpert counts granulomas as other findings, not Lung Lesion",
    "Costophrenic Angle (blunted)": "blunting may be a small effusion or pleural thickening; CheXpert counts "
                                    "it as another finding; the report's own effusion gets its own tag",
    "Lung (hypoinflation)": "low lung volumes, not atelectasis",
    "Volume Loss": "CheXpert counts volume loss as another finding, not Atelectasis",
    "Surgical Instruments, Sutures": "surgical clips and sutures are not support devices in CheXpert's vocabulary",
    "Spinal Fusion, Breast Implants, Foreign Bodies": "not in CheXpert's support-device vocabulary",
    "Cardiac Shadow (borderline), Heart Atria, Heart Ventricles": "borderline or single-chamber size is not "
                                                                  "cardiomegaly in CheXpert's phrases",
    "Deformity": "a deformity is not a fracture",
    "Emphysema, Pulmonary Disease Chronic Obstructive, Lung (hyperdistention)": "not among the 14 labels",
    "Calcinosis, Aorta, Atherosclerosis, Thoracic Vertebrae, Spine, Scoliosis, Diaphragm, Hernia Hiatal":
        "not among the 14 labels (they rule out No Finding only through the absent `normal` tag)",
    "Technical Quality of Image Unsatisfactory": "says nothing about findings",
}


def norm(term: str) -> str:
    """Case-folded, single-spaced form used to compare heads and qualifiers."""
    return " ".join(term.split()).casefold()


def parse_tag(tag: str) -> tuple[str, frozenset[str]]:
    """``"Opacity/lung/base/left"`` -> ``("opacity", {"lung", "base", "left"})``."""
    head, *qualifiers = tag.split("/")
    return norm(head), frozenset(norm(q) for q in qualifiers if q.strip())


_LABEL = {name: j for j, name in enumerate(MIMIC_CXR_LABELS)}
_NO_FINDING, _SUPPORT = _LABEL["No Finding"], _LABEL["Support Devices"]


def tag_states(tags) -> np.ndarray:
    """Per label: 1 (a mapped tag is present), -1 (only ``borderline`` ones are) or 0, as int8 ``(14,)``."""
    state = np.zeros(len(MIMIC_CXR_LABELS), dtype=np.int8)
    normal = False
    for tag in tags:
        head, qualifiers = parse_tag(tag)
        normal |= head == NORMAL
        unsure = bool(qualifiers & UNCERTAIN_QUALIFIERS)
        for rule in RULES:
            if rule.matches(head, qualifiers - UNCERTAIN_QUALIFIERS if unsure else qualifiers):
                j = _LABEL[rule.label]
                state[j] = 1 if not unsure else (state[j] or -1)
    pathology = np.delete(state, [_NO_FINDING, _SUPPORT])
    state[_NO_FINDING] = 1 if normal and not pathology.any() else 0
    return state


def mapped_heads() -> list[str]:
    """Every head term some rule maps, in table order (for docs and tests)."""
    return list(dict.fromkeys(rule.head for rule in RULES))


def mapping_rows() -> list[dict]:
    """The table as rows (label, head, condition, why), grouped by label in CheXpert order."""
    rows = [{"label": "No Finding", "head": "normal", "condition": "and no pathology label",
             "why": "CheXpert's definition of No Finding"}]
    for label in MIMIC_CXR_LABELS:
        for r in RULES:
            if r.label == label:
                cond = " ".join(filter(None, [f"with {' or '.join(r.any_of)}" if r.any_of else "",
                                              f"not {', '.join(r.none_of)}" if r.none_of else ""]))
                rows.append({"label": label, "head": r.head, "condition": cond, "why": r.why})
    return rows
