"""One case explained end to end: its modality Shapley values, an attribution per present
modality, and the page with them (``fusiondx explain``, ``predict --explain``)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fusiondx.config import Config
from fusiondx.data.manifest import check_manifest, modality_present, read_manifest
from fusiondx.data.preprocessors import make_preprocessor
from fusiondx.data.store import Prepared, build_store
from fusiondx.errors import DataError
from fusiondx.explanations import image, signal, tabular, text
from fusiondx.explanations._target import (
    Target,
    class_probs,
    classification_task,
    repeat,
    resolve_class,
)
from fusiondx.explanations.shapley import check_size, shapley
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.tasks import TaskInfo


@dataclass
class ModalityView:
    """What the page shows of one modality."""

    name: str
    kind: str
    present: bool
    shapley: float
    method: str = ""
    png: str | None = None  # file name beside the page
    html: str | None = None  # inline HTML (highlighted text)
    summary: dict[str, Any] = field(default_factory=dict)  # numbers for explanation.json


@dataclass
class CaseExplanation:
    """One case's explanation: the class explained, its probability, the base (every modality
    absent), the modalities (Shapley value and attribution each) and the page written."""

    case_id: str
    run: str
    task: str
    explained: str
    probability: float
    base: float
    probabilities: dict[str, float]
    truth: str | None
    modalities: list[ModalityView]
    page: Path | None = None

    @property
    def shapley(self) -> dict[str, float]:
        """Modality -> Shapley value; they sum to ``probability - base``."""
        return {m.name: m.shapley for m in self.modalities}

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "run": self.run,
            "task": self.task,
            "explained_class": self.explained,
            "probability": self.probability,
            "base": self.base,
            "probabilities": self.probabilities,
            "truth": self.truth,
            "shapley": self.shapley,
            "modalities": {
                m.name: {
                    "kind": m.kind,
                    "present": m.present,
                    "method": m.method or None,
                    "png": m.png,
                    **m.summary,
                }
                for m in self.modalities
            },
        }


def read_cases(cfg: Config, manifest: Path) -> pd.DataFrame:
    """The manifest, checked as ``predict`` checks it (labels not needed)."""
    df = read_manifest(manifest, sep=cfg.data.sep, id_column=cfg.data.id_column)
    check_manifest(df, cfg, manifest, need_labels=False)
    return df


def find_case(df: pd.DataFrame, cfg: Config, case_id: str, manifest: Path) -> int:
    """The row position of ``case_id``; a :class:`DataError` names the manifest and close ids."""
    ids = df[cfg.data.id_column].astype(str).tolist()
    if case_id in ids:
        return ids.index(case_id)
    same = [i for i in ids if _digits(i) == _digits(case_id)]  # case_0042 -> case_00042
    close = list(dict.fromkeys(same + difflib.get_close_matches(case_id, ids, n=3, cutoff=0.6)))[:3]
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise DataError(
        f"Case '{case_id}' is not in the manifest (column '{cfg.data.id_column}', "
        f"{len(ids)} cases).",
        file=manifest,
        case_id=case_id,
        fix=f"{hint}use a case id of this manifest (e.g. {ids[0]!r}), or pass the manifest "
        "holding the case with --data",
    )


def _digits(s: str) -> str:
    """An id with leading zeros of its numbers dropped and case ignored."""
    return re.sub(r"0+(\d)", r"\1", s.strip().lower())


def prepare_rows(
    cfg: Config, state: dict[str, Any], df: pd.DataFrame, manifest: Path, root: Path
) -> Prepared:
    """Decode only these rows of a manifest with the run's fitted preprocessing (in memory)."""
    from fusiondx.tasks import TaskInfo as _Info

    pre = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, root)
        p.load_state(state["preprocessors"][m.name])
        pre[m.name] = p
    data = cfg.data.model_copy(update={"manifest": manifest, "root": root, "cache": "memory"})
    rows_cfg = cfg.model_copy(update={"data": data})
    ids = df[cfg.data.id_column].astype(str)
    store = build_store(rows_cfg, df.reset_index(drop=True), ids.reset_index(drop=True), pre)
    return Prepared(store, pre, [_Info.from_dict(t) for t in state["tasks"]])


def case_folder(case_id: str) -> str:
    """A case id as a folder name (path separators and odd characters become '_')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("._") or "case"


def explain_rows(
    model: MultimodalModel,
    cfg: Config,
    prepared: Prepared,
    df: pd.DataFrame,
    positions: Sequence[int],
    out_dirs: Sequence[Path],
    *,
    run: str,
    task: str | None = None,
    target: str | None = None,
) -> list[CaseExplanation]:
    """Explain the cases at ``positions`` of ``prepared`` (rows of ``df``), one page each."""
    from fusiondx.explanations.page import write_page

    check_size(len(model.modalities))
    info = classification_task(prepared.tasks, task)
    store = prepared.store
    texts = _texts(cfg, prepared, df, positions)
    out = []
    for pos, folder in zip(positions, out_dirs, strict=True):
        e = explain_one(model, cfg, prepared, info, int(pos), folder, texts, run=run, target=target)
        if store.targets and info.name in store.targets:
            e.truth = _truth(info, store.targets[info.name][pos])
        elif info.label and info.label[0] in df.columns:
            cell = df[info.label[0]].iloc[pos]
            e.truth = None if pd.isna(cell) else str(cell)
        e.page = write_page(e, folder)
        out.append(e)
    return out


def _truth(info: TaskInfo, y: Any) -> str | None:
    y = np.asarray(y)
    if y.ndim == 0:
        return None if not np.isfinite(float(y)) else str(info.classes[int(y)])
    return ", ".join(str(c) for c, v in zip(info.classes, y, strict=False) if v > 0.5) or "none"


def _texts(
    cfg: Config, prepared: Prepared, df: pd.DataFrame, positions: Sequence[int]
) -> dict[str, dict[int, str]]:
    """Text modality -> row -> the cleaned text the tokenizer read (for inline highlighting)."""
    out: dict[str, dict[int, str]] = {}
    ids = df[cfg.data.id_column].astype(str).reset_index(drop=True)
    rows = df.reset_index(drop=True)
    for m in cfg.modalities:
        if m.kind != "text":
            continue
        present = modality_present(rows, m).copy()
        keep = np.zeros(len(rows), dtype=bool)
        keep[list(positions)] = True
        try:
            out[m.name] = prepared.preprocessors[m.name].texts(rows, present & keep, ids)  # type: ignore[attr-defined]
        except DataError:
            out[m.name] = {}
    return out


def explain_one(
    model: MultimodalModel,
    cfg: Config,
    prepared: Prepared,
    info: TaskInfo,
    pos: int,
    folder: Path,
    texts: dict[str, dict[int, str]],
    *,
    run: str,
    target: str | None = None,
) -> CaseExplanation:
    """One case: Shapley values over the modalities, then each present modality's attribution."""
    store = prepared.store
    batch = store.batch([pos])
    inputs, mask = batch["inputs"], batch["mask"]
    model.eval()
    head = model.task_head(info.name)
    with torch.no_grad():
        probs = class_probs(info, head, model.predict(inputs, mask)[info.name])[0].numpy()
    tgt = Target(info, resolve_class(info, target, probs))

    def value(masks: torch.Tensor) -> torch.Tensor:  # every coalition in one batch
        s = masks.shape[0]
        with torch.no_grad():
            raw = model.predict(repeat(inputs, s), masks.reshape(-1, masks.shape[-1]))[info.name]
            return class_probs(info, head, raw)[:, tgt.index].reshape(s, -1)

    phi, base, pred = shapley(value, mask)
    folder.mkdir(parents=True, exist_ok=True)
    kinds = {m.name: m for m in cfg.modalities}
    views = []
    for j, name in enumerate(store.modalities):
        mcfg = kinds[name]
        view = ModalityView(name, mcfg.kind, bool(mask[0, j]), float(phi[0, j]))
        if view.present:
            _attribute(model, tgt, inputs, mask, view, mcfg, prepared, texts, pos, folder)
        views.append(view)
    return CaseExplanation(
        case_id=str(store.ids[pos]),
        run=run,
        task=info.name,
        explained=tgt.name,
        probability=float(pred[0]),
        base=float(base[0]),
        probabilities={str(c): float(p) for c, p in zip(info.classes, probs, strict=True)},
        truth=None,
        modalities=views,
    )


def _attribute(
    model: MultimodalModel,
    tgt: Target,
    inputs: dict[str, Any],
    mask: torch.Tensor,
    view: ModalityView,
    mcfg: Any,
    prepared: Prepared,
    texts: dict[str, dict[int, str]],
    pos: int,
    folder: Path,
) -> None:
    """Fill ``view`` with the modality's attribution and write its figure."""
    name, x = view.name, inputs[view.name]
    png = f"{case_folder(name)}.png"
    if view.kind == "image":
        heat, method = image.image_attribution(model, tgt, inputs, mask, name)
        image.image_figure(x[0].numpy(), heat[0], method, folder / png)
        view.method, view.png = method, png
        view.summary = {"argmax": list(image.argmax_point(heat[0])), "shape": list(heat[0].shape)}
    elif view.kind == "signal":
        attr = signal.signal_attribution(model, tgt, inputs, mask, name)[0]
        p = mcfg.preprocessing
        leads = list(p.lead_names or [f"lead {i + 1}" for i in range(attr.shape[0])])
        signal.signal_figure(x[0].numpy(), attr, leads, folder / png, p.rate)
        view.method, view.png = "Integrated Gradients", png
        view.summary = {
            "lead_totals": {ld: float(a) for ld, a in zip(leads, attr.sum(1), strict=False)}
        }
    elif view.kind == "text":
        scores = text.token_attribution(model, tgt, inputs, mask, name)[0]
        tok = prepared.preprocessors[name].tokenizer  # type: ignore[attr-defined]
        ts = text.token_scores(x[0].numpy(), scores, tok, texts.get(name, {}).get(pos))
        view.method, view.html = "Integrated Gradients on the token embeddings", text.token_html(ts)
        view.summary = {"tokens": ts.tokens, "scores": [float(s) for s in ts.scores]}
    elif view.kind == "tabular":
        num, cat = tabular.tabular_attribution(model, tgt, inputs, mask, name)
        pre = prepared.preprocessors[name]
        names = [*pre.numeric, *pre.categorical]  # type: ignore[attr-defined]
        values = np.concatenate([num[0], cat[0]])
        shown = _tabular_values(x, pre)
        tabular.tabular_figure(names, values, shown, folder / png)
        view.method = "Integrated Gradients (numbers), set-to-missing (categories)"
        view.png = png
        view.summary = {"features": {n: float(v) for n, v in zip(names, values, strict=True)}}


def _tabular_values(x: dict[str, torch.Tensor], pre: Any) -> list[str]:
    """The case's values as the model got them, back in the manifest's units."""
    shown = []
    num = x.get("numeric")
    miss = x.get("numeric_missing")
    for j, _ in enumerate(pre.numeric):
        if miss is not None and float(miss[0, j]) > 0.5:
            shown.append("missing")
        else:
            assert num is not None
            shown.append(f"{float(num[0, j]) * pre.std[j] + pre.mean[j]:.4g}")
    cat = x.get("categorical")
    for k, c in enumerate(pre.categorical):
        i = int(cat[0, k]) if cat is not None else 0
        vocab = pre.vocab.get(c, [])
        shown.append("missing" if i == 0 else vocab[i - 2] if 2 <= i < len(vocab) + 2 else "unseen")
    return shown
