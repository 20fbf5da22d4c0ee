"""A rule-based labeller: chest X-ray report text -> the 14 CheXpert labels, with no training at all.

Written here in the style of the CheXpert labeller (Irvin et al. 2019), with our own phrase lists and cues:

1. **Mention**: each label has regular expressions for its finding (``cardiomegaly``, ``heart ... enlarged``,
   ``effusion`` ...); *unmention* patterns veto look-alikes (``pericardial effusion`` is no pleural
   effusion, ``vertebral collapse`` no atelectasis). Text is lower-cased and cut into sentences.
2. **Scope**: a mention's cues are looked for in its own clause: from the last scope breaker (``but``,
   ``however``, ``although``, ``which``, ``there is``, ``and the``, ``;`` ...) up to the mention, and from
   the mention to the next breaker. A list ("no effusion, consolidation or pneumothorax") shares one
   negation and one trailing cue.
3. **Classification**, in CheXpert's order: a negated uncertainty ("cannot be excluded", "not ruled out")
   makes the mention *uncertain*; else a negation ("no", "without", "negative for", "free of", "clear of",
   "is not seen", "has resolved" ...) makes it *negative*; else an uncertainty cue ("may", "possible",
   "likely", "suspicious for", "versus", "?" ...) makes it *uncertain*; else it is *positive*.
4. **Report**: a label is positive if any mention is positive, else uncertain if any is uncertain, else
   negative (not mentioned and negated alike). *No Finding* is positive when no pathology label (all but
   *Support Devices*) is positive or uncertain and no other abnormality (granuloma, emphysema, degenerative
   change, ...: :data:`OTHER_FINDINGS`) is affirmed, CheXpert's definition.

Uncertain mentions become 0 by default (``uncertain="negative"``, U-Zeros) because that is what the label
sources do with hedges: Open-i's indexers tagged findings the report states as present and left hedged ones
untagged (on the Open-i *training* split, U-Zeros agrees better with the tags than U-Ones: weighted F1
0.911 vs 0.902), and MIMIC-CXR's uncertain cells are masked by default (``uncertain=ignore``), so there the
choice hardly matters. ``uncertain="positive"`` (U-Ones) is the alternative for label sets that count hedges.
The output is a hard 0/1 prediction: scoring it at any threshold in (0, 1] gives the same F1.

It trains on nothing and reads only the report being labelled, so it has **zero privacy cost**: a baseline
row beside every DP setting.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radcore.labels import MIMIC_CXR_LABELS

POSITIVE, NEGATIVE, UNCERTAIN, ABSENT = 1, 0, -1, 2
LABELLERS = ("rules",)
UNCERTAIN_POLICIES = ("positive", "negative")
NO_FINDING_RULES = ("strict", "labels")


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


_ENLARGED = r"(?:enlarg\w*|widen\w*|wide|promin\w*|increas\w*)"
_HEART = r"(?:heart|cardiac)(?:\s+(?:size|silhouette|shadow|contour|diameter))?"

# label -> (mention patterns, unmention patterns)
MENTIONS: dict[str, tuple[re.Pattern, re.Pattern | None]] = {
    "Enlarged Cardiomediastinum": (_rx(
        rf"\b{_ENLARGED}\s+(?:of\s+the\s+)?(?:upper\s+|superior\s+)?(?:cardio)?mediastin\w*",
        r"\b(?:cardio)?mediastin\w*(?:\s+(?:silhouette|contours?|shadow|width|structures))?\s+"
        r"(?:is|are|appears?|remains?|seems?|has\s+been)\s+(?:\w+\s+){0,3}?" + _ENLARGED,
        r"\b(?:cardio)?mediastinal\s+(?:widening|enlargement|prominence)"), None),
    "Cardiomegaly": (_rx(
        r"\bcardiomegaly\b",
        rf"\b(?:enlarg\w*|increas\w*)\s+(?:of\s+the\s+)?{_HEART}\b",
        rf"\b{_HEART}\s+(?:is|are|appears?|remains?|seems?|has\s+been)\s+(?:\w+\s+){{0,3}}?"
        r"(?:enlarg\w*|increas\w*|large)",
        r"\b(?:cardiac|heart)\s+enlargement"), None),
    "Lung Lesion": (_rx(
        r"\bnodul(?:e|es|ar\s+(?:densit\w*|opacit\w*))\b", r"\bmass(?:es)?\b", r"\btumou?rs?\b", r"\bneoplasm",
        r"\bcarcinoma", r"\bmalignan\w*", r"\bcavitar\w+\s+lesion", r"\bcavitation\b",
        r"\b(?:lung|pulmonary|parenchymal|spiculated)\s+lesions?"),
        _rx(r"\bmass\s+effect", r"\b(?:breast|soft\s+tissue|body)\s+mass", r"\bcalcified\s+nodul")),
    "Lung Opacity": (_rx(
        r"\bopaci\w*", r"\binfiltrat\w*", r"\bair[\s-]?space\s+(?:disease|process)", r"\bdensit(?:y|ies)\b",
        r"\bscar(?:s|ring|red)?\b", r"\binterstitial\s+(?:markings?|pattern|prominence|thickening|opacit\w*|"
        r"lung\s+disease|disease|changes?)", r"\breticula\w*", r"\b(?:peribronchial|bronchial\s+wall)\s+thickening",
        r"\bperibronchial\s+cuffing"),
        _rx(r"\bnodular\s+(?:opaci\w*|densit\w*)", r"\b(?:bone|breast|soft\s+tissue|calcified|calcific)\s+densit",
            r"\bpleural(?:[\s-]+parenchymal)?\s+scar", r"\bpleuro-?parenchymal\s+scar")),
    "Edema": (_rx(
        r"\bo?edema\b", r"\b(?:pulmonary|vascular|venous)\s+(?:vascular\s+)?congestion", r"\bheart\s+failure",
        r"\bchf\b", r"\bvascular\s+(?:prominence|engorgement|redistribution)", r"\bcephaliz\w*",
        r"\bkerley"), _rx(r"\bsoft\s+tissue\s+o?edema")),
    "Consolidation": (_rx(r"\bconsolidat\w*"), None),
    "Pneumonia": (_rx(r"\b(?:broncho)?pneumonia", r"\binfecti(?:on|ous)\b"), None),
    "Atelectasis": (_rx(r"\batelecta\w*", r"\bcollapsed?\b"),
                    _rx(r"\b(?:vertebral|vertebra|compression|body|bodies)\s+collapse",
                        r"\bcollapse\s+of\s+(?:the\s+)?(?:\w+\s+)?vertebra")),
    "Pneumothorax": (_rx(r"\b(?:hydro|hemo|haemo)?pneumothora(?:x|ces)\b", r"\bptx\b"), None),
    "Pleural Effusion": (_rx(r"\beffusions?\b", r"\bpleural\s+fluid", r"\b(?:hydro|hemo|haemo)thorax",
                             r"\bfluid\s+in\s+the\s+(?:\w+\s+)?pleural\s+spaces?",
                             r"\b(?:hydro|hemo|haemo)pneumothorax"),
                         _rx(r"\b(?:pericardial|joint)\s+effusion")),
    "Pleural Other": (_rx(r"\bpleural\s+(?:thickening|scar\w*|parenchymal\s+scar\w*|plaques?|calcifications?)",
                          r"\bcalcified\s+pleura",
                          r"\bpleuro-?parenchymal\s+scar\w*", r"\bfibrothorax", r"\bfibrosis\b"), None),
    "Fracture": (_rx(r"\bfractur\w*", r"\bfx\b"), None),
    "Support Devices": (_rx(
        r"\b(?:endotracheal|tracheostomy|nasogastric|orogastric|feeding|chest|enteric|gastric|et|ng|og)\s+tubes?\b",
        r"\btubes?\b", r"\bcatheters?\b", r"\bpicc\b", r"\bpacemakers?\b", r"\bpacers?\b", r"\bicd\b",
        r"\bdefibrillators?\b", r"\b(?:pacing|pacer|pacemaker|transvenous)\s+(?:leads?|wires?)",
        r"\b(?:central|venous|arterial|jugular|subclavian|dialysis|swan[\s-]ganz|femoral|picc)\s+"
        r"(?:venous\s+)?lines?\b", r"\bport-?a-?cath", r"\bmediport", r"\bpower\s*port", r"\bstents?\b",
        r"\bdevices?\b", r"\bdrains?\b", r"\bhardware\b", r"\b(?:prosthetic|mechanical|artificial)\s+valve",
        r"\bvalve\s+replacement", r"\b(?:valve|valvular|aortic|mitral)\s+prosthe\w*", r"\bloop\s+recorder",
        r"\bcannula", r"\bstimulator", r"\bgenerator", r"\bleads\b",
        r"\b(?:ekg|ecg|monitor\w*|electrode|cardiac)\s+leads?\b",
        r"\btips?\s+(?:projects?|projecting|overl\w+|terminat\w*|in|at|over|near|is|extends?)\b"), None),
}

OTHER_FINDINGS = _rx(
    r"\bgranulom\w*", r"\bcalcifi\w*", r"\bcalcific\b", r"\bemphysem\w*", r"\bhyper-?(?:inflat|expan|aerat)\w*",
    r"\bhyperlucen\w*", r"\bcopd\b", r"\bdegenerat\w*", r"\bscoliosis", r"\bkyphosis", r"\bkyphotic",
    r"\bosteophyt\w*", r"\bspondylo\w*", r"\bhernia\w*", r"\btortu\w*", r"\batheroscl\w*", r"\beventration",
    r"\belevat\w*", r"\bblunt\w*", r"\bvolume\s+loss", r"\bhypoinflat\w*", r"\blow\s+lung\s+volumes?",
    r"\bbronchiecta\w*", r"\bpneumomediastinum", r"\bpneumoperitoneum", r"\bdeformit\w*", r"\bosteopeni\w*",
    r"\bosteoporo\w*", r"\bcysts?\b", r"\bbullae\b|\bbulla\b|\bblebs?\b", r"\b(?:lymph)?adenopathy",
    r"\bclips?\b", r"\bsternotomy", r"\bpost-?operative", r"\bsurgical\s+changes", r"\bthickening",
    r"\bplaques?\b", r"\bflatten\w*", r"\bbronchitis", r"\bairways?\s+disease", r"\basthma", r"\bbullet",
    r"\bforeign\s+bod\w*", r"\bmetasta\w*", r"\bhematoma", r"\bhemorrhage", r"\bsutures?\b", r"\bwires?\b",
    r"\bimplants?\b", r"\bfusion\b", r"\bhyperostosis",
    r"\blung\s+volumes\s+(?:are|is|remain)\s+(?:\w+\s+)?(?:low|diminished|decreased|reduced)")

# Cue patterns. Negated uncertainty first (it contains negation words but hedges).
NEG_UNCERTAIN = _rx(
    r"\b(?:cannot|can\s*not|could\s+not|can't|not)\s+(?:be\s+)?(?:entirely\s+|completely\s+|totally\s+|"
    r"definitely\s+|fully\s+)?(?:exclude[ds]?|ruled?\s+out)\b",
    r"\bnot\s+(?:be\s+)?(?:entirely\s+|completely\s+)?excluded", r"\bdifficult\s+to\s+(?:exclude|rule\s+out)")
_NOT_CHANGE = r"(?!\s+(?:significant\s+|interval\s+|appreciable\s+|substantial\s+|substantive\s+|definite\s+)*" \
              r"(?:change|increase|decrease|worsening|improvement|progression)\w*\b)"
NEG_PRE = _rx(
    rf"\bno{_NOT_CHANGE}\b", rf"\bwithout{_NOT_CHANGE}\b", rf"\bnot{_NOT_CHANGE}\b", r"\bnegative\s+for\b",
    r"\bfree\s+of\b", r"\bclear\s+of\b", r"\babsence\s+of\b", r"\bresolution\s+of\b", r"\bresolved\b",
    r"\bremoval\s+of\b", r"\brather\s+than\b", r"\bnever\b", r"\bneither\b", r"\bnor\b")
NEG_POST = _rx(
    r"\b(?:is|are|was|were|has\s+been|have\s+been)?\s*not\s+(?:\w+\s+)?(?:seen|identified|present|visuali[sz]ed|"
    r"demonstrated|evident|appreciated|noted|detected|identifiable|visible|apparent|enlarged|widened|"
    r"increased|shown)\b", r"\b(?:has|have)?\s*(?:nearly\s+|almost\s+|completely\s+|since\s+)?resolved\b",
    r"\b(?:has|have)\s+(?:been\s+)?(?:cleared|removed|withdrawn)\b", r"\bno\s+longer\b", r"\bis\s+absent\b",
    r"\bare\s+absent\b", r"\b(?:is|are)\s+excluded\b", r"\bruled\s+out\b", r"\b(?:is|are)\s+normal\b",
    r"\b(?:within|upper\s+limits?\s+of|at\s+the\s+upper\s+limits?\s+of)\s+normal\b",
    r"\b(?:is|are)\s+unremarkable\b")
UNC_PRE = _rx(
    r"\bmay\b", r"\bmight\b", r"\bcould\b", r"\bpossib\w*", r"\bprobabl\w*", r"\blikely\b", r"\bquestionabl\w*",
    r"\bquestion\s+of\b", r"\bsuspect\w*", r"\bsuspicio\w*", r"\bconcern\w*\s+(?:for|of)\b", r"\bsuggest\w*",
    r"\bconsider\w*", r"\bdifferential\b", r"\bversus\b", r"\bvs\b", r"\bindeterminate\b", r"\bequivocal\b",
    r"\bborderline\b", r"\buncertain\b", r"\bpresum\w*", r"\bperhaps\b", r"\braises?\s+the\s+possibility",
    r"\br/o\b", r"\brule\s+out\b", r"\bevaluate\s+for\b", r"\bcannot\b", r"\bdifficult\s+to\b")
UNC_POST = _rx(
    r"\b(?:is|are)\s+(?:possible|suspected|questioned|likely|probable|a\s+consideration|considered)\b",
    r"\bversus\b", r"\bvs\b", r"\?", r"\bmay\s+be\s+present\b", r"\bcannot\b", r"\bnot\s+(?:entirely\s+)?excluded",
    r"\bcould\s+be\b", r"\bis\s+not\s+(?:entirely\s+)?(?:clear|certain)\b")
BREAK = re.compile(
    r"\b(?:but|however|although|though|whereas|while|yet|except|aside\s+from|apart\s+from|other\s+than|which|"
    r"with\s+the\s+exception\s+of|in\s+addition|additionally|and\s+there|there\s+(?:is|are|has|have|was|were)|"
    r"and\s+(?:the|a|an)|now|otherwise|also)\b|[;:()]")
_LIST_GLUE = re.compile(r"^[\s,/]*(?:(?:and|or|nor|and/or)\s+)?(?:[\w-]+\s+){0,3}?$")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\.$|\n+")


@dataclass(frozen=True)
class Mention:
    label: str
    start: int
    end: int


def sentences(text: str) -> list[str]:
    """Lower-cased sentences of ``text`` (a period followed by a space ends one; ``1.5 cm`` does not)."""
    return [s.strip() for s in _SENTENCES.split(text.lower()) if s and s.strip()]


def _mentions(sentence: str) -> list[Mention]:
    found = []
    for label, (mention, unmention) in MENTIONS.items():
        vetoed = [m.span() for m in unmention.finditer(sentence)] if unmention else []
        for m in mention.finditer(sentence):
            if not any(a <= m.start() < b or m.start() <= a < m.end() for a, b in vetoed):
                found.append(Mention(label, m.start(), m.end()))
    return sorted(found, key=lambda m: (m.start, m.end))


def _scope_start(sentence: str, before: int) -> int:
    starts = [m.end() for m in BREAK.finditer(sentence, 0, before)]
    return starts[-1] if starts else 0


def _scope_end(sentence: str, after: int) -> int:
    m = BREAK.search(sentence, after)
    return m.start() if m else len(sentence)


def _groups(sentence: str, mentions: list[Mention]) -> list[list[Mention]]:
    """Mentions joined only by list glue (``,``, ``and``, ``or``, a few words) share their cues."""
    groups: list[list[Mention]] = []
    for m in mentions:
        if groups:
            last = groups[-1][-1]
            gap = sentence[last.end:m.start] if m.start >= last.end else ""
            if m.start < last.end or (_LIST_GLUE.match(gap) and not BREAK.search(gap)):
                groups[-1].append(m)
                continue
        groups.append([m])
    return groups


def _classify(pre: str, post: str) -> int:
    if NEG_UNCERTAIN.search(pre) or NEG_UNCERTAIN.search(post):
        return UNCERTAIN
    if NEG_PRE.search(pre) or NEG_POST.search(post):
        return NEGATIVE
    if UNC_PRE.search(pre) or UNC_POST.search(post):
        return UNCERTAIN
    return POSITIVE


def sentence_states(sentence: str) -> list[tuple[str, int]]:
    """``(label, state)`` for every mention in one lower-cased sentence."""
    out = []
    for group in _groups(sentence, _mentions(sentence)):
        head, tail = group[0], group[-1]
        start = _scope_start(sentence, head.start)
        post = sentence[tail.end:_scope_end(sentence, tail.end)]
        for m in group:
            # Cues inside the mention count too ("heart size is not enlarged"), and a negation before the
            # list reaches every member ("no effusion, consolidation or pneumothorax").
            out.append((m.label, _classify(sentence[start:m.end], post)))
    return out


def report_states(text: str, *, no_finding: str = "strict") -> np.ndarray:
    """Per label (order of :data:`MIMIC_CXR_LABELS`): 1 positive, -1 uncertain, 0 negative or not mentioned.

    ``no_finding="strict"`` (CheXpert's rule) also lets an affirmed :data:`OTHER_FINDINGS` phrase rule out
    *No Finding*; ``"labels"`` looks at the 12 pathology labels only.
    """
    best: dict[str, int] = {}
    rank = {POSITIVE: 3, UNCERTAIN: 2, NEGATIVE: 1}
    other = False
    for sentence in sentences(text):
        for label, state in sentence_states(sentence):
            if rank[state] > rank.get(best.get(label), 0):
                best[label] = state
        for m in (OTHER_FINDINGS.finditer(sentence) if no_finding == "strict" else ()):
            start = _scope_start(sentence, m.start())
            post = sentence[m.end():_scope_end(sentence, m.end())]
            other |= _classify(sentence[start:m.end()], post) != NEGATIVE
    states = np.array([best.get(name, NEGATIVE) for name in MIMIC_CXR_LABELS], dtype=np.int8)
    pathology = [j for j, name in enumerate(MIMIC_CXR_LABELS) if name not in ("No Finding", "Support Devices")]
    states[MIMIC_CXR_LABELS.index("No Finding")] = POSITIVE if not (other or states[pathology].any()) else NEGATIVE
    return states


def label_reports(texts, *, uncertain: str = "negative", no_finding: str = "strict") -> np.ndarray:
    """0/1 predictions ``(n, 14)`` float32 for ``texts``; uncertain mentions become ``uncertain``'s value."""
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain={uncertain!r}; choose one of {', '.join(UNCERTAIN_POLICIES)}")
    if no_finding not in NO_FINDING_RULES:
        raise ValueError(f"no_finding={no_finding!r}; choose one of {', '.join(NO_FINDING_RULES)}")
    states = (np.stack([report_states(t, no_finding=no_finding) for t in texts]) if len(texts)
              else np.zeros((0, len(MIMIC_CXR_LABELS)), np.int8))
    return np.where(states == UNCERTAIN, 1 if uncertain == "positive" else 0, states).astype(np.float32)


def evaluate_labeller(*, dataset: str, data_dir: str | Path, labeller: str = "rules", split: str = "test",
                      uncertain: str = "negative", no_finding: str = "strict", data_options: dict | None = None,
                      out: str | Path | None = None, seed: int = 0) -> dict:
    """Label ``split`` of a corpus with the rules and score them against its labels; writes and returns a record.

    The record's ``metrics`` block is the one :func:`radcore.evaluate.score` gives a model (same function,
    same bootstrap), so the labeller is a row of the same tables.
    """
    from radcore.data import load_corpus
    from radcore.metrics import classification_metrics
    from radcore.outputs import check_file_target
    from radcore.results import write_json_atomic

    if labeller not in LABELLERS:
        raise ValueError(f"unknown labeller {labeller!r}; choose one of {', '.join(LABELLERS)}")
    target = check_file_target(out if out else Path("runs") / "labeller" / labeller / f"{dataset}-{split}.json")
    corpus = load_corpus(dataset, data_dir, **(data_options or {}))
    if tuple(corpus.label_names) != MIMIC_CXR_LABELS:
        raise ValueError(f"the rule labeller gives the 14 CheXpert labels; {dataset} has other labels")
    part = corpus if split == "all" else corpus.subset(split)
    if len(part) == 0:
        raise ValueError(f"the {split!r} split of {data_dir} is empty")
    start = time.perf_counter()
    predictions = label_reports(part.texts, uncertain=uncertain, no_finding=no_finding)
    seconds = time.perf_counter() - start
    record = {"labeller": labeller, "options": {"uncertain": uncertain, "no_finding": no_finding}, "dataset": dataset,
              "data_dir": str(data_dir), "data_options": dict(data_options or {}), "split": split,
              "source": getattr(corpus, "source", None), "trains_on": "nothing", "epsilon_spent": 0.0,
              "metrics": classification_metrics(part.labels, predictions, mask=part.label_mask,
                                                label_names=part.label_names, seed=seed),
              "label_seconds": seconds}
    write_json_atomic(target, record)
    record["out"] = str(target)
    return record
