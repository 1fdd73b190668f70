"""Free-text reports (noisy reader) and clean ground-truth findings sentences."""

from __future__ import annotations

import numpy as np

from fusiondx.datasets._synthetic_latent import FINDINGS, Latent

_SYNONYMS = {
    "opacity": ("opacity", "consolidation", "infiltrate", "airspace disease", "patchy opacities"),
    "nodule": ("nodule", "nodular opacity", "rounded density", "pulmonary nodule"),
    "cardiomegaly": ("cardiomegaly", "enlarged cardiac silhouette", "cardiac enlargement"),
    "arrhythmia": (
        "atrial fibrillation",
        "irregular rhythm",
        "arrhythmia",
        "irregularly irregular rhythm",
    ),
    "st_change": (
        "ST depression",
        "ST elevation",
        "ST-segment changes",
        "repolarization abnormality",
    ),
}
_POSITIVE = (
    "There is {x}{loc}.",
    "{X}{loc} noted.",
    "Evidence of {x}{loc}.",
    "{X} is present{loc}.",
)
_HEDGED = (
    "Possible {x}{loc}.",
    "Cannot exclude {x}{loc}.",
    "Questionable {x}{loc}.",
    "Findings may represent {x}{loc}.",
)
_NEGATED = ("No evidence of {x}.", "No {x}.", "Negative for {x}.", "{X} is not seen.")
# Finding-specific ways of saying "absent" that share no word with the positive phrasing.
_NEGATED_SPECIAL = {
    "opacity": ("Lungs are clear without focal consolidation.", "The lungs are clear."),
    "cardiomegaly": ("Heart size is normal.", "Normal cardiomediastinal silhouette."),
    "arrhythmia": ("Sinus rhythm.", "Regular rhythm."),
    "st_change": ("No acute ST changes.",),
    "nodule": ("No suspicious pulmonary nodule.",),
}
_INDICATION = (
    "Indication: shortness of breath.",
    "Indication: cough.",
    "Indication: chest pain.",
    "Indication: pre-operative assessment.",
    "Indication: fever.",
    "Indication: follow-up.",
    "Clinical history: dizziness.",
)
_TECHNIQUE = (
    "PA and lateral views of the chest.",
    "Single portable AP view of the chest.",
    "Frontal chest radiograph and resting 12-lead ECG.",
    "Chest radiograph, one view.",
)
_BOILERPLATE = (
    "Comparison: none available.",
    "Comparison is made with a prior study.",
    "Bony structures are unremarkable.",
    "Degenerative changes of the thoracic spine.",
    "Soft tissues are unremarkable.",
    "Electrodes in standard positions.",
    "Patient is slightly rotated.",
    "No pleural effusion or pneumothorax.",
)
_NO_ACUTE = (
    "Impression: no acute cardiopulmonary process.",
    "Impression: unremarkable study.",
    "Impression: normal examination.",
)


def _typos(text: str, rng: np.random.Generator, rate: float = 0.03) -> str:
    """Swap, drop or double a letter in a few longer words, like hurried dictation."""
    words = text.split(" ")
    for k in np.flatnonzero(rng.random(len(words)) < rate):
        w = words[k]
        if len(w) < 5:
            continue
        j = int(rng.integers(1, len(w) - 2))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            words[k] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        elif kind == 1:
            words[k] = w[:j] + w[j + 1 :]
        else:
            words[k] = w[:j] + w[j] + w[j:]
    return " ".join(words)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    """One option, uniformly."""
    return options[int(rng.integers(0, len(options)))]


def _sentence(rng: np.random.Generator, template: str, name: str, loc: str) -> str:
    """Fill a template with a random synonym of finding ``name`` and a location phrase."""
    phrase = _pick(rng, _SYNONYMS[name])
    text = template.format(x=phrase, X=phrase[0].upper() + phrase[1:], loc=loc)
    return text[0].upper() + text[1:]


def _reader_sentences(
    rng: np.random.Generator, present: np.ndarray, sev: float, locs: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Sentences of a noisy reader: misses some findings, invents some, hedges, negates.

    Returns:
        ``(finding_sentences, impression_terms)``.
    """
    sentences, impression = [], []
    for j, name in enumerate(FINDINGS):
        p_mention = 0.35 + 0.25 * sev if present[j] else 0.08
        if rng.random() < p_mention:
            hedge = rng.random() < (0.3 if present[j] else 0.6)
            loc = locs.get(name, "") if present[j] else ""
            if name in ("opacity", "nodule") and not present[j]:
                loc = " in the " + _pick(rng, ("right lower zone", "left upper zone", "left base"))
            sentences.append(_sentence(rng, _pick(rng, _HEDGED if hedge else _POSITIVE), name, loc))
            impression.append(("possible " if hedge else "") + _pick(rng, _SYNONYMS[name]))
        elif rng.random() < 0.4:
            special = rng.random() < 0.5
            template = _pick(rng, _NEGATED_SPECIAL[name]) if special else _pick(rng, _NEGATED)
            sentences.append(_sentence(rng, template, name, ""))
    return sentences, impression


def make_report(
    rng: np.random.Generator, present: np.ndarray, sev: float, locs: dict[str, str]
) -> str:
    """One report: indication, technique, shuffled findings and boilerplate, impression."""
    body, impression = _reader_sentences(rng, present, sev, locs)
    body += [_pick(rng, _BOILERPLATE) for _ in range(int(rng.integers(1, 3)))]
    body = [body[k] for k in rng.permutation(len(body))]
    closing = f"Impression: {'; '.join(impression)}." if impression else _pick(rng, _NO_ACUTE)
    parts = [_pick(rng, _INDICATION), _pick(rng, _TECHNIQUE), *body, closing]
    return _typos(" ".join(parts), rng)


def make_reports(rng: np.random.Generator, lat: Latent, locs: list[dict[str, str]]) -> list[str]:
    """Reports for all cases (one generator, consumed in case order)."""
    return [
        make_report(rng, lat.findings[i], float(lat.severity[i]), locs[i]) for i in range(len(lat))
    ]


def _grade(sev: float) -> str:
    """Severity as the adjective a radiologist would use."""
    return "mild" if sev < 0.45 else ("moderate" if sev < 0.75 else "marked")


def findings_text(present: np.ndarray, sev: float, opac_loc: str, nod_loc: str) -> str:
    """Clean ground-truth description of what the image shows (no noise, no negation tricks)."""
    parts = []
    if present[2]:
        parts.append(f"There is {_grade(sev)} cardiomegaly.")
    else:
        parts.append("The cardiac silhouette is normal in size.")
    if present[0]:
        parts.append(f"There is {_grade(sev)} patchy opacity in the {opac_loc} zone.")
    if present[1]:
        parts.append(f"There is a small nodule in the {nod_loc} zone.")
    if not (present[0] or present[1]):
        parts.append("The lungs are clear.")
    return " ".join(parts)
