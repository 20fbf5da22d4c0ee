"""Label schemas of the supported datasets (column names exactly as the datasets ship them)."""

from __future__ import annotations

MIMIC_CXR_LABELS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Lesion",
    "Lung Opacity",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)

CT_RATE_LABELS: tuple[str, ...] = (
    "Medical material",
    "Arterial wall calcification",
    "Cardiomegaly",
    "Pericardial effusion",
    "Coronary artery wall calcification",
    "Hiatal hernia",
    "Lymphadenopathy",
    "Emphysema",
    "Atelectasis",
    "Lung nodule",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Pleural effusion",
    "Mosaic attenuation pattern",
    "Peribronchial thickening",
    "Consolidation",
    "Bronchiectasis",
    "Interlobular septal thickening",
)

# Open-i's MeSH tags are mapped to MIMIC-CXR's 14 CheXpert labels (radcore/data/openi_labels.py).
LABELS: dict[str, tuple[str, ...]] = {"mimic-cxr": MIMIC_CXR_LABELS, "ct-rate": CT_RATE_LABELS,
                                      "openi": MIMIC_CXR_LABELS}
DATASETS: tuple[str, ...] = tuple(LABELS)


def labels_for(dataset: str) -> tuple[str, ...]:
    """Label names of ``dataset``; raises with the known names on a typo."""
    try:
        return LABELS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}") from None
