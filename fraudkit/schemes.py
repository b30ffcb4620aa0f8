"""The fraud schemes fraudkit knows, by the names used in labels, reasons and reports.

Labels written by other programs may use other free strings; evaluation then
reports recall per whatever names it finds. fraudkit's own generator writes these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scheme:
    name: str
    title: str
    actors: tuple[str, ...]  # who commits it: "provider", "patient"
    signal: str  # what it leaves in a batch (from shared/DOMAIN.md)


SCHEMES: dict[str, Scheme] = {s.name: s for s in (
    Scheme("phantom_services", "Phantom (fictitious) services", ("provider",),
           "identical exam lines across many patients; services with no plausible delivery"),
    Scheme("fake_admission", "Fake / induced admissions", ("provider", "patient"),
           "admission-rate outliers; groups admitted and discharged together; mild diagnoses with long stays"),
    Scheme("bed_hanging", "Bed hanging", ("provider",),
           "stay days with no daily items; the patient's card used elsewhere during the stay"),
    Scheme("decomposed_stay", "Decomposed hospitalisation", ("provider",),
           "readmission for the same diagnosis within 15 days"),
    Scheme("upcoding", "Upcoding", ("provider",),
           "diagnosis group richer than the items support; cost jumps to a richer group"),
    Scheme("drug_swapping", "Drug / item swapping", ("provider",),
           "expensive catalogue codes billed for cheap items; price at the regulated maximum"),
    Scheme("over_charging", "Repeated and over-standard charging", ("provider",),
           "the same item twice on one day; unit price above the catalogue price"),
    Scheme("card_lending", "Card lending / identity fraud", ("patient",),
           "one card used at distant places the same day; sex- or age-implausible items"),
    Scheme("drug_reselling", "Drug reselling and doctor shopping", ("patient", "provider"),
           "days of drug supplied far beyond days elapsed, across many pharmacies and doctors"),
    Scheme("collusion_ring", "Institution–pharmacy collusion ring", ("provider", "patient"),
           "a dense block of patients, doctors, a clinic and pharmacies sharing far more than chance"),
)}

__all__ = ["SCHEMES", "Scheme"]
