"""Data tables of the synthetic report generator (:mod:`radcore.data.synth`): contexts, prevalences, phrases.

Everything here is invented text. Label names are never retyped: ``M.PLEURAL_EFFUSION`` is the label of
:data:`~radcore.labels.MIMIC_CXR_LABELS` whose upper-snake form matches, so a renamed or misspelled label
fails at import. Templates fill ``{slot}`` fields from :data:`MIMIC_SLOTS` / :data:`CT_SLOTS`.

Per label, a :class:`Finding` holds phrasings of each mention state: ``pos`` (present), ``unc`` (hedged),
``neg`` (negated), ``resolved`` (negated by comparison, follow-up studies only) and the short ``imp_pos`` /
``imp_unc`` forms the impression restates. A :class:`Combo` is one sentence mentioning several labels in
given states ("No pleural effusion or pneumothorax."); it is used when a report's states match it.

A phrase ``"finding sentence|impression form"`` carries its own impression wording. Otherwise the impression
uses the ``imp_*`` template filling the most of the slots the finding sentence used (same side, lobe...),
so every ``imp_*`` list needs one template without slots, worded generally enough for any phrasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from radcore.labels import CT_RATE_LABELS, MIMIC_CXR_LABELS

POS, UNC, NEG, ABSENT = 1, -1, 0, 2
"""Mention states of a label in one report (``ABSENT``: the text does not mention it)."""

LABEL_NOISE = 0.03
"""Share of mentioned (non-blank) label cells a simulated labeller gets wrong."""


def _names(labels: tuple[str, ...]) -> SimpleNamespace:
    """Attribute access to label names: ``"Pleural Effusion"`` -> ``.PLEURAL_EFFUSION``."""
    return SimpleNamespace(**{name.upper().replace(" ", "_"): name for name in labels})


M = _names(MIMIC_CXR_LABELS)
C = _names(CT_RATE_LABELS)


@dataclass(frozen=True)
class Finding:
    """Phrasings of one label, by mention state."""

    pos: tuple[str, ...]
    unc: tuple[str, ...]
    neg: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    imp_pos: tuple[str, ...] = ()
    imp_unc: tuple[str, ...] = ()
    group: str = ""
    """Anatomical section the sentence belongs to (CT-RATE findings are ordered by anatomy)."""


@dataclass(frozen=True)
class Combo:
    """One sentence that mentions several labels, each in a given state."""

    states: tuple[tuple[str, int], ...]
    phrases: tuple[str, ...]
    p: float = 0.6
    """Chance of using this sentence when the report's states match."""


@dataclass(frozen=True)
class Context:
    """A latent clinical situation that drives which findings a report has."""

    prior: float
    risk: dict[str, float]
    """Relative risk per label (missing labels: 1.0); scaled per label to meet the target prevalence."""
    history: tuple[str, ...]
    """Indication (MIMIC-CXR) or clinical-information (CT-RATE) phrases."""
    negation: float = 1.0
    """Multiplier of the chance of pertinent negatives ("No pleural effusion.") in this context."""


@dataclass(frozen=True)
class Target:
    """Share of reports mentioning a label as present, hedged, and (when neither) as negated."""

    pos: float
    unc: float
    neg: float


# ============================================================================================ MIMIC-CXR

MIMIC_SLOTS: dict[str, tuple[str, ...]] = {
    "side": ("left", "right"),
    "sev": ("trace", "small", "small", "small", "moderate", "moderate", "large"),
    "ptxsev": ("tiny", "small", "small", "moderate", "large"),
    "deg": ("mild", "mild", "mild", "moderate", "moderate", "severe"),
    "degly": ("mildly", "mildly", "moderately", "markedly"),
    "lobe": ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "lingula",
             "left lower lobe"),
    "base": ("left base", "right base", "lung bases", "left lung base", "right lung base", "left retrocardiac region"),
    "zone": ("left upper lung", "right upper lung", "left mid lung", "right mid lung", "left lower lung",
             "right lower lung"),
    "cm": ("0.8", "1.1", "1.4", "1.7", "2.1", "2.6", "3.2", "4.5"),
    "ett": ("2.5", "3", "3.5", "4", "4.5", "5", "6"),
    "rib": ("third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth"),
}

MIMIC_FINDINGS: dict[str, Finding] = {
    M.ENLARGED_CARDIOMEDIASTINUM: Finding(
        pos=("The cardiomediastinal silhouette is enlarged.", "Widening of the mediastinum is noted.",
             "The mediastinum is widened.", "Mediastinal widening is again seen.",
             "There is enlargement of the cardiomediastinal silhouette."),
        unc=("Possible mild widening of the mediastinum.",
             "The mediastinum may be slightly widened, possibly accentuated by the AP technique.",
             "Mediastinal contours are difficult to assess but may be widened."),
        neg=("The cardiomediastinal silhouette is normal.", "Mediastinal contours are normal.",
             "Cardiomediastinal and hilar contours are within normal limits.", "The mediastinum is not widened.",
             "Normal cardiomediastinal silhouette."),
        resolved=("Previously noted mediastinal widening is no longer seen.",),
        imp_pos=("Widened mediastinum.", "Enlarged cardiomediastinal silhouette."),
        imp_unc=("Possible mediastinal widening; correlate clinically.",)),
    M.CARDIOMEGALY: Finding(
        pos=("The heart is {degly} enlarged.", "There is {deg} cardiomegaly.",
             "{deg} enlargement of the cardiac silhouette.", "Heart size is enlarged.",
             "The cardiac silhouette is enlarged.", "Cardiomegaly is again noted."),
        unc=("Heart size is borderline enlarged.", "Possible mild cardiomegaly.",
             "The heart may be mildly enlarged, though this is accentuated by the AP technique.",
             "The cardiac silhouette is possibly enlarged."),
        neg=("Heart size is normal.", "The heart is not enlarged.", "No cardiomegaly.",
             "The cardiac silhouette is within normal limits.", "Heart size is top normal."),
        imp_pos=("Cardiomegaly.", "{deg} cardiomegaly."),
        imp_unc=("Borderline cardiomegaly.",)),
    M.LUNG_LESION: Finding(
        pos=("A {cm} cm nodule is seen in the {lobe}.", "There is a {cm} cm spiculated mass in the {lobe}.",
             "Known {lobe} mass is again seen.", "A rounded {cm} cm nodule projects over the {zone}.",
             "Multiple pulmonary nodules are present, the largest in the {lobe}.|Multiple pulmonary nodules."),
        unc=("A questionable nodule projects over the {zone}; this may represent a nipple shadow.",
             "Possible {cm} cm nodule in the {lobe}, not definitely seen on the lateral view.",
             "A nodular density in the {zone} may represent a lung nodule versus overlapping vessels."),
        neg=("No pulmonary nodules or masses.", "No suspicious pulmonary nodule is seen.",
             "There is no lung mass."),
        resolved=("The previously seen nodule in the {lobe} is no longer visualized.",),
        imp_pos=("{lobe} lesion; chest CT is recommended.", "{cm} cm {lobe} lesion.", "Pulmonary lesion."),
        imp_unc=("Possible {lobe} nodule; recommend chest CT for further evaluation.",
                 "Possible pulmonary nodule; recommend chest CT for further evaluation.")),
    M.LUNG_OPACITY: Finding(
        pos=("There is a patchy opacity in the {base}.", "Hazy opacities are noted in the {zone}.",
             "Patchy airspace opacities at the {base}.", "Ill-defined opacity in the {lobe}.",
             "Streaky opacity at the {base}.", "There is a {lobe} infiltrate."),
        unc=("Subtle opacity at the {base} is questionable.", "There may be a faint opacity in the {zone}.",
             "Possible opacity in the {lobe}."),
        neg=("The lungs are clear.", "No focal opacity is seen.", "No focal airspace opacity.",
             "There is no parenchymal opacity."),
        resolved=("Previously noted opacity at the {base} has resolved.",),
        imp_pos=("Opacity at the {base}.", "Patchy opacities at the {base}.", "Opacity in the {zone}.",
                 "{lobe} opacity.", "Focal opacity as described above."),
        imp_unc=("Possible subtle opacity at the {base}.", "Possible subtle opacity.")),
    M.EDEMA: Finding(
        pos=("There is {deg} pulmonary edema.", "{deg} interstitial edema with perihilar haziness.",
             "Pulmonary vascular congestion with {deg} interstitial edema.",
             "Kerley B lines and perihilar haziness are consistent with pulmonary edema.",
             "Findings are consistent with {deg} pulmonary edema."),
        unc=("Mild vascular engorgement may reflect early edema.", "Possible mild interstitial edema.",
             "Perihilar haziness could represent mild pulmonary edema."),
        neg=("No pulmonary edema.", "There is no evidence of pulmonary edema.",
             "Pulmonary vasculature is normal without edema."),
        resolved=("Previously seen pulmonary edema has resolved.",),
        imp_pos=("{deg} pulmonary edema.", "Findings consistent with congestive heart failure.", "Pulmonary edema."),
        imp_unc=("Possible mild pulmonary edema.",)),
    M.CONSOLIDATION: Finding(
        pos=("There is consolidation in the {lobe}.", "Dense {lobe} consolidation with air bronchograms.",
             "Focal consolidation is seen at the {base}.", "Airspace consolidation in the {lobe} is again seen."),
        unc=("Possible consolidation at the {base}.", "Consolidation at the {base} cannot be excluded.",
             "Questionable early consolidation in the {lobe}."),
        neg=("There is no focal consolidation.", "No consolidation.", "No focal consolidation is seen."),
        resolved=("The previously seen {lobe} consolidation has resolved.",),
        imp_pos=("{lobe} consolidation.", "Consolidation at the {base}.", "Focal consolidation."),
        imp_unc=("Possible {lobe} consolidation.", "Possible consolidation at the {base}.", "Possible consolidation.")),
    M.PNEUMONIA: Finding(
        pos=("Findings are consistent with {lobe} pneumonia.", "There is a {lobe} pneumonia.",
             "Multifocal pneumonia is again seen.", "Airspace disease in the {lobe} consistent with pneumonia."),
        unc=("Cannot exclude pneumonia.", "Pneumonia cannot be excluded in the appropriate clinical setting.",
             "Early pneumonia is not excluded.", "Possible {lobe} pneumonia.",
             "Findings may represent an early pneumonia.", "Infectious process is not excluded."),
        neg=("No evidence of pneumonia.", "There is no radiographic evidence of pneumonia.",
             "No findings to suggest pneumonia."),
        resolved=("The previously seen {lobe} pneumonia has resolved.",),
        imp_pos=("{lobe} pneumonia.", "Findings consistent with pneumonia."),
        imp_unc=("Possible early {lobe} pneumonia.", "Pneumonia cannot be excluded.")),
    M.ATELECTASIS: Finding(
        pos=("There is {deg} atelectasis at the {base}.", "Linear atelectasis is seen at the {base}.",
             "Plate-like atelectasis in the {base}.", "Volume loss in the {lobe} consistent with atelectasis.",
             "{deg} bibasilar atelectasis.|{deg} bibasilar atelectasis."),
        unc=("Likely atelectasis at the {base}.", "Streaky densities at the {base} likely reflect atelectasis.",
             "Possible subsegmental atelectasis at the {base}.",
             "Bibasilar atelectasis is suspected.|Possible bibasilar atelectasis."),
        neg=("No atelectasis.", "There is no atelectasis."),
        resolved=("Previously noted atelectasis at the {base} has resolved.",),
        imp_pos=("Atelectasis at the {base}.", "{lobe} atelectasis.", "Atelectasis."),
        imp_unc=("Likely atelectasis at the {base}.", "Possible atelectasis.")),
    M.PNEUMOTHORAX: Finding(
        pos=("There is a {ptxsev} {side} pneumothorax.", "{ptxsev} {side} apical pneumothorax is noted.",
             "A {side} pneumothorax is present, measuring approximately {cm} cm at the apex.",
             "A {side} apical pneumothorax is again seen."),
        unc=("Questionable tiny {side} apical pneumothorax.",
             "A skin fold versus a small {side} pneumothorax is seen at the apex.",
             "Possible small {side} apical pneumothorax."),
        neg=("No pneumothorax.", "There is no pneumothorax.", "No pneumothorax is seen.",
             "There is no evidence of pneumothorax."),
        resolved=("The previously seen {side} pneumothorax has resolved.",),
        imp_pos=("{ptxsev} {side} pneumothorax.", "{side} pneumothorax.", "Pneumothorax."),
        imp_unc=("Possible tiny {side} apical pneumothorax.", "Possible tiny pneumothorax.")),
    M.PLEURAL_EFFUSION: Finding(
        pos=("There is a {sev} {side} pleural effusion.",
             "{sev} bilateral pleural effusions.|Bilateral pleural effusions.",
             "There is blunting of the {side} costophrenic angle.", "Fluid in the {side} pleural space.",
             "Layering {side} pleural fluid is noted.",
             "Blunting of the {side} costophrenic angle is consistent with a {sev} pleural effusion."),
        unc=("Possible {sev} {side} pleural effusion.",
             "Blunting of the {side} costophrenic angle may reflect a small effusion or pleural thickening.",
             "A trace {side} effusion cannot be excluded."),
        neg=("No pleural effusion.", "There is no pleural effusion.", "The costophrenic angles are sharp.",
             "No effusion."),
        resolved=("The previously seen {side} pleural effusion has resolved.",),
        imp_pos=("{sev} {side} pleural effusion.", "{side} pleural effusion.", "Pleural effusion."),
        imp_unc=("Possible {side} pleural effusion.", "Possible small pleural effusion.")),
    M.PLEURAL_OTHER: Finding(
        pos=("There is {side} pleural thickening.",
             "Calcified pleural plaques are seen bilaterally.|Calcified pleural plaques.",
             "{side} apical pleural thickening is noted.", "Pleural scarring at the {base}."),
        unc=("Possible {side} pleural thickening.", "Questionable {side} pleural plaque."),
        neg=("No pleural thickening.",),
        imp_pos=("{side} pleural thickening.", "Pleural thickening."),
        imp_unc=("Possible {side} pleural thickening.", "Possible pleural thickening.")),
    M.FRACTURE: Finding(
        pos=("There is an acute fracture of the {side} {rib} rib.",
             "Healed {side} rib fractures are noted.|Healed {side} rib fractures.",
             "There is a nondisplaced {side} clavicle fracture.|Nondisplaced {side} clavicle fracture.",
             "Displaced fracture of the {side} {rib} rib is seen."),
        unc=("Possible nondisplaced {side} {rib} rib fracture.",
             "Questionable fracture of the {side} {rib} rib; consider a dedicated rib series."),
        neg=("No acute fracture.", "No displaced rib fracture is identified.", "There is no fracture."),
        imp_pos=("{side} {rib} rib fracture.", "Rib fracture."),
        imp_unc=("Possible {side} {rib} rib fracture.", "Possible rib fracture.")),
    M.SUPPORT_DEVICES: Finding(
        pos=("Endotracheal tube tip terminates {ett} cm above the carina.|Endotracheal tube in appropriate position.",
             "A {side} internal jugular central venous catheter terminates in the mid SVC.|"
             "{side} internal jugular line ends in the mid SVC.",
             "An enteric tube courses below the diaphragm with the tip out of view.|Enteric tube in the stomach.",
             "A {side}-sided pacemaker has leads in the right atrium and right ventricle.|"
             "Pacemaker leads in standard position.",
             "{side} PICC line tip is at the cavoatrial junction.|{side} PICC line ends at the cavoatrial junction.",
             "A {side} chest tube is in place.|{side} chest tube in place."),
        unc=("A linear density over the {zone} may represent external tubing or a catheter.",),
        neg=("No lines or tubes are present.",),
        resolved=("The endotracheal tube has been removed.", "Interval removal of the {side} chest tube."),
        imp_pos=("Lines and tubes as described above.",)),
}

MIMIC_COMBOS: tuple[Combo, ...] = (
    Combo(((M.CONSOLIDATION, NEG), (M.PLEURAL_EFFUSION, NEG), (M.PNEUMOTHORAX, NEG)),
          ("There is no focal consolidation, pleural effusion or pneumothorax.",
           "No focal consolidation, effusion, or pneumothorax.")),
    Combo(((M.PLEURAL_EFFUSION, NEG), (M.PNEUMOTHORAX, NEG)),
          ("No pleural effusion or pneumothorax.", "There is no pleural effusion or pneumothorax.",
           "No effusion or pneumothorax is seen.")),
    Combo(((M.CARDIOMEGALY, NEG), (M.ENLARGED_CARDIOMEDIASTINUM, NEG)),
          ("Heart size and mediastinal contours are normal.", "Cardiac and mediastinal silhouettes are unremarkable.")),
    Combo(((M.EDEMA, NEG), (M.PLEURAL_EFFUSION, NEG)), ("No pulmonary edema or pleural effusion.",), 0.4),
    Combo(((M.CONSOLIDATION, NEG), (M.PNEUMONIA, NEG)), ("No consolidation to suggest pneumonia.",), 0.4),
    Combo(((M.LUNG_OPACITY, POS), (M.ATELECTASIS, UNC), (M.PNEUMONIA, UNC)),
          ("Opacities at the {base} likely reflect atelectasis, though infection cannot be excluded.",), 0.8),
    Combo(((M.LUNG_OPACITY, POS), (M.ATELECTASIS, UNC), (M.CONSOLIDATION, UNC)),
          ("Opacity at the {base} may reflect atelectasis or consolidation.",
           "Opacity at the {base} may reflect atelectasis, though consolidation cannot be excluded."), 0.8),
    Combo(((M.LUNG_OPACITY, POS), (M.PNEUMONIA, UNC)),
          ("Opacity at the {base}, concerning for pneumonia.",
           "Patchy opacity in the {lobe} could represent pneumonia in the appropriate clinical setting."), 0.7),
    Combo(((M.LUNG_OPACITY, POS), (M.PNEUMONIA, POS)), ("Patchy {lobe} opacity consistent with pneumonia.",)),
    Combo(((M.LUNG_OPACITY, POS), (M.ATELECTASIS, POS)), ("Opacity at the {base} consistent with atelectasis.",)),
    Combo(((M.CARDIOMEGALY, POS), (M.EDEMA, POS)),
          ("Cardiomegaly with {deg} pulmonary edema.", "The heart is enlarged and there is {deg} interstitial edema.")),
    Combo(((M.EDEMA, POS), (M.PLEURAL_EFFUSION, POS)),
          ("{deg} pulmonary edema with {sev} bilateral pleural effusions.",), 0.5),
    Combo(((M.PLEURAL_EFFUSION, POS), (M.ATELECTASIS, POS)),
          ("{sev} {side} pleural effusion with adjacent compressive atelectasis.",)),
    Combo(((M.SUPPORT_DEVICES, POS), (M.PNEUMOTHORAX, NEG)),
          ("{side} internal jugular catheter ends in the low SVC; there is no pneumothorax.",
           "A {side} chest tube is in place without residual pneumothorax."), 0.4),
    Combo(((M.FRACTURE, POS), (M.PNEUMOTHORAX, NEG)), ("Acute {side} {rib} rib fracture without pneumothorax.",)),
)

MIMIC_NO_NEGATION_WITH: dict[str, tuple[str, ...]] = {
    M.LUNG_OPACITY: (M.LUNG_LESION, M.EDEMA, M.CONSOLIDATION, M.PNEUMONIA, M.ATELECTASIS),
    M.ENLARGED_CARDIOMEDIASTINUM: (M.CARDIOMEGALY,),
}
"""A label is not negated ("The lungs are clear.") when one of these is present or hedged in the report;
it goes unmentioned instead, so a report never contradicts itself."""

MIMIC_FILLERS: tuple[str, ...] = (
    "The osseous structures are unremarkable.", "No acute osseous abnormality.",
    "Degenerative changes are seen in the thoracic spine.", "Surgical clips project over the right upper quadrant.",
    "The hila are unremarkable.", "Lung volumes are low.", "There is calcification of the aortic knob.",
    "The imaged upper abdomen is unremarkable.", "The thoracic aorta is tortuous.",
    "No free air is seen below the diaphragm.", "Clips project over the left axilla.",
)

MIMIC_OPENERS: dict[str, tuple[str, ...]] = {
    "pa": ("PA and lateral views of the chest provided.", "PA and lateral views of the chest were obtained."),
    "ap": ("Single portable AP view of the chest.", "Portable semi-upright AP view of the chest."),
}

MIMIC_NORMAL_IMPRESSIONS: tuple[str, ...] = (
    "No acute cardiopulmonary process.", "No acute intrathoracic process.",
    "No acute cardiopulmonary abnormality.", "No radiographic evidence of acute cardiopulmonary disease.",
)

MIMIC_COMPARE_SUFFIXES: tuple[str, ...] = (
    ", unchanged from prior.", ", new since the prior study.", ", slightly improved compared to prior.",
    ", increased since ___.", ", similar to ___.",
)

MIMIC_CONTEXTS: dict[str, Context] = {
    "normal": Context(0.27, {**{m: 0.0 for m in MIMIC_CXR_LABELS}, M.SUPPORT_DEVICES: 0.25}, (
        "___-year-old man with cough.", "___-year-old woman with chest pain, evaluate for acute process.",
        "___F with shortness of breath.", "___M preoperative evaluation.", "History: ___M with dyspnea.",
        "___-year-old woman with fever, evaluate for pneumonia."), negation=1.5),
    "heart failure": Context(0.16, {
        M.ENLARGED_CARDIOMEDIASTINUM: 2, M.CARDIOMEGALY: 5, M.LUNG_LESION: 0.2, M.LUNG_OPACITY: 1.5, M.EDEMA: 6,
        M.CONSOLIDATION: 0.5, M.PNEUMONIA: 0.5, M.ATELECTASIS: 1.5, M.PNEUMOTHORAX: 0.2,
        M.PLEURAL_EFFUSION: 4, M.PLEURAL_OTHER: 0.5, M.FRACTURE: 0.3, M.SUPPORT_DEVICES: 1.5}, (
        "___-year-old man with shortness of breath and leg swelling, evaluate for CHF.",
        "___F with dyspnea on exertion and orthopnea.", "___M with CHF exacerbation, assess for fluid overload.",
        "___-year-old woman with weight gain and dyspnea.")),
    "infection": Context(0.15, {
        M.ENLARGED_CARDIOMEDIASTINUM: 0.5, M.CARDIOMEGALY: 1, M.LUNG_LESION: 0.3, M.LUNG_OPACITY: 4, M.EDEMA: 1,
        M.CONSOLIDATION: 5, M.PNEUMONIA: 6, M.ATELECTASIS: 2, M.PNEUMOTHORAX: 0.2, M.PLEURAL_EFFUSION: 2,
        M.PLEURAL_OTHER: 0.5, M.FRACTURE: 0.2, M.SUPPORT_DEVICES: 0.7}, (
        "___-year-old man with fever and productive cough, evaluate for pneumonia.",
        "___F with leukocytosis and hypoxia.", "___M with fever, r/o pneumonia.",
        "___-year-old woman with cough and chills.")),
    "icu lines and tubes": Context(0.18, {
        M.ENLARGED_CARDIOMEDIASTINUM: 1.5, M.CARDIOMEGALY: 1.5, M.LUNG_LESION: 0.3, M.LUNG_OPACITY: 2,
        M.EDEMA: 2, M.CONSOLIDATION: 1.5, M.PNEUMONIA: 1.5, M.ATELECTASIS: 3, M.PNEUMOTHORAX: 2,
        M.PLEURAL_EFFUSION: 2.5, M.PLEURAL_OTHER: 0.5, M.FRACTURE: 0.5, M.SUPPORT_DEVICES: 8}, (
        "___-year-old man, intubated, evaluate ET tube placement.", "___F status post CABG, evaluate for effusion.",
        "___M with new right IJ line, assess line placement.", "___-year-old woman in the ICU with hypoxia.",
        "Status post chest tube placement, evaluate for pneumothorax.")),
    "trauma": Context(0.05, {
        M.ENLARGED_CARDIOMEDIASTINUM: 1.5, M.CARDIOMEGALY: 0.3, M.LUNG_LESION: 0.3, M.LUNG_OPACITY: 1.5,
        M.EDEMA: 0.2, M.CONSOLIDATION: 1, M.PNEUMONIA: 0.3, M.ATELECTASIS: 1.5, M.PNEUMOTHORAX: 6,
        M.PLEURAL_EFFUSION: 1, M.PLEURAL_OTHER: 1, M.FRACTURE: 12, M.SUPPORT_DEVICES: 1.5}, (
        "___-year-old man status post fall with left chest wall pain.", "___F with trauma, motor vehicle collision.",
        "___M with chest wall tenderness after a fall, evaluate for rib fracture.")),
    "chronic lung disease": Context(0.10, {
        M.ENLARGED_CARDIOMEDIASTINUM: 0.5, M.CARDIOMEGALY: 0.8, M.LUNG_LESION: 1.5, M.LUNG_OPACITY: 1.5,
        M.EDEMA: 0.3, M.CONSOLIDATION: 0.5, M.PNEUMONIA: 1, M.ATELECTASIS: 1.5, M.PNEUMOTHORAX: 1,
        M.PLEURAL_EFFUSION: 0.7, M.PLEURAL_OTHER: 3, M.FRACTURE: 0.5, M.SUPPORT_DEVICES: 0.3}, (
        "___-year-old man with COPD exacerbation.", "___F with emphysema and worsening dyspnea.",
        "___M with history of asbestos exposure.")),
    "nodule follow-up": Context(0.05, {
        M.ENLARGED_CARDIOMEDIASTINUM: 0.3, M.CARDIOMEGALY: 0.5, M.LUNG_LESION: 12, M.LUNG_OPACITY: 1,
        M.EDEMA: 0.1, M.CONSOLIDATION: 0.3, M.PNEUMONIA: 0.3, M.ATELECTASIS: 0.5, M.PNEUMOTHORAX: 0.3,
        M.PLEURAL_EFFUSION: 0.5, M.PLEURAL_OTHER: 1, M.FRACTURE: 0.2, M.SUPPORT_DEVICES: 0.2}, (
        "___-year-old woman with lung nodule, follow-up.", "___M former smoker with weight loss.",
        "___F with known lung mass, interval assessment.")),
    "malignancy": Context(0.04, {
        M.ENLARGED_CARDIOMEDIASTINUM: 1, M.CARDIOMEGALY: 0.5, M.LUNG_LESION: 5, M.LUNG_OPACITY: 2, M.EDEMA: 0.3,
        M.CONSOLIDATION: 1, M.PNEUMONIA: 0.5, M.ATELECTASIS: 2.5, M.PNEUMOTHORAX: 0.5, M.PLEURAL_EFFUSION: 5,
        M.PLEURAL_OTHER: 5, M.FRACTURE: 0.5, M.SUPPORT_DEVICES: 1}, (
        "___-year-old woman with metastatic breast cancer and dyspnea.",
        "___M with lung cancer status post chemotherapy.", "___F with mesothelioma, evaluate effusion.")),
}

MIMIC_TARGETS: dict[str, Target] = {
    M.ENLARGED_CARDIOMEDIASTINUM: Target(0.03, 0.04, 0.25),
    M.CARDIOMEGALY: Target(0.19, 0.025, 0.35),
    M.LUNG_LESION: Target(0.03, 0.008, 0.10),
    M.LUNG_OPACITY: Target(0.22, 0.015, 0.25),
    M.EDEMA: Target(0.12, 0.05, 0.30),
    M.CONSOLIDATION: Target(0.05, 0.02, 0.45),
    M.PNEUMONIA: Target(0.07, 0.08, 0.25),
    M.ATELECTASIS: Target(0.2, 0.045, 0.08),
    M.PNEUMOTHORAX: Target(0.04, 0.006, 0.55),
    M.PLEURAL_EFFUSION: Target(0.23, 0.025, 0.50),
    M.PLEURAL_OTHER: Target(0.01, 0.003, 0.03),
    M.FRACTURE: Target(0.02, 0.003, 0.12),
    M.SUPPORT_DEVICES: Target(0.28, 0.002, 0.03),
}
"""Roughly the real MIMIC-CXR CheXpert rates. Label noise barely moves them: it turns about as many negated
mentions into positives as positives into something else."""

# ============================================================================================ CT-RATE

CT_SLOTS: dict[str, tuple[str, ...]] = {
    "side": ("right", "left"),
    "lobe": ("right upper lobe", "right middle lobe", "right lower lobe", "left upper lobe", "left lower lobe",
             "lingular segment of the left upper lobe", "superior segment of the right lower lobe",
             "posterobasal segment of the left lower lobe", "anterior segment of the right upper lobe"),
    "mm": ("3", "4", "4", "5", "5", "6", "7", "8", "9", "11", "14"),
    "lnmm": ("11", "12", "13", "14", "16", "18", "21", "25"),
    "lnmm2": ("8", "9", "10", "11", "12"),
    "effmm": ("8", "12", "15", "20", "27", "35", "45"),
    "pemm": ("5", "7", "9", "12", "16"),
    "deg": ("mild", "mild", "moderate", "marked"),
    "station": ("subcarinal", "right lower paratracheal", "prevascular", "aortopulmonary window", "left hilar",
                "right hilar"),
}

CT_GROUPS: tuple[str, ...] = ("airway", "mediastinum", "heart", "vessels", "esophagus", "lymph", "lung", "pleura",
                              "abdomen", "bone")
"""Anatomical order of the findings paragraph."""

CT_FINDINGS: dict[str, Finding] = {
    C.MEDICAL_MATERIAL: Finding(
        pos=("A cardiac pacemaker is observed with its leads in the right heart chambers.|Cardiac pacemaker.",
             "Sternotomy wires and a prosthetic aortic valve from previous surgery are observed.|"
             "Postoperative changes after median sternotomy and aortic valve replacement.",
             "A central venous catheter extends from the {side} jugular vein into the superior vena cava.|"
             "Central venous catheter on the {side}.",
             "Stents are observed in the coronary arteries.|Coronary stents.",
             "A port catheter is observed in the {side} hemithorax with its tip in the superior vena cava.|"
             "Port catheter in place."),
        unc=("A linear hyperdensity in the superior vena cava may be compatible with catheter residue.",),
        neg=("No medical material is seen in the thorax.",),
        imp_pos=("Medical material in the thorax.",),
        imp_unc=("Possible catheter residue in the superior vena cava.",),
        group="heart"),
    C.ARTERIAL_WALL_CALCIFICATION: Finding(
        pos=("Calcific atheromatous plaques are observed in the thoracic aorta.",
             "Atherosclerotic calcifications are present in the aortic arch and descending aorta.",
             "{deg} atheromatous plaques are observed in the aorta and its main branches.",
             "Calcified atheromatous plaques in the aorta."),
        unc=("Millimetric hyperdensities in the aortic wall may represent early atherosclerotic changes.",),
        neg=("No atheromatous plaque was observed in the thoracic aorta.",
             "No calcification was observed in the aortic wall."),
        imp_pos=("Atherosclerotic changes in the aorta.", "Aortic atherosclerosis."),
        imp_unc=("Possible early atherosclerotic changes in the aorta.",),
        group="vessels"),
    C.CARDIOMEGALY: Finding(
        pos=("The heart is enlarged.", "Heart contour and size increased.",
             "The cardiothoracic ratio is increased, consistent with cardiomegaly.", "{deg} cardiomegaly is observed."),
        unc=("Heart size is at the upper limit of normal, possibly mildly enlarged.",),
        neg=("Heart contour and size are normal.", "Heart size is within normal limits.",
             "The heart is of normal size."),
        imp_pos=("Cardiomegaly.",), imp_unc=("Borderline heart size.",),
        group="heart"),
    C.PERICARDIAL_EFFUSION: Finding(
        pos=("Pericardial effusion reaching {pemm} mm in thickness is observed.",
             "A small amount of pericardial fluid is seen.", "Pericardial effusion-thickening was observed."),
        unc=("Minimal pericardial thickening is seen, possibly a trace of effusion.",),
        neg=("No pericardial effusion was detected.", "Pericardial effusion-thickening was not observed."),
        imp_pos=("Pericardial effusion.",), imp_unc=("Possible minimal pericardial effusion.",),
        group="heart"),
    C.CORONARY_ARTERY_WALL_CALCIFICATION: Finding(
        pos=("Calcific plaques are observed in the coronary arteries.",
             "Coronary artery calcifications are noted in the LAD and circumflex arteries.",
             "Calcified atheromas in the left anterior descending coronary artery."),
        unc=("A punctate density near the LAD is possibly a coronary calcification.",),
        neg=("No calcification was observed in the coronary arteries.",),
        imp_pos=("Coronary artery calcifications.",), imp_unc=("Possible coronary calcification.",),
        group="heart"),
    C.HIATAL_HERNIA: Finding(
        pos=("A sliding type hiatal hernia is observed at the lower end of the esophagus.",
             "Hiatal hernia is noted.",
             "Part of the stomach herniates into the thorax through the esophageal hiatus."),
        unc=("Minimal herniation at the esophageal hiatus, possibly a small hiatal hernia.",),
        neg=("No hiatal hernia.",),
        imp_pos=("Hiatal hernia.",), imp_unc=("Possible small hiatal hernia.",),
        group="esophagus"),
    C.LYMPHADENOPATHY: Finding(
        pos=("Lymph nodes of pathological size are observed in the mediastinum, the largest measuring "
             "{lnmm}x{lnmm2} mm in the {station} region.",
             "Enlarged lymph nodes are seen in the {side} hilar region.|Hilar lymphadenopathy on the {side}.",
             "Conglomerate lymphadenopathy in the prevascular and paratracheal areas.",
             "A {lnmm} mm lymph node is observed in the {station} station, pathological in size."),
        unc=("Mediastinal lymph nodes are at the upper limit of normal size; reactive versus pathological.",),
        neg=("No lymph node was detected in mediastinal and bilateral hilar pathological size and appearance.",
             "Lymph nodes with a short axis below 10 mm are observed in the mediastinum, not pathological in size.",
             "No lymph node in pathological size and appearance."),
        imp_pos=("Mediastinal lymphadenopathy.", "Pathologically sized lymph nodes in the mediastinum."),
        imp_unc=("Borderline mediastinal lymph nodes.",),
        group="lymph"),
    C.EMPHYSEMA: Finding(
        pos=("Centriacinar emphysematous changes are observed in both lungs.",
             "Paraseptal emphysema in the upper lobes of both lungs.",
             "Bullous emphysematous changes in the {side} upper lobe.", "{deg} emphysema is seen in both lungs."),
        unc=("Minimal hypodense areas in the upper lobes, possibly early emphysema.",),
        neg=("No emphysematous changes.",),
        imp_pos=("Emphysema.",), imp_unc=("Possible early emphysema.",),
        group="lung"),
    C.ATELECTASIS: Finding(
        pos=("Subsegmental atelectasis is observed in the {lobe}.",
             "Linear atelectasis in the lower lobes of both lungs.|Atelectasis in both lower lobes.",
             "Plate-like atelectasis is seen in the {lobe}."),
        unc=("Dependent density in the lower lobes, likely atelectasis.",),
        neg=("No atelectasis.",),
        imp_pos=("Atelectasis in the {lobe}.", "Atelectasis."), imp_unc=("Probable atelectasis in the lower lobes.",),
        group="lung"),
    C.LUNG_NODULE: Finding(
        pos=("A {mm} mm nodule is observed in the {lobe}.",
             "Millimetric nodules in both lungs, the largest {mm} mm in the {lobe}.|Millimetric nodules in both lungs.",
             "A {mm} mm solid nodule in the {lobe}; follow-up is recommended.",
             "A calcified nodule of {mm} mm is observed in the {lobe}."),
        unc=("A {mm} mm density in the {lobe}, nodule versus vessel cross-section.",
             "Questionable nodule of {mm} mm in the {lobe}."),
        neg=("No mass or nodule with suspicious features was observed in both lungs.",
             "No pulmonary nodule was detected."),
        imp_pos=("{mm} mm nodule in the {lobe}.", "Nodule in the {lobe}.", "Pulmonary nodule."),
        imp_unc=("Questionable nodule in the {lobe}.", "Questionable pulmonary nodule."),
        group="lung"),
    C.LUNG_OPACITY: Finding(
        pos=("Ground-glass opacities are observed in the {lobe}.",
             "Patchy ground-glass density increases in both lungs, predominantly peripheral.",
             "A nodular ground-glass opacity in the {lobe}."),
        unc=("Faint density increase in the {lobe}, possibly ground-glass opacity.",),
        neg=("No ground-glass opacity was observed.",),
        imp_pos=("Ground-glass opacities in the {lobe}.", "Ground-glass opacities."),
        imp_unc=("Possible ground-glass opacity.",),
        group="lung"),
    C.PULMONARY_FIBROTIC_SEQUELA: Finding(
        pos=("Fibrotic sequelae (linear densities) are observed in the {lobe}.",
             "Sequelae fibrotic changes in both lungs.",
             "Parenchymal bands compatible with fibrotic sequelae in the {lobe}."),
        unc=("Linear density in the {lobe}, possibly a sequela fibrotic change.",),
        neg=("No fibrotic changes.",),
        imp_pos=("Fibrotic sequelae in the {lobe}.", "Fibrotic sequelae."), imp_unc=("Possible sequela changes.",),
        group="lung"),
    C.PLEURAL_EFFUSION: Finding(
        pos=("Pleural effusion reaching {effmm} mm in thickness is observed on the {side}.",
             "Bilateral pleural effusion, more prominent on the {side}.|Bilateral pleural effusion.",
             "Fluid is seen in the {side} pleural space."),
        unc=("Minimal pleural thickening on the {side}, possibly a trace effusion.",),
        neg=("No pleural effusion was detected.", "Pleural effusion-thickening was not observed."),
        imp_pos=("Pleural effusion on the {side}.", "Pleural effusion."),
        imp_unc=("Possible trace pleural effusion.",),
        group="pleura"),
    C.MOSAIC_ATTENUATION_PATTERN: Finding(
        pos=("Mosaic attenuation pattern is observed in both lungs.",
             "Mosaic perfusion pattern in the lower lobes, suggestive of small airway disease."),
        unc=("Heterogeneous parenchymal density, possibly a mosaic attenuation pattern.",),
        neg=("No mosaic attenuation.",),
        imp_pos=("Mosaic attenuation pattern.",), imp_unc=("Possible mosaic attenuation.",),
        group="lung"),
    C.PERIBRONCHIAL_THICKENING: Finding(
        pos=("Peribronchial thickening is observed in both lower lobes.", "Bronchial wall thickening in the {lobe}.",
             "Peribronchial cuffing in both lungs."),
        unc=("Minimal bronchial wall thickening, possibly peribronchial thickening.",),
        neg=("No peribronchial thickening.",),
        imp_pos=("Peribronchial thickening.",), imp_unc=("Possible peribronchial thickening.",),
        group="lung"),
    C.CONSOLIDATION: Finding(
        pos=("Consolidation with air bronchograms is observed in the {lobe}.", "Consolidative areas in the {lobe}.",
             "Dense consolidation in the {lobe}."),
        unc=("Density increase in the {lobe}, consolidation versus atelectasis.",),
        neg=("No consolidation was observed.",),
        imp_pos=("Consolidation in the {lobe}.", "Consolidation."),
        imp_unc=("Possible consolidation in the {lobe}.", "Possible consolidation."),
        group="lung"),
    C.BRONCHIECTASIS: Finding(
        pos=("Cylindrical bronchiectasis in the {lobe}.", "Traction bronchiectasis in both lower lobes.",
             "Varicose bronchiectatic changes in the {lobe}."),
        unc=("Mild bronchial dilatation in the {lobe}, possibly early bronchiectasis.",),
        neg=("No bronchiectasis.",),
        imp_pos=("Bronchiectasis.",), imp_unc=("Possible early bronchiectasis.",),
        group="lung"),
    C.INTERLOBULAR_SEPTAL_THICKENING: Finding(
        pos=("Interlobular septal thickening is observed in both lungs.",
             "Smooth interlobular septal thickening in the {lobe}."),
        unc=("Possible subtle interlobular septal thickening in the lower lobes.",),
        neg=("No interlobular septal thickening.",),
        imp_pos=("Interlobular septal thickening.",), imp_unc=("Possible septal thickening.",),
        group="lung"),
}

CT_NO_NEGATION_WITH: dict[str, tuple[str, ...]] = {}

CT_COMBOS: tuple[Combo, ...] = (
    Combo(((C.PLEURAL_EFFUSION, NEG), (C.PERICARDIAL_EFFUSION, NEG)),
          ("No pleural or pericardial effusion was detected.",
           "Pleural and pericardial effusion-thickening was not observed."), 0.7),
    Combo(((C.LUNG_NODULE, NEG), (C.LUNG_OPACITY, NEG), (C.CONSOLIDATION, NEG)),
          ("No infiltrative lesion or suspicious nodule was observed in the lung parenchyma.",), 0.5),
    Combo(((C.LUNG_OPACITY, NEG), (C.CONSOLIDATION, NEG)),
          ("No active infiltration or consolidation was detected in the lungs.",), 0.5),
    Combo(((C.PLEURAL_EFFUSION, POS), (C.ATELECTASIS, POS)),
          ("Pleural effusion on the {side} with passive atelectasis in the adjacent lung.",)),
    Combo(((C.LUNG_OPACITY, POS), (C.CONSOLIDATION, POS)),
          ("Ground-glass opacities and consolidation areas in both lungs, predominantly peripheral, "
           "compatible with viral pneumonia.",
           "Peripheral ground-glass opacities accompanied by consolidation in the {lobe}.")),
    Combo(((C.LUNG_OPACITY, POS), (C.INTERLOBULAR_SEPTAL_THICKENING, POS)),
          ("A crazy-paving pattern of ground-glass opacities with interlobular septal thickening is observed.",)),
    Combo(((C.ARTERIAL_WALL_CALCIFICATION, POS), (C.CORONARY_ARTERY_WALL_CALCIFICATION, POS)),
          ("Atherosclerotic calcifications are observed in the aorta and coronary arteries.",), 0.5),
    Combo(((C.ATELECTASIS, UNC), (C.PULMONARY_FIBROTIC_SEQUELA, UNC)),
          ("Linear density in the {lobe}, atelectasis or a fibrotic band.",), 0.9),
)

CT_FILLERS: dict[str, tuple[tuple[float, tuple[str, ...]], ...]] = {
    "airway": (
        (1.0, ("Trachea and both main bronchi are open.", "Trachea and main bronchi are patent.",
               "Trachea and both main bronchi are in normal calibration and no obstructive pathology is seen.")),
        (0.4, ("No obstructive lesion was observed in the bronchial lumens.",))),
    "mediastinum": (
        (0.7, ("Mediastinal structures were evaluated as suboptimal since contrast material was not given.",
               "Mediastinal structures cannot be evaluated optimally because contrast material is not given. "
               "As far as can be observed:")),
        (0.5, ("Thyroid gland is of normal size and density.", "The thyroid lobes are unremarkable.")),
        (0.4, ("The thymus is involuted.", "Mediastinal fat planes are preserved."))),
    "vessels": (
        (0.8, ("Thoracic aorta diameter is normal.", "Calibration of thoracic main vascular structures is natural.",
               "The ascending aorta is of normal diameter.")),
        (0.5, ("The main pulmonary artery diameter is within normal limits.",
               "Pulmonary artery calibration is normal."))),
    "esophagus": (
        (0.75, ("Thoracic esophagus calibration was normal and no significant tumoral wall thickening was detected.",
                "The esophagus is of normal calibre.")),),
    "lung": ((1.0, ("When examined in the lung parenchyma window;", "In the lung parenchyma window;")),),
    "pleura": ((0.3, ("No pneumothorax was observed.", "There is no pneumothorax.")),),
    "abdomen": (
        (0.85, ("Upper abdominal organs included in the sections are normal.",
                "A {mm} mm hypodense lesion in the liver, likely a simple cyst.",
                "Both adrenal glands are normal.", "Gallbladder stones are observed.",
                "No pathology was detected in the upper abdominal organs within the sections.")),
        (0.35, ("Both kidneys are unremarkable in the sections.", "The spleen is of normal size.",
                "Hepatosteatosis is observed in the liver."))),
    "bone": (
        (0.85, ("No lytic-destructive lesion was detected in the bone structures within the sections.",
                "Degenerative changes with osteophytes are observed in the thoracic vertebrae.",
                "Bone structures within the sections are natural.")),
        (0.5, ("Soft tissues of the chest wall and both axillae are natural.",
               "No axillary lymphadenopathy was detected.",
               "Both breasts and axillary regions are unremarkable."))),
}
"""Per group, (chance, alternatives) pairs: with that chance one of the alternatives is written."""

CT_TECHNIQUES: tuple[str, ...] = (
    "Non-contrast thin-section chest CT scans were obtained in the axial plane from the thoracic inlet to the "
    "upper abdomen. Sagittal and coronal reformatted images were evaluated.",
    "Thin-section axial images of the chest were obtained without intravenous contrast material; multiplanar "
    "reformatted images were reviewed.",
    "Contrast-enhanced chest CT was performed in the axial plane with 1.5 mm section thickness; coronal and "
    "sagittal reformats were evaluated.",
)
CT_CONTRAST_TECHNIQUES = frozenset({2})
"""Indices of :data:`CT_TECHNIQUES` with contrast (those skip the 'contrast not given' caveat)."""

CT_NORMAL_IMPRESSIONS: tuple[str, ...] = (
    "No significant pathological finding was detected in the thorax CT.", "Normal chest CT findings.",
    "No acute pathology in the thorax.",
)

CT_CONTEXTS: dict[str, Context] = {
    "normal": Context(0.20, {
        C.MEDICAL_MATERIAL: .1, C.ARTERIAL_WALL_CALCIFICATION: .2, C.CARDIOMEGALY: .1, C.PERICARDIAL_EFFUSION: .1,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: .2, C.HIATAL_HERNIA: .4, C.LYMPHADENOPATHY: .2, C.EMPHYSEMA: .2,
        C.ATELECTASIS: .3, C.LUNG_NODULE: 1, C.LUNG_OPACITY: .1, C.PULMONARY_FIBROTIC_SEQUELA: .4,
        C.PLEURAL_EFFUSION: .05, C.MOSAIC_ATTENUATION_PATTERN: .2, C.PERIBRONCHIAL_THICKENING: .2,
        C.CONSOLIDATION: .05, C.BRONCHIECTASIS: .2, C.INTERLOBULAR_SEPTAL_THICKENING: .05}, (
        "Chest pain.", "Routine check-up.", "Cough.", "Preoperative evaluation."), negation=1.3),
    "smoker-COPD": Context(0.15, {
        C.MEDICAL_MATERIAL: .5, C.ARTERIAL_WALL_CALCIFICATION: 1.5, C.CARDIOMEGALY: .8, C.PERICARDIAL_EFFUSION: .5,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: 1.5, C.HIATAL_HERNIA: 1, C.LYMPHADENOPATHY: 1, C.EMPHYSEMA: 4,
        C.ATELECTASIS: 1, C.LUNG_NODULE: 1.5, C.LUNG_OPACITY: .8, C.PULMONARY_FIBROTIC_SEQUELA: 1,
        C.PLEURAL_EFFUSION: .6, C.MOSAIC_ATTENUATION_PATTERN: 1.5, C.PERIBRONCHIAL_THICKENING: 2.5,
        C.CONSOLIDATION: .6, C.BRONCHIECTASIS: 1.5, C.INTERLOBULAR_SEPTAL_THICKENING: .5}, (
        "Smoker, shortness of breath.", "COPD follow-up.", "Chronic cough, 40 pack-years.")),
    "infection": Context(0.18, {
        C.MEDICAL_MATERIAL: .6, C.ARTERIAL_WALL_CALCIFICATION: .7, C.CARDIOMEGALY: .7, C.PERICARDIAL_EFFUSION: .6,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: .7, C.HIATAL_HERNIA: .8, C.LYMPHADENOPATHY: 1.3, C.EMPHYSEMA: .6,
        C.ATELECTASIS: 1.3, C.LUNG_NODULE: .8, C.LUNG_OPACITY: 2.5, C.PULMONARY_FIBROTIC_SEQUELA: .8,
        C.PLEURAL_EFFUSION: 1, C.MOSAIC_ATTENUATION_PATTERN: 1, C.PERIBRONCHIAL_THICKENING: 1.2,
        C.CONSOLIDATION: 3, C.BRONCHIECTASIS: .8, C.INTERLOBULAR_SEPTAL_THICKENING: 3}, (
        "Fever, cough.", "Covid-19 pneumonia?", "PCR positive, shortness of breath.", "Fever and dyspnea.")),
    "cardiac-vascular": Context(0.14, {
        C.MEDICAL_MATERIAL: 2.5, C.ARTERIAL_WALL_CALCIFICATION: 2.5, C.CARDIOMEGALY: 4, C.PERICARDIAL_EFFUSION: 3,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: 2.8, C.HIATAL_HERNIA: 1.3, C.LYMPHADENOPATHY: 1, C.EMPHYSEMA: .8,
        C.ATELECTASIS: 1.2, C.LUNG_NODULE: .9, C.LUNG_OPACITY: 1, C.PULMONARY_FIBROTIC_SEQUELA: .8,
        C.PLEURAL_EFFUSION: 2.5, C.MOSAIC_ATTENUATION_PATTERN: 1, C.PERIBRONCHIAL_THICKENING: .8,
        C.CONSOLIDATION: .7, C.BRONCHIECTASIS: .6, C.INTERLOBULAR_SEPTAL_THICKENING: 1.5}, (
        "Heart failure.", "Dyspnea, leg edema.", "Coronary artery disease.", "Post-CABG follow-up.")),
    "oncologic": Context(0.10, {
        C.MEDICAL_MATERIAL: 2.5, C.ARTERIAL_WALL_CALCIFICATION: 1, C.CARDIOMEGALY: .6, C.PERICARDIAL_EFFUSION: 1.2,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: .9, C.HIATAL_HERNIA: .8, C.LYMPHADENOPATHY: 3.5, C.EMPHYSEMA: 1,
        C.ATELECTASIS: 1.5, C.LUNG_NODULE: 1.8, C.LUNG_OPACITY: 1, C.PULMONARY_FIBROTIC_SEQUELA: 1,
        C.PLEURAL_EFFUSION: 2.5, C.MOSAIC_ATTENUATION_PATTERN: .5, C.PERIBRONCHIAL_THICKENING: .7,
        C.CONSOLIDATION: 1.2, C.BRONCHIECTASIS: .7, C.INTERLOBULAR_SEPTAL_THICKENING: .8}, (
        "Breast cancer follow-up.", "Lung cancer staging.", "Lymphoma follow-up.", "Colon cancer, metastasis?")),
    "post-covid fibrosis": Context(0.10, {
        C.MEDICAL_MATERIAL: .3, C.ARTERIAL_WALL_CALCIFICATION: .8, C.CARDIOMEGALY: .6, C.PERICARDIAL_EFFUSION: .4,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: .8, C.HIATAL_HERNIA: .8, C.LYMPHADENOPATHY: .8, C.EMPHYSEMA: .6,
        C.ATELECTASIS: 1, C.LUNG_NODULE: 1, C.LUNG_OPACITY: 1.5, C.PULMONARY_FIBROTIC_SEQUELA: 3.5,
        C.PLEURAL_EFFUSION: .3, C.MOSAIC_ATTENUATION_PATTERN: 2, C.PERIBRONCHIAL_THICKENING: 1,
        C.CONSOLIDATION: .5, C.BRONCHIECTASIS: 2.5, C.INTERLOBULAR_SEPTAL_THICKENING: 1.5}, (
        "Post-covid follow-up.", "Persistent dyspnea after Covid-19.", "Covid-19 history, control.")),
    "elderly": Context(0.13, {
        C.MEDICAL_MATERIAL: 1, C.ARTERIAL_WALL_CALCIFICATION: 2.5, C.CARDIOMEGALY: 1.5, C.PERICARDIAL_EFFUSION: 1,
        C.CORONARY_ARTERY_WALL_CALCIFICATION: 2.5, C.HIATAL_HERNIA: 2.2, C.LYMPHADENOPATHY: 1, C.EMPHYSEMA: 1.2,
        C.ATELECTASIS: 1.3, C.LUNG_NODULE: 1.2, C.LUNG_OPACITY: 1, C.PULMONARY_FIBROTIC_SEQUELA: 1.4,
        C.PLEURAL_EFFUSION: 1, C.MOSAIC_ATTENUATION_PATTERN: .8, C.PERIBRONCHIAL_THICKENING: 1,
        C.CONSOLIDATION: .7, C.BRONCHIECTASIS: 1.2, C.INTERLOBULAR_SEPTAL_THICKENING: .8}, (
        "Dyspnea.", "Weakness.", "Fall, chest pain.", "Loss of appetite, weight loss.")),
}


def _ct_target(rate: float, neg: float) -> Target:
    """A CT-RATE target for a positive share ``rate`` after labeller noise, ``neg`` the negated-mention chance.

    8% of mentions are hedged (labelled positive half the time). Noise flips a share ``f`` of mentioned
    cells, so ``rate = pre * (1 - f) + f * neg * (1 - pre)``; solved here for the pre-noise share ``pre``.
    """
    f = LABEL_NOISE
    pre = (rate - f * neg) / (1 - f - f * neg)
    return Target(pre * 0.96, pre * 0.08, neg)


CT_TARGETS: dict[str, Target] = {
    C.MEDICAL_MATERIAL: _ct_target(0.10, 0.05),
    C.ARTERIAL_WALL_CALCIFICATION: _ct_target(0.28, 0.45),
    C.CARDIOMEGALY: _ct_target(0.10, 0.8),
    C.PERICARDIAL_EFFUSION: _ct_target(0.07, 0.7),
    C.CORONARY_ARTERY_WALL_CALCIFICATION: _ct_target(0.25, 0.45),
    C.HIATAL_HERNIA: _ct_target(0.14, 0.3),
    C.LYMPHADENOPATHY: _ct_target(0.25, 0.85),
    C.EMPHYSEMA: _ct_target(0.20, 0.35),
    C.ATELECTASIS: _ct_target(0.25, 0.3),
    C.LUNG_NODULE: _ct_target(0.45, 0.65),
    C.LUNG_OPACITY: _ct_target(0.38, 0.5),
    C.PULMONARY_FIBROTIC_SEQUELA: _ct_target(0.27, 0.25),
    C.PLEURAL_EFFUSION: _ct_target(0.12, 0.85),
    C.MOSAIC_ATTENUATION_PATTERN: _ct_target(0.07, 0.1),
    C.PERIBRONCHIAL_THICKENING: _ct_target(0.10, 0.2),
    C.CONSOLIDATION: _ct_target(0.17, 0.5),
    C.BRONCHIECTASIS: _ct_target(0.10, 0.25),
    C.INTERLOBULAR_SEPTAL_THICKENING: _ct_target(0.08, 0.1),
}


def _check(labels: tuple[str, ...], findings: dict, targets: dict, contexts: dict, combos, skip=()) -> None:
    """Fail at import when a table misses a label or names an unknown one."""
    want = set(labels) - set(skip)
    for name, table in (("findings", findings), ("targets", targets)):
        if set(table) != want:
            raise AssertionError(f"synth {name} table does not cover exactly the labels: {set(table) ^ want}")
    for label, finding in findings.items():
        if not (finding.pos and finding.unc and finding.neg):
            raise AssertionError(f"synth finding {label!r} needs pos, unc and neg phrasings")
        for imp in (finding.imp_pos, finding.imp_unc):
            if imp and not any("{" not in t for t in imp):
                raise AssertionError(f"synth finding {label!r}: each imp_* list needs a template without slots")
    for ctx in contexts.values():
        if not set(ctx.risk) <= set(labels):
            raise AssertionError(f"unknown labels in a context: {set(ctx.risk) - set(labels)}")
    for combo in combos:
        if not {lab for lab, _ in combo.states} <= want:
            raise AssertionError(f"unknown labels in a combo: {combo.states}")


_check(MIMIC_CXR_LABELS, MIMIC_FINDINGS, MIMIC_TARGETS, MIMIC_CONTEXTS, MIMIC_COMBOS, skip=(M.NO_FINDING,))
_check(CT_RATE_LABELS, CT_FINDINGS, CT_TARGETS, CT_CONTEXTS, CT_COMBOS)
