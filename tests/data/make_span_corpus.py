"""Regenerate tests/data/span_corpus.jsonl (run: uv run python tests/data/make_span_corpus.py).

Operational messages in ht, fr, en and sw, written as templates whose slots hold protected
values; the expected spans are the slot values, in order, so the corpus states what *should*
be protected independently of the detector under test. The template text itself carries no
digits, callsigns or glossary terms. A few hand-written messages cover tricky adjacency.
Deterministic (fixed seed); the glossary is tests/data/span_glossary.json.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

POOLS: dict[str, list[str]] = {
    "N": ["2", "3", "14", "12", "3.5", "1,200", "45", "7", "150", "2,5", "40%", "500m"],
    "T": ["14:30", "06:00", "2h30", "14h30", "18h", "8:15", "21:45", "05:10"],
    "D": ["26/11/2026", "2026-11-26", "03/12/2026", "2026-12-01", "15.01.2027"],
    "C": ["18.5392,-72.3364", "18.5392, -72.3364", "18.4567,-72.2891", "19.4501, -72.6823"],
    "G": ["18Q TA 12345 67890", "18QTA1234567890", "18Q TB 4521 8873", "18Q UA 123 456"],
    "CS": [
        "KE-3",
        "PNH-UDMO-2",
        "Alpha_2",
        "BRAVO-1",
        "MSS-KE-12",
        "KE-7",
        "Delta_4",
        "CHARLIE-2",
        "KE3",
        "team_b",
    ],
    "M": ["@ops_center", "@KE_3_lead", "@cmdt_joseph", "@bravo1"],
    "H": ["#SITREP", "#Kenscoff", "#urgent", "#KE_3"],
    "U": [
        "https://maps.example.org/p/4412",
        "http://10.0.0.5/sitrep?id=77&d=2026-11-26",
        "www.pnh.ht/avis",
        "https://example.org/a_b/c-d",
    ],
    "E": ["ops@mss-haiti.org", "sitrep.ke3@mss.example.org", "pnh_udmo@pnh.ht"],
    "P": ["+509 3712 3456", "+254 712 345 678", "+50937123456", "+254712345678"],
    "EM": ["🚨", "👍🏽", "✅", "⚠️", "🇭🇹", "👮🏾‍♂️", "🚑🚑"],
    "GL": [
        "Kenscoff",
        "Furcy",
        "Artibonite",
        "Croix-des-Bouquets",
        "Port-au-Prince",
        "PNH",
        "MSS",
        "RNDDH",
        "BOID",
    ],
    "L": ["[1]", "[2]", "[0]", "[ 3 ]"],
}

TEMPLATES: dict[str, list[str]] = {
    "ht": [
        "Inite {CS} rive {GL} a {T}, bezwen ranfò",
        "Gen {N} blese nan {GL}, voye anbilans {EM}",
        "Pozisyon nou: {C}",
        "Nou nan kadrilaj {G}, n ap tann lòd",
        "Rele {M} sou {P} si gen pwoblèm",
        "Tout rapò yo la: {U}",
        "Voye rapò a bay {E} anvan {T}",
        "{EM} Bandi yo bloke wout {GL} depi {T}",
        "Reyinyon an ap fèt {D} a {T} nan baz {GL}",
        "Ekip {CS} ak {CS} ap deplase sou {GL}",
        "Nou arete {N} sispèk, nou jwenn {N} zam",
        "Mete {H} nan tout rapò ou yo",
        "Gade pwen {L} nan lis la anvan ou deplase",
        "{GL} mande {N} machin pou evakye moun yo",
        "Konvwa {CS} pati {GL} a {T} {EM}",
        "Nou bezwen {N} galon dlo nan pozisyon {C}",
        "Mwen resevwa mesaj {M} la, n ap deplase kounye a",
        "Patwouy {CS} fini, pa gen anyen pou siyale {EM}",
        "Sipèvizè a di rele {P} oswa ekri {E}",
        "Sitiyasyon an kalm nan {GL} depi {D}",
    ],
    "fr": [
        "L'unité {CS} est arrivée à {GL} à {T}, demande des renforts",
        "{N} blessés à {GL}, envoyez une ambulance {EM}",
        "Notre position : {C}",
        "Nous sommes au carroyage {G}, en attente d'ordres",
        "Appelez {M} au {P} en cas de problème",
        "Tous les rapports sont ici : {U}",
        "Envoyez le rapport à {E} avant {T}",
        "{EM} Les gangs bloquent la route de {GL} depuis {T}",
        "Réunion le {D} à {T} à la base de {GL}",
        "Les équipes {CS} et {CS} se déplacent vers {GL}",
        "{N} suspects interpellés, {N} armes saisies",
        "Ajoutez {H} à tous vos rapports",
        "Voir le point {L} de la liste avant de partir",
        "La {GL} demande {N} véhicules pour l'évacuation",
        "Le convoi {CS} a quitté {GL} à {T} {EM}",
        "Il nous faut {N} litres d'eau à la position {C}",
        "Message de {M} bien reçu, nous partons maintenant",
        "Patrouille {CS} terminée, rien à signaler {EM}",
        "Le superviseur demande d'appeler le {P} ou d'écrire à {E}",
        "Situation calme à {GL} depuis le {D}",
    ],
    "en": [
        "Unit {CS} arrived in {GL} at {T}, requesting backup",
        "{N} wounded in {GL}, send an ambulance {EM}",
        "Our position: {C}",
        "We are at grid {G}, awaiting orders",
        "Call {M} on {P} if there is a problem",
        "All reports are here: {U}",
        "Send the report to {E} before {T}",
        "{EM} Gangs are blocking the {GL} road since {T}",
        "Briefing on {D} at {T} at the {GL} base",
        "Teams {CS} and {CS} are moving towards {GL}",
        "{N} suspects detained, {N} weapons seized",
        "Add {H} to all your reports",
        "See item {L} on the list before moving",
        "{GL} requests {N} vehicles for the evacuation",
        "Convoy {CS} left {GL} at {T} {EM}",
        "We need {N} litres of water at position {C}",
        "Message from {M} received, moving now",
        "Patrol {CS} complete, nothing to report {EM}",
        "The supervisor says call {P} or write to {E}",
        "Situation calm in {GL} since {D}",
    ],
    "sw": [
        "Kikosi {CS} kimefika {GL} saa {T}, tunaomba msaada",
        "Majeruhi {N} huko {GL}, tumeni gari la wagonjwa {EM}",
        "Mahali tulipo: {C}",
        "Tuko kwenye gridi {G}, tunasubiri maagizo",
        "Mpigie {M} kwa {P} kukiwa na tatizo",
        "Ripoti zote ziko hapa: {U}",
        "Tuma ripoti kwa {E} kabla ya saa {T}",
        "{EM} Magenge yamefunga barabara ya {GL} tangu saa {T}",
        "Mkutano tarehe {D} saa {T} kwenye kambi ya {GL}",
        "Vikosi {CS} na {CS} vinaelekea {GL}",
        "Washukiwa {N} wamekamatwa, silaha {N} zimenaswa",
        "Ongeza {H} kwenye ripoti zenu zote",
        "Angalia kipengele {L} kwenye orodha kabla ya kuondoka",
        "{GL} inaomba magari {N} kwa ajili ya kuwahamisha watu",
        "Msafara {CS} umeondoka {GL} saa {T} {EM}",
        "Tunahitaji lita {N} za maji mahali {C}",
        "Ujumbe wa {M} umepokelewa, tunaondoka sasa",
        "Doria ya {CS} imekamilika, hakuna la kuripoti {EM}",
        "Msimamizi anasema mpigie {P} au mwandikie {E}",
        "Hali ni shwari {GL} tangu tarehe {D}",
    ],
}

# Hand-written: adjacency and punctuation that trips naive patterns.
EXTRA: list[dict[str, object]] = [
    {"text": "KE-3/14:30 Kenscoff.", "lang": "en", "spans": ["KE-3", "14:30", "Kenscoff"]},
    {"text": "(PNH-UDMO-2) rive.", "lang": "ht", "spans": ["PNH-UDMO-2"]},
    {
        "text": "Alpha_2, Bravo_3 et Delta_4 sont prêts.",
        "lang": "fr",
        "spans": ["Alpha_2", "Bravo_3", "Delta_4"],
    },
    {"text": "Coordonnées 18.5392,-72.3364.", "lang": "fr", "spans": ["18.5392,-72.3364"]},
    {"text": "Mail ops@mss-haiti.org.", "lang": "en", "spans": ["ops@mss-haiti.org"]},
    {
        "text": "Voir https://example.org/x?y=1).",
        "lang": "fr",
        "spans": ["https://example.org/x?y=1"],
    },
    {"text": "🚨🚨 KE-3 🚨", "lang": "en", "spans": ["🚨🚨", "KE-3", "🚨"]},
    {"text": "Nou gen [0] ak [1] nan lis la", "lang": "ht", "spans": ["[0]", "[1]"]},
    {
        "text": "Saa 14:30, 2 majeruhi, MSS-KE-12 iko Furcy.",
        "lang": "sw",
        "spans": ["14:30", "2", "MSS-KE-12", "Furcy"],
    },
    {
        "text": "Port-au-Prince → Croix-des-Bouquets: 45 km",
        "lang": "fr",
        "spans": ["Port-au-Prince", "→", "Croix-des-Bouquets", "45"],
    },
    {
        "text": "Grid 18QTA1234567890 at 2026-11-26 14h30",
        "lang": "en",
        "spans": ["18QTA1234567890", "2026-11-26", "14h30"],
    },
    {
        "text": "+509 3712 3456 / +254 712 345 678",
        "lang": "en",
        "spans": ["+509 3712 3456", "+254 712 345 678"],
    },
    {
        "text": "Rapò RNDDH ak BOID sou Artibonite",
        "lang": "ht",
        "spans": ["RNDDH", "BOID", "Artibonite"],
    },
    {"text": "Kenscoffville n'est pas Kenscoff", "lang": "fr", "spans": ["Kenscoff"]},
    {"text": "@KE_3_lead #SITREP 👍🏽", "lang": "en", "spans": ["@KE_3_lead", "#SITREP", "👍🏽"]},
    {
        "text": "1,200 cartouches, 3,5 tonnes, 3.5 km",
        "lang": "fr",
        "spans": ["1,200", "3,5", "3.5"],
    },
]

SLOT = re.compile(r"\{([A-Z]+)\}")


def build(seed: int = 20261126) -> list[dict[str, object]]:
    """Render every template three times with seeded fillers; then the extras."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for lang, templates in TEMPLATES.items():
        for template in templates:
            for _ in range(3):
                spans: list[str] = []

                def fill(m: re.Match[str], spans: list[str] = spans) -> str:
                    value = rng.choice(POOLS[m.group(1)])
                    spans.append(value)
                    return value

                text = SLOT.sub(fill, template)
                rows.append({"text": text, "lang": lang, "spans": spans})
    rows.extend(EXTRA)
    return rows


def main() -> None:
    """Write the corpus next to this script."""
    here = Path(__file__).parent
    rows = build()
    with (here / "span_corpus.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    glossary = {term: {} for term in POOLS["GL"]}
    (here / "span_glossary.json").write_text(
        json.dumps(glossary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"{len(rows)} messages")


if __name__ == "__main__":
    main()
