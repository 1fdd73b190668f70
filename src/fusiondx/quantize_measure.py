"""Measuring an int8 model against its float twin: the ONNX inputs of cases, the outputs of a
session, each task's test metric drop, latency per case and the bytes of a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fusiondx.data.store import CaseStore

LATENCY_CASES = 64
SCORE_BATCH = 256


def feeds(store: CaseStore, idx: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """The flat ONNX inputs of the cases ``idx`` (see :class:`fusiondx.export.FlatModel`)."""
    from fusiondx.export import flatten

    batch = store.batch(idx)
    _, tensors = flatten(batch["inputs"])
    return {n: t.numpy() for n, t in zip(names, [*tensors, batch["mask"]], strict=True)}


def outputs(session: Any, store: CaseStore, idx: np.ndarray, names: list[str]) -> list[np.ndarray]:
    """Every output of ``session`` for the cases ``idx``, a batch of at most SCORE_BATCH at a time."""
    chunks = [
        session.run(None, feeds(store, idx[i : i + SCORE_BATCH], names))
        for i in range(0, len(idx), SCORE_BATCH)
    ]
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]


def latency_ms(session: Any, store: CaseStore, idx: np.ndarray, names: list[str]) -> float:
    """Median milliseconds to answer one case (batch of one), after a warm-up."""
    cases = [feeds(store, idx[i : i + 1], names) for i in range(min(len(idx), LATENCY_CASES))]
    for f in cases[:3]:
        session.run(None, f)
    times = []
    for f in cases:
        start = time.perf_counter()
        session.run(None, f)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def onnx_bytes(path: Path) -> int:
    """The bytes of an ONNX model: its file and any external data files its tensors name."""
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)
    files = {
        entry.value
        for tensor in proto.graph.initializer
        if tensor.data_location == onnx.TensorProto.EXTERNAL
        for entry in tensor.external_data
        if entry.key == "location"
    }
    return path.stat().st_size + sum(
        (path.parent / f).stat().st_size for f in files if (path.parent / f).is_file()
    )


def judge(
    model: Any,
    task_infos: list[Any],
    store: CaseStore,
    test: np.ndarray,
    before: list[np.ndarray],
    after: list[np.ndarray],
    tolerance: float,
) -> tuple[dict[str, Any], list[str]]:
    """Each task's main test metric in float and int8, and what exceeds the tolerance."""
    import torch

    from fusiondx.evaluation.directions import LOWER_IS_BETTER

    tasks: dict[str, Any] = {}
    problems: list[str] = []
    for info, b, a in zip(task_infos, before, after, strict=True):
        head = model.task_head(info.name)
        metric = head.primary_metric
        y = torch.from_numpy(store.targets[info.name][test])
        m_before = float(head.evaluate(torch.from_numpy(b), y)[metric])
        m_after = float(head.evaluate(torch.from_numpy(a), y)[metric])
        drop = (m_after - m_before) if metric in LOWER_IS_BETTER else (m_before - m_after)
        tasks[info.name] = {
            "metric": metric,
            "float": m_before,
            "int8": m_after,
            "drop": drop,
            "max_output_difference": float(np.max(np.abs(a.astype(np.float64) - b))),
        }
        if not np.isfinite(drop):
            problems.append(
                f"task '{info.name}': the test {metric} is undefined (float {m_before:.4g}, "
                f"int8 {m_after:.4g}), so the drop cannot be checked"
            )
        elif drop > tolerance:
            problems.append(
                f"task '{info.name}': test {metric} {m_before:.4f} in float, {m_after:.4f} in "
                f"int8, a drop of {drop:.4f}, more than the tolerance {tolerance:g}"
            )
    return tasks, problems
