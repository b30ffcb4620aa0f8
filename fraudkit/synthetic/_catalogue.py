"""The price catalogue and the diagnosis (DIP-style) groups the generator draws from.

Everything here is fixed data: the catalogue's *prices* of drugs are drawn from the
run's seed (see :func:`build_catalogue`), but codes, kinds and the diagnosis groups
are the same in every batch, so that detectors can learn them across batches.

Prices are catalogue (regulated maximum) prices for a tertiary hospital, in yuan.
Services are cheaper in lower tiers; drugs are centrally procured (one price), and
retail pharmacies sell at or below it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KIND_NAMES = ("drug", "exam", "treatment", "consumable", "bed", "other")
DRUG, EXAM, TREATMENT, CONSUMABLE, BED, OTHER = range(6)

# --------------------------------------------------------------------------- drugs
#: (class, number of products, median price per pack, price sigma, days one pack lasts,
#:  share of the price inside the catalogue, sold over the counter)
DRUG_CLASSES = (
    ("antibiotic_oral", 12, 25, 0.6, 5, 1.0, False),
    ("antibiotic_iv", 10, 90, 0.8, 1, 1.0, False),
    ("cold_otc", 12, 18, 0.4, 5, 0.6, True),
    ("tcm_patent", 15, 35, 0.6, 7, 0.8, True),
    ("analgesic", 8, 15, 0.5, 7, 1.0, True),
    ("antihypertensive", 12, 30, 0.7, 28, 1.0, False),
    ("antidiabetic_oral", 8, 40, 0.6, 30, 1.0, False),
    ("insulin", 5, 120, 0.4, 20, 1.0, False),
    ("statin", 5, 35, 0.5, 28, 1.0, False),
    ("antiplatelet", 4, 45, 0.6, 28, 1.0, False),
    ("anticoagulant", 4, 180, 0.5, 28, 0.9, False),
    ("ppi_gastric", 8, 30, 0.5, 14, 1.0, False),
    ("bronchodilator", 6, 80, 0.5, 30, 1.0, False),
    ("iv_fluid", 6, 15, 0.4, 1, 1.0, False),
    ("corticosteroid", 4, 12, 0.5, 7, 1.0, False),
    ("vitamin", 8, 25, 0.7, 10, 0.3, True),
    ("diuretic", 4, 15, 0.4, 28, 1.0, False),
    ("heart_failure", 4, 90, 0.5, 28, 1.0, False),
    ("oncology", 8, 2500, 0.8, 21, 0.9, False),
    ("biologic", 4, 1800, 0.6, 28, 0.8, False),
    ("neuro", 6, 60, 0.7, 28, 0.9, False),
    ("antiviral", 4, 120, 0.6, 5, 1.0, False),
    ("renal", 4, 70, 0.5, 28, 1.0, False),
    ("antiemetic", 3, 20, 0.4, 3, 1.0, False),
)
#: Classes whose drugs are resold (回流药): expensive, reimbursed, easy to sell back.
RESALE_CLASSES = ("insulin", "anticoagulant", "oncology", "biologic", "bronchodilator", "heart_failure")

# --------------------------------------------------------------------------- services
#: (code, kind, name, tertiary price in yuan, share inside the catalogue)
SERVICES = (
    ("EXM0001", EXAM, "blood routine", 20, 1.0),
    ("EXM0002", EXAM, "urine routine", 10, 1.0),
    ("EXM0003", EXAM, "stool routine", 8, 1.0),
    ("EXM0004", EXAM, "C-reactive protein", 30, 1.0),
    ("EXM0005", EXAM, "liver function", 60, 1.0),
    ("EXM0006", EXAM, "renal function", 50, 1.0),
    ("EXM0007", EXAM, "electrolytes", 40, 1.0),
    ("EXM0008", EXAM, "blood glucose", 8, 1.0),
    ("EXM0009", EXAM, "HbA1c", 60, 1.0),
    ("EXM0010", EXAM, "lipid panel", 45, 1.0),
    ("EXM0011", EXAM, "coagulation", 70, 1.0),
    ("EXM0012", EXAM, "ECG", 25, 1.0),
    ("EXM0013", EXAM, "chest X-ray", 80, 1.0),
    ("EXM0014", EXAM, "chest CT", 280, 1.0),
    ("EXM0015", EXAM, "head CT", 250, 1.0),
    ("EXM0016", EXAM, "abdominal ultrasound", 120, 1.0),
    ("EXM0017", EXAM, "echocardiography", 220, 1.0),
    ("EXM0018", EXAM, "brain MRI", 650, 1.0),
    ("EXM0019", EXAM, "spine MRI", 650, 1.0),
    ("EXM0020", EXAM, "blood gas", 90, 1.0),
    ("EXM0021", EXAM, "troponin", 110, 1.0),
    ("EXM0022", EXAM, "BNP", 180, 1.0),
    ("EXM0023", EXAM, "thyroid function", 120, 1.0),
    ("EXM0024", EXAM, "tumour markers", 220, 0.8),
    ("EXM0025", EXAM, "biopsy pathology", 350, 1.0),
    ("EXM0026", EXAM, "gastroscopy", 400, 1.0),
    ("EXM0027", EXAM, "colonoscopy", 550, 1.0),
    ("EXM0028", EXAM, "pulmonary function", 150, 1.0),
    ("EXM0029", EXAM, "bone density", 140, 0.5),
    ("EXM0030", EXAM, "influenza antigen", 70, 1.0),
    ("EXM0031", EXAM, "bacterial culture", 120, 1.0),
    ("EXM0032", EXAM, "urine microalbumin", 50, 1.0),
    ("EXM0033", EXAM, "coronary CTA", 900, 1.0),
    ("EXM0034", EXAM, "Holter ECG", 200, 1.0),
    ("EXM0035", EXAM, "EEG", 150, 1.0),
    ("EXM0036", EXAM, "knee X-ray", 70, 1.0),
    ("EXM0037", EXAM, "obstetric ultrasound", 150, 1.0),
    ("EXM0038", EXAM, "slit-lamp and ocular biometry", 180, 1.0),
    ("EXM0039", EXAM, "liver and renal function panel", 100, 1.0),
    ("EXM0040", EXAM, "basic metabolic panel (renal, electrolytes, glucose)", 85, 1.0),
    ("TRT0001", TREATMENT, "general consultation", 15, 1.0),
    ("TRT0002", TREATMENT, "chronic-disease consultation", 20, 1.0),
    ("TRT0003", TREATMENT, "level II nursing (day)", 25, 1.0),
    ("TRT0004", TREATMENT, "level I nursing (day)", 40, 1.0),
    ("TRT0005", TREATMENT, "IV infusion", 12, 1.0),
    ("TRT0006", TREATMENT, "injection", 5, 1.0),
    ("TRT0007", TREATMENT, "physiotherapy", 60, 1.0),
    ("TRT0008", TREATMENT, "acupuncture", 45, 1.0),
    ("TRT0009", TREATMENT, "haemodialysis", 450, 1.0),
    ("TRT0010", TREATMENT, "oxygen therapy (day)", 30, 1.0),
    ("TRT0011", TREATMENT, "nebulisation", 25, 1.0),
    ("TRT0012", TREATMENT, "laparoscopic appendectomy", 2500, 1.0),
    ("TRT0013", TREATMENT, "laparoscopic cholecystectomy", 3000, 1.0),
    ("TRT0014", TREATMENT, "percutaneous coronary intervention", 6000, 1.0),
    ("TRT0015", TREATMENT, "hip replacement", 8000, 1.0),
    ("TRT0016", TREATMENT, "caesarean section", 2200, 1.0),
    ("TRT0017", TREATMENT, "vaginal delivery", 1200, 1.0),
    ("TRT0018", TREATMENT, "cataract phacoemulsification", 1800, 1.0),
    ("TRT0019", TREATMENT, "chemotherapy administration", 300, 1.0),
    ("TRT0020", TREATMENT, "wound dressing", 30, 1.0),
    ("TRT0021", TREATMENT, "rehabilitation session", 80, 1.0),
    ("TRT0022", TREATMENT, "transurethral resection of prostate", 4000, 1.0),
    ("TRT0023", TREATMENT, "intravenous thrombolysis", 3500, 1.0),
    ("CSM0001", CONSUMABLE, "syringe", 1, 1.0),
    ("CSM0002", CONSUMABLE, "infusion set", 6, 1.0),
    ("CSM0003", CONSUMABLE, "dressing pack", 12, 1.0),
    ("CSM0004", CONSUMABLE, "urinary catheter", 40, 1.0),
    ("CSM0005", CONSUMABLE, "suture", 60, 1.0),
    ("CSM0006", CONSUMABLE, "laparoscopic trocar", 600, 0.8),
    ("CSM0007", CONSUMABLE, "coronary stent", 750, 0.8),
    ("CSM0008", CONSUMABLE, "guide wire", 400, 0.8),
    ("CSM0009", CONSUMABLE, "balloon catheter", 900, 0.8),
    ("CSM0010", CONSUMABLE, "hip prosthesis", 7000, 0.7),
    ("CSM0011", CONSUMABLE, "intraocular lens", 800, 0.7),
    ("CSM0012", CONSUMABLE, "surgical stapler", 500, 0.8),
    ("CSM0013", CONSUMABLE, "oxygen mask", 15, 1.0),
    ("CSM0014", CONSUMABLE, "IV cannula", 8, 1.0),
    ("BED0001", BED, "general ward bed (day)", 40, 1.0),
    ("BED0002", BED, "double room bed (day)", 70, 1.0),
    ("BED0003", BED, "intensive care bed (day)", 600, 1.0),
    ("OTH0001", OTHER, "health supplement", 80, 0.0),
    ("OTH0002", OTHER, "blood-pressure meter", 200, 0.0),
    ("OTH0003", OTHER, "nutrition powder", 120, 0.0),
    ("OTH0004", OTHER, "private room surcharge", 150, 0.0),
    ("OTH0005", OTHER, "herbal decoction service", 30, 0.0),
    ("OTH0006", OTHER, "cosmetic skin care", 150, 0.0),
    ("OTH0007", OTHER, "massage", 100, 0.0),
    ("OTH0008", OTHER, "glucose test strips", 60, 0.0),
)
#: Packages and the items they contain (billing both is over-standard charging).
PANELS = {"EXM0039": ("EXM0005", "EXM0006"), "EXM0040": ("EXM0006", "EXM0007", "EXM0008")}
CONSULT, CHRONIC_CONSULT, NURSING_II, NURSING_I = "TRT0001", "TRT0002", "TRT0003", "TRT0004"
GENERAL_BED, ICU_BED = "BED0001", "BED0003"

# --------------------------------------------------------------------------- diagnosis groups
# icd, family, severity, weights (outpatient, chronic, inpatient), age weights (child, adult, elder),
# sex ("" both), mean length of stay, mild (fit for fake admissions), exams, outpatient drug classes,
# inpatient daily drug classes, daily treatment, procedure and its consumables, outpatient treatment
_D = (
    ("J06.9", "resp", 0, (10, 0, 0.4), (3, 1, 0.8), "", 4, True,
     ("EXM0001", "EXM0004", "EXM0030"), ("cold_otc", "antibiotic_oral", "tcm_patent"), ("iv_fluid", "antibiotic_iv"), "TRT0005", (), ""),
    ("J20.9", "resp", 0, (6, 0, 1.0), (2, 1, 1), "", 6, True,
     ("EXM0001", "EXM0004", "EXM0013", "EXM0030"), ("antibiotic_oral", "cold_otc", "tcm_patent"), ("antibiotic_iv", "iv_fluid", "corticosteroid"), "TRT0011", (), ""),
    ("J18.9", "resp", 1, (1.5, 0, 6), (2, 1, 2.5), "", 9, False,
     ("EXM0001", "EXM0004", "EXM0014", "EXM0013", "EXM0020", "EXM0039", "EXM0007", "EXM0031"),
     ("antibiotic_oral",), ("antibiotic_iv", "iv_fluid", "corticosteroid", "bronchodilator"), "TRT0005", (), ""),
    ("J96.0", "resp", 2, (0, 0, 1.0), (0.3, 0.5, 3), "", 14, False,
     ("EXM0020", "EXM0014", "EXM0022", "EXM0001", "EXM0004", "EXM0039", "EXM0007", "EXM0031", "EXM0011"),
     (), ("antibiotic_iv", "iv_fluid", "corticosteroid", "bronchodilator"), "TRT0010", ("CSM0013",), ""),
    ("J44.9", "resp", 0, (1, 2, 0.5), (0, 0.3, 3), "", 8, False,
     ("EXM0028", "EXM0013", "EXM0001"), ("bronchodilator", "corticosteroid"), ("bronchodilator", "corticosteroid", "iv_fluid"), "TRT0011", (), ""),
    ("J44.1", "resp", 1, (1, 0, 3), (0, 0.3, 3), "", 10, False,
     ("EXM0020", "EXM0014", "EXM0001", "EXM0004", "EXM0028", "EXM0007"),
     ("bronchodilator", "antibiotic_oral"), ("antibiotic_iv", "bronchodilator", "corticosteroid", "iv_fluid"), "TRT0010", (), ""),
    ("I10", "circ", 0, (5, 10, 1.0), (0, 1, 3), "", 7, True,
     ("EXM0012", "EXM0006", "EXM0010", "EXM0008"), ("antihypertensive", "diuretic"), ("antihypertensive", "iv_fluid"), "", (), ""),
    ("I11.9", "circ", 1, (1, 2, 1.5), (0, 0.5, 3), "", 9, False,
     ("EXM0012", "EXM0017", "EXM0006", "EXM0010", "EXM0022"), ("antihypertensive", "diuretic"), ("antihypertensive", "diuretic", "iv_fluid"), "", (), ""),
    ("I50.9", "circ", 2, (0.5, 1, 2.5), (0, 0.3, 3), "", 10, False,
     ("EXM0022", "EXM0017", "EXM0012", "EXM0013", "EXM0007", "EXM0006", "EXM0001"), ("heart_failure", "diuretic"),
     ("heart_failure", "diuretic", "iv_fluid"), "TRT0010", (), ""),
    ("I25.1", "circ", 0, (1.5, 4, 2.0), (0, 0.5, 3), "", 8, False,
     ("EXM0012", "EXM0010", "EXM0034", "EXM0017"), ("statin", "antiplatelet"), ("statin", "antiplatelet", "iv_fluid"), "", (), ""),
    ("I21.9", "circ", 2, (0, 0, 1.0), (0, 0.6, 2), "", 10, False,
     ("EXM0021", "EXM0012", "EXM0017", "EXM0011", "EXM0001", "EXM0006", "EXM0010", "EXM0033"),
     (), ("antiplatelet", "anticoagulant", "statin", "iv_fluid"), "", ("CSM0007", "CSM0008", "CSM0009"), ""),
    ("I63.9", "cerebro", 1, (0.5, 1, 3), (0, 0.4, 3), "", 12, False,
     ("EXM0015", "EXM0018", "EXM0012", "EXM0011", "EXM0010", "EXM0001", "EXM0008"), ("antiplatelet", "statin"),
     ("antiplatelet", "statin", "neuro", "iv_fluid"), "TRT0021", (), ""),
    ("E11.9", "endo", 0, (3, 8, 1.0), (0.05, 1, 2), "", 8, True,
     ("EXM0008", "EXM0009", "EXM0006", "EXM0032"), ("antidiabetic_oral",), ("antidiabetic_oral", "iv_fluid"), "", (), ""),
    ("E11.2", "endo", 1, (0.5, 2, 1.5), (0, 0.7, 2), "", 10, False,
     ("EXM0040", "EXM0009", "EXM0032", "EXM0002"), ("antidiabetic_oral", "insulin", "renal"),
     ("insulin", "renal", "iv_fluid"), "", (), ""),
    ("E11.7", "endo", 2, (0, 0.5, 0.8), (0, 0.5, 2), "", 12, False,
     ("EXM0008", "EXM0009", "EXM0006", "EXM0032", "EXM0017", "EXM0018", "EXM0005"), ("insulin",),
     ("insulin", "renal", "neuro", "iv_fluid"), "", (), ""),
    ("K29.7", "dig", 0, (6, 0, 0.8), (0.3, 1, 1), "", 5, True,
     ("EXM0001", "EXM0026", "EXM0005"), ("ppi_gastric",), ("ppi_gastric", "iv_fluid"), "TRT0005", (), ""),
    ("K92.2", "dig", 2, (0, 0, 0.8), (0, 0.7, 2), "", 9, False,
     ("EXM0026", "EXM0001", "EXM0011", "EXM0005", "EXM0007", "EXM0016"), (), ("ppi_gastric", "iv_fluid"), "TRT0005", (), ""),
    ("K35.8", "dig", 1, (0.2, 0, 2.0), (1.5, 1, 0.5), "", 6, False,
     ("EXM0001", "EXM0004", "EXM0016", "EXM0011", "EXM0002"), (), ("antibiotic_iv", "iv_fluid", "analgesic"), "",
     ("TRT0012", "CSM0006", "CSM0005"), ""),
    ("K80.2", "dig", 1, (0.5, 0, 1.5), (0, 1, 1.5), "", 7, False,
     ("EXM0001", "EXM0016", "EXM0005", "EXM0011"), ("ppi_gastric",), ("antibiotic_iv", "iv_fluid", "analgesic"), "",
     ("TRT0013", "CSM0006", "CSM0012"), ""),
    ("A09", "dig", 0, (4, 0, 1.0), (3, 1, 1), "", 4, True,
     ("EXM0001", "EXM0003", "EXM0007"), ("antiemetic", "antibiotic_oral"), ("iv_fluid", "antiemetic"), "TRT0005", (), ""),
    ("N18.9", "renal", 1, (0.3, 1.5, 1.0), (0, 0.7, 2), "", 10, False,
     ("EXM0006", "EXM0007", "EXM0001", "EXM0002", "EXM0032"), ("renal", "antihypertensive"), ("renal", "iv_fluid"), "TRT0009", (), "TRT0009"),
    ("N39.0", "renal", 0, (3, 0, 0.5), (1, 1, 1.2), "", 5, True,
     ("EXM0002", "EXM0001", "EXM0031"), ("antibiotic_oral",), ("antibiotic_iv", "iv_fluid"), "TRT0005", (), ""),
    ("M54.5", "msk", 0, (5, 0, 0.8), (0, 1, 1.2), "", 8, True,
     ("EXM0019", "EXM0001"), ("analgesic", "tcm_patent"), ("analgesic", "tcm_patent"), "TRT0007", (), "TRT0008"),
    ("M17.9", "msk", 0, (2, 0.5, 0.5), (0, 0.4, 2), "", 9, False,
     ("EXM0036", "EXM0001", "EXM0029"), ("analgesic", "tcm_patent"), ("analgesic", "tcm_patent"), "TRT0007", (), "TRT0007"),
    ("S72.0", "msk", 2, (0, 0, 0.8), (0, 0.2, 3), "", 14, False,
     ("EXM0013", "EXM0014", "EXM0001", "EXM0011", "EXM0012", "EXM0006"), (), ("analgesic", "anticoagulant", "antibiotic_iv", "iv_fluid"), "TRT0021",
     ("TRT0015", "CSM0010", "CSM0005"), ""),
    ("M06.9", "msk", 1, (0.5, 0.8, 0.3), (0, 1, 1), "", 9, False,
     ("EXM0004", "EXM0001", "EXM0005"), ("biologic", "analgesic"), ("biologic", "corticosteroid"), "", (), ""),
    ("C34.9", "onco", 2, (0.2, 0.5, 1.0), (0, 0.4, 2), "", 10, False,
     ("EXM0014", "EXM0024", "EXM0025", "EXM0001", "EXM0005", "EXM0006"), ("oncology",), ("oncology", "antiemetic", "iv_fluid"), "TRT0019", (), "TRT0019"),
    ("C50.9", "onco", 2, (0.2, 0.5, 0.8), (0, 1, 1), "F", 8, False,
     ("EXM0024", "EXM0025", "EXM0016", "EXM0001", "EXM0005"), ("oncology",), ("oncology", "antiemetic", "iv_fluid"), "TRT0019", (), "TRT0019"),
    ("O80", "obst", 0, (0, 0, 1.5), (0, 1, 0), "F", 3, False,
     ("EXM0037", "EXM0001", "EXM0011", "EXM0002"), (), ("iv_fluid", "antibiotic_oral"), "", ("TRT0017", "CSM0005"), ""),
    ("O82", "obst", 1, (0, 0, 1.2), (0, 1, 0), "F", 5, False,
     ("EXM0037", "EXM0001", "EXM0011", "EXM0002"), (), ("antibiotic_iv", "iv_fluid", "analgesic"), "", ("TRT0016", "CSM0005", "CSM0004"), ""),
    ("N76.0", "obst", 0, (2, 0, 0), (0.1, 1, 0.5), "F", 3, False,
     ("EXM0002", "EXM0031"), ("antibiotic_oral",), (), "", (), ""),
    ("N40", "renal", 0, (1.5, 0.5, 0.5), (0, 0.2, 3), "M", 7, False,
     ("EXM0016", "EXM0002", "EXM0024"), ("renal",), ("antibiotic_iv", "iv_fluid"), "", ("TRT0022", "CSM0004"), ""),
    ("H25.9", "eye", 0, (0.5, 0, 1.0), (0, 0.2, 3), "", 2, False,
     ("EXM0038", "EXM0001", "EXM0012"), (), ("antibiotic_oral",), "", ("TRT0018", "CSM0011"), ""),
    ("G43.9", "neuro", 0, (1.5, 0, 0.2), (0.3, 1, 0.6), "", 4, False,
     ("EXM0015", "EXM0035"), ("analgesic", "neuro"), ("analgesic", "neuro", "iv_fluid"), "", (), ""),
    ("F32.9", "neuro", 0, (1, 0.5, 0.2), (0.1, 1, 0.8), "", 14, False,
     ("EXM0023", "EXM0001"), ("neuro",), ("neuro",), "", (), ""),
    ("L30.9", "skin", 0, (2, 0, 0), (1.5, 1, 1), "", 3, False,
     ("EXM0001",), ("corticosteroid", "antibiotic_oral"), (), "", (), ""),
)

#: Upcoding: diagnosis -> the richer group it is billed as.
UPCODE_TO = {
    "J06.9": "J18.9", "J20.9": "J18.9", "J18.9": "J96.0", "J44.9": "J44.1", "J44.1": "J96.0",
    "I10": "I11.9", "I11.9": "I50.9", "I25.1": "I21.9", "E11.9": "E11.2", "E11.2": "E11.7",
    "K29.7": "K92.2", "A09": "K92.2", "M17.9": "S72.0", "N39.0": "N18.9",
}


@dataclass(frozen=True)
class Catalogue:
    """Items (codes, kinds, prices in cents per price level) and the diagnosis groups."""

    codes: np.ndarray  # str, one per item
    kind: np.ndarray  # int8 index into KIND_NAMES
    price: np.ndarray  # int64 cents, tertiary (catalogue maximum) price
    eligible_share: np.ndarray  # float, part of the amount inside the insurance catalogue
    drug_class: np.ndarray  # int16 class index, -1 for non-drugs
    days_per_pack: np.ndarray  # int16 days of treatment one unit lasts (drugs)
    otc: np.ndarray  # bool: drug sold over the counter
    swap_to: np.ndarray  # int: the most expensive item of the same drug class (drug swapping)
    class_names: tuple[str, ...]
    # diagnosis groups
    icd: np.ndarray  # str
    family: np.ndarray  # str
    severity: np.ndarray  # int8
    care_weight: np.ndarray  # (n_diag, 3) outpatient, chronic, inpatient
    age_weight: np.ndarray  # (n_diag, 3) child, adult, elder
    sex_ok: np.ndarray  # (n_diag, 2) allowed for M, F
    los: np.ndarray  # float mean length of stay
    mild: np.ndarray  # bool
    exams: np.ndarray  # (n_diag, E) item index, padded -1
    n_exams: np.ndarray
    out_drugs: np.ndarray  # (n_diag, K) item index, padded
    n_out_drugs: np.ndarray
    inp_drugs: np.ndarray
    n_inp_drugs: np.ndarray
    daily_treatment: np.ndarray  # item index or -1
    procedure: np.ndarray  # (n_diag, 3) item index, padded -1 (treatment + consumables)
    out_treatment: np.ndarray  # item index or -1
    upcode_to: np.ndarray  # diag index or -1

    def item(self, code: str) -> int:
        return int(np.flatnonzero(self.codes == code)[0])


def _padded(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(1, max(len(r) for r in rows))
    out = np.full((len(rows), width), -1, dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out, np.array([len(r) for r in rows], dtype=np.int32)


def build_catalogue(rng: np.random.Generator) -> Catalogue:
    """Build the catalogue; drug prices are drawn from ``rng`` (lognormal by class)."""
    codes, kind, price, share, dclass, days, otc = [], [], [], [], [], [], []
    class_members: dict[str, list[int]] = {}
    for ci, (name, n, median, sigma, per_pack, elig, is_otc) in enumerate(DRUG_CLASSES):
        prices = np.maximum(0.5, median * np.exp(sigma * rng.standard_normal(n)))
        for p in prices:
            class_members.setdefault(name, []).append(len(codes))
            codes.append(f"DRG{len(codes) + 1:04d}")
            kind.append(DRUG)
            price.append(int(round(p * 100)))
            share.append(elig if rng.random() < 0.85 else min(elig, 0.9))
            dclass.append(ci)
            days.append(per_pack)
            otc.append(is_otc)
    for code, k, _name, p, elig in SERVICES:
        codes.append(code)
        kind.append(k)
        price.append(int(round(p * 100)))
        share.append(elig)
        dclass.append(-1)
        days.append(0)
        otc.append(False)
    codes_a = np.array(codes)
    price_a = np.array(price, dtype=np.int64)
    dclass_a = np.array(dclass, dtype=np.int16)
    swap_to = np.arange(len(codes))
    for members in class_members.values():
        top = members[int(np.argmax(price_a[members]))]
        swap_to[members] = top
    index = {c: i for i, c in enumerate(codes)}

    def drugs_of(classes) -> list[int]:
        return [m for c in classes for m in class_members[c]]

    exams, out_drugs, inp_drugs, procs = [], [], [], []
    daily, out_trt = [], []
    for row in _D:
        exams.append([index[c] for c in row[8]])
        out_drugs.append(drugs_of(row[9]))
        inp_drugs.append(drugs_of(row[10]))
        daily.append(index[row[11]] if row[11] else -1)
        procs.append([index[c] for c in row[12]])
        out_trt.append(index[row[13]] if row[13] else -1)
    icd = np.array([r[0] for r in _D])
    diag_index = {c: i for i, c in enumerate(icd)}
    ex, nex = _padded(exams)
    od, nod = _padded(out_drugs)
    idr, nid = _padded(inp_drugs)
    pr, _ = _padded(procs)
    sex_ok = np.array([[r[5] in ("", "M"), r[5] in ("", "F")] for r in _D])
    return Catalogue(
        codes=codes_a, kind=np.array(kind, dtype=np.int8), price=price_a, eligible_share=np.array(share),
        drug_class=dclass_a, days_per_pack=np.array(days, dtype=np.int16), otc=np.array(otc), swap_to=swap_to,
        class_names=tuple(c[0] for c in DRUG_CLASSES),
        icd=icd, family=np.array([r[1] for r in _D]), severity=np.array([r[2] for r in _D], dtype=np.int8),
        care_weight=np.array([r[3] for r in _D], dtype=float), age_weight=np.array([r[4] for r in _D], dtype=float),
        sex_ok=sex_ok, los=np.array([r[6] for r in _D], dtype=float), mild=np.array([r[7] for r in _D]),
        exams=ex, n_exams=nex, out_drugs=od, n_out_drugs=nod, inp_drugs=idr, n_inp_drugs=nid,
        daily_treatment=np.array(daily), procedure=pr, out_treatment=np.array(out_trt),
        upcode_to=np.array([diag_index.get(UPCODE_TO.get(c, ""), -1) for c in icd]),
    )


def resale_drugs(cat: Catalogue) -> np.ndarray:
    """Item indices of drugs worth reselling."""
    classes = [cat.class_names.index(c) for c in RESALE_CLASSES]
    return np.flatnonzero(np.isin(cat.drug_class, classes))


def otc_drugs(cat: Catalogue) -> np.ndarray:
    return np.flatnonzero((cat.kind == DRUG) & cat.otc)
