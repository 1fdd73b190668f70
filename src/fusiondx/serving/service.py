"""A trained run loaded once per server worker and answering cases: ONNX Runtime for the network,
the run's own preprocessing for the inputs, its post-hoc layer for the decision.

Every case is answered under each subset of its modalities (2^M presence masks, M <= 8): the
subset holding every modality the case has gives the prediction, all of them the exact
modality Shapley values (:func:`fusiondx.explanations.shapley.shapley_from_values`). Where the
model splits (:mod:`fusiondx.serving.split`), that is one ONNX Runtime call of the encoders per
case and one of the small fusion + heads graph over the 2^M masks; otherwise one call of the
whole model (``model.onnx``) over 2^M masked copies of the case. Cases are decoded by
:mod:`fusiondx.serving.decode` with the run's own preprocessors. Two things run the PyTorch
model instead, since the exported graphs do not hold them: Grad-CAM, asked for with
``explain`` (gradients), and tasks whose heads generate text token by token (report
generation), answered on the case as it is, with the text in the run's vocabulary.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fusiondx.config import Config
from fusiondx.data.preprocessors import Preprocessor, make_preprocessor
from fusiondx.data.store import CaseStore, build_store
from fusiondx.engine.posthoc import Posthoc
from fusiondx.engine.rundir import RunDir
from fusiondx.errors import RunError
from fusiondx.evaluation import conformal as conf
from fusiondx.evaluation.thresholds import predict_classes
from fusiondx.explanations.shapley import MAX_MODALITIES, shapley_from_values, subsets
from fusiondx.export import decoding_tasks
from fusiondx.models.multimodal import MultimodalModel
from fusiondx.serving.cases import CaseInput, Schema, write_rows
from fusiondx.serving.decode import decode_cases
from fusiondx.serving.split import Split, example_inputs, export_split, load_split
from fusiondx.tasks import TaskInfo, task_type

log = logging.getLogger("fusiondx.serving")


@dataclass
class Decoded:
    """Cases decoded by the run's preprocessing, and the folder their files were written to."""

    store: CaseStore
    folder: Path
    notes: list[str] = field(default_factory=list)


def _scratch() -> str | None:
    """A RAM-backed folder for uploads when the machine has a writable one, else the default."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


class Service:
    """Everything one worker needs to answer: loaded once, shared by its request threads.

    Args:
        run_dir: a trained run folder.
        threads: ONNX Runtime intra-op threads (default 1: under load, requests run side by side
            on the cores; a second thread per request mostly waits).
        workers: server processes sharing this machine.
        split: serve the encoders and the fusion + heads as two graphs where the model splits
            (False: the whole model over masked copies, as ``model.onnx``).
        graphs: a folder holding the split graphs already built from this run (``fusiondx
            serve`` builds them once for all its workers), else they are built here.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        threads: int | None = None,
        workers: int = 1,
        split: bool = True,
        graphs: Path | None = None,
    ) -> None:
        self.run = RunDir(Path(run_dir))
        self.cfg, self.model, self.state = self.run.load()
        self.posthoc_state = self.run.posthoc()
        self.posthoc = Posthoc(self.posthoc_state)
        self.tasks = [TaskInfo.from_dict(t) for t in self.state["tasks"]]
        self.schema = Schema(self.cfg)
        self.names = sorted(m.name for m in self.cfg.modalities)
        # Uploads live under one private folder (mode 0700) per worker, one subfolder a request;
        # in memory (/dev/shm) where there is one: creating and removing folders on a disk cost
        # ~7 ms a request, on tmpfs under 1.
        self.root = Path(tempfile.mkdtemp(prefix="fusiondx-serve-", dir=_scratch()))
        self.pre: dict[str, Preprocessor] = {}
        for m in self.cfg.modalities:
            p = make_preprocessor(m, self.root)
            p.load_state(self.state["preprocessors"][m.name])
            self.pre[m.name] = p
        data = self.cfg.data.model_copy(
            update={"manifest": self.root / "request.csv", "root": self.root, "cache": "memory"}
        )
        self._rows_cfg: Config = self.cfg.model_copy(update={"data": data})
        self.layout = self._layout()
        self.threads = threads or 1
        self.workers = workers
        torch.set_num_threads(self.threads)
        names = [t.name for t in self.tasks]
        self.generated = decoding_tasks(self.model, names)  # answered in PyTorch
        self.graph_tasks = [t for t in self.tasks if t.name not in self.generated]
        self.session = self._session() if self.graph_tasks else None
        self._graphs: Path | None = None  # a folder this service made and removes
        self.split: Split | None = self._split(graphs) if split and self.graph_tasks else None
        if self.split is not None:
            self.encoders = self._ort(self.split.encoders)
            self.fusion = self._ort(self.split.fusion)
        self._decode_lock = threading.Lock()  # preprocessors keep per-call scratch state
        self._torch_lock = threading.Lock()  # Grad-CAM hooks the shared model
        self.explained = next((t for t in self.tasks if task_type(t).is_classification), None)
        n_mod = len(self.names)
        self._coalitions = subsets(n_mod).numpy() if n_mod <= MAX_MODALITIES else None

    def _ort(self, path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle pool threads spin for work by default, burning the cores the other requests
        # (and, on one machine, the other workers) need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def _split(self, graphs: Path | None) -> Split | None:
        if graphs is not None and (graphs / "encoders.onnx").is_file():
            return load_split(graphs, self.model)
        folder = Path(tempfile.mkdtemp(prefix="fusiondx-graphs-", dir=_scratch()))
        self._graphs = folder
        example = example_inputs({m: p.shapes() for m, p in self.pre.items()})
        return export_split(
            self.model,
            [t.name for t in self.graph_tasks],
            example,
            folder,
            posthoc=self.posthoc_state,
        )

    def _session(self) -> Any:
        from fusiondx.export import _is_exported_onnx, export_run

        path = self.run.onnx_file
        if not _is_exported_onnx(path):
            log.info("exporting %s to ONNX (first start)", self.run.path)
            export_run(self.run.path, progress=False, overwrite=True)
        session = self._ort(path)
        got = [i.name for i in session.get_inputs()]
        want = [*self.layout, "mask"]
        outs = [o.name for o in session.get_outputs()]
        tasks = [t.name for t in self.graph_tasks]
        if got != want or outs != tasks:
            raise RunError(
                f"The run's model.onnx takes inputs {got} and answers {outs}, not the run's "
                f"inputs ({want}) and tasks ({tasks}).",
                file=path,
                fix="export the run again: fusiondx export RUN --overwrite",
            )
        return session

    def _layout(self) -> list[str]:
        out = []
        for m in self.names:
            keys = sorted(self.pre[m].shapes())
            out += [m if k == "" else f"{m}.{k}" for k in keys]
        return out

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        if self._graphs is not None:
            shutil.rmtree(self._graphs, ignore_errors=True)

    # -- decoding ------------------------------------------------------------------------

    def decode(self, cases: list[CaseInput], folder: Path) -> CaseStore:
        """The cases decoded with the run's preprocessing (:mod:`fusiondx.serving.decode`)."""
        with self._decode_lock:
            return decode_cases(self.cfg, self.pre, cases, folder, self._rows_cfg.data.manifest)

    def decode_as_manifest(self, cases: list[CaseInput], folder: Path) -> CaseStore:
        """The same through manifest rows and :func:`~fusiondx.data.store.build_store`, as
        training decodes a manifest (slower; kept to check :meth:`decode` against)."""
        df = write_rows(self.schema, cases, folder, prefix=f"{folder.relative_to(self.root)}/")
        ids = df[self.cfg.data.id_column].astype(str)
        with self._decode_lock:
            return build_store(self._rows_cfg, df, ids, self.pre)

    def request_folder(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.root))

    # -- answering -----------------------------------------------------------------------

    def predict(self, cases: list[CaseInput], *, explain: bool = False) -> list[dict[str, Any]]:
        """The answer for every case (see the module docstring); temp files removed on return."""
        folder = self.request_folder()
        try:
            store = self.decode(cases, folder)
            answers = self._answer(store)
            if explain:
                for i, a in enumerate(answers):
                    a["explanation"] = self._gradcam(store, i, folder)
            for a in answers:
                a["notes"] = list(store.notes)
            return answers
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _feeds(
        self, store: CaseStore, repeat: int, mask: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        feeds = {}
        for name in self.layout:
            m, _, k = name.partition(".")
            a = np.asarray(store.inputs[m][k])
            feeds[name] = np.concatenate([a] * repeat) if repeat > 1 else a
        if mask is not None:
            feeds["mask"] = mask
        return feeds

    def _answer(self, store: CaseStore) -> list[dict[str, Any]]:
        n = len(store)
        present = store.mask.astype(bool)
        answers: list[dict[str, Any]] = [
            {
                "case_id": str(store.ids[i]),
                "tasks": {},
                "modalities": {
                    name: {"present": bool(present[i, j])} for j, name in enumerate(self.names)
                },
            }
            for i in range(n)
        ]
        if self.graph_tasks:
            self._answer_graphs(store, answers)
        if self.generated:
            self._answer_generated(store, answers)
        # Tasks in the run's order, whichever engine answered them.
        for a in answers:
            a["tasks"] = {t.name: a["tasks"][t.name] for t in self.tasks}
        return answers

    def _answer_generated(self, store: CaseStore, answers: list[dict[str, Any]]) -> None:
        """Text-generating tasks, decoded by the PyTorch model (greedy or beam, as trained)."""
        from fusiondx.tasks.generation import decode_texts

        batch = store.batch(np.arange(len(store)))
        with self._torch_lock, torch.no_grad():
            out = self.model.predict(batch["inputs"], batch["mask"], tasks=self.generated)
        for info in self.tasks:
            if info.name not in self.generated:
                continue
            ids = np.asarray(out[info.name].cpu().numpy())
            for a, text in zip(answers, decode_texts(info, ids), strict=True):
                a["tasks"][info.name] = {"text": text, "engine": "pytorch"}

    def _answer_graphs(self, store: CaseStore, answers: list[dict[str, Any]]) -> None:
        """The tasks of the ONNX graphs, and the modality contributions."""
        n, m = len(store), len(self.names)
        present = store.mask.astype(bool)
        coalitions = self._coalitions  # (S, M), the last one every modality
        if coalitions is not None:
            masks = (coalitions[:, None, :] & present[None]).reshape(-1, m)  # s-major
            s = len(coalitions)
        else:  # no exact Shapley values: the prediction alone
            masks, s = present, 1
        if self.split is not None:
            # Encoders once per case; fusion + heads over every mask (s-major, as the copies).
            feats = self.encoders.run(None, self._feeds(store, 1, None))
            fused = {
                n: np.concatenate([f] * s) if s > 1 else f
                for n, f in zip(self.split.features, feats, strict=True)
            }
            fused["mask"] = masks
            outs = self.fusion.run(None, fused)
        else:
            assert self.session is not None
            outs = self.session.run(None, self._feeds(store, s, masks))
        for info, out in zip(self.graph_tasks, outs, strict=True):
            full = out.reshape(s, n, *out.shape[1:])[-1]
            for i, entry in enumerate(self._task_answer(info, full)):
                answers[i]["tasks"][info.name] = entry
        if s > 1 and self.explained is not None:
            k = self.graph_tasks.index(self.explained)
            self._contributions(answers, outs[k].reshape(s, n, *outs[k].shape[1:]), present)

    def _probs(self, info: TaskInfo, logits: np.ndarray) -> np.ndarray:
        """(N, K) class probabilities (binary: both classes) of calibrated logits."""
        from fusiondx.explanations._target import class_probs

        head = self.model.task_head(info.name)
        with torch.no_grad():
            p = class_probs(info, head, torch.from_numpy(np.ascontiguousarray(logits)))
        return p.double().numpy()

    def _task_answer(self, info: TaskInfo, out: np.ndarray) -> list[dict[str, Any]]:
        if not task_type(info).is_classification:
            return [{"output": np.asarray(o).tolist()} for o in out]
        probs = self._probs(info, out)
        kind = info.type
        flat = probs[:, 1] if kind == "binary" else probs
        thr = self.posthoc.thresholds(info.name)
        pred = predict_classes(flat, kind, thr)
        entry = self.posthoc.tasks.get(info.name) or {}
        sets = (
            conf.predict_sets(conf.class_probs(flat, kind), entry["conformal"])
            if entry.get("conformal")
            else None
        )
        res = []
        for i in range(len(out)):
            a: dict[str, Any] = {
                "probabilities": {
                    str(c): float(p) for c, p in zip(info.classes, probs[i], strict=True)
                },
                "calibrated": bool(entry.get("calibration")),
                "threshold": None if thr is None else [float(t) for t in thr],
            }
            if kind == "multilabel":
                a["prediction"] = [
                    str(c) for c, on in zip(info.classes, pred[i], strict=True) if on
                ]
            else:
                a["prediction"] = str(info.classes[int(pred[i])])
            if sets is not None:
                a["set"] = [str(c) for c, on in zip(info.classes, sets[i], strict=True) if on]
                a["refer"] = not (sets[i].sum() == 1 and sets[i][int(pred[i])] == 1)
            res.append(a)
        return res

    def _contributions(
        self, answers: list[dict[str, Any]], out: np.ndarray, present: np.ndarray
    ) -> None:
        info = self.explained
        assert info is not None
        s, n = out.shape[:2]
        probs = self._probs(info, out.reshape(s * n, *out.shape[2:])).reshape(s, n, -1)
        full = probs[-1]
        cls = np.ones(n, dtype=np.int64) if info.type == "binary" else full.argmax(1)
        values = probs[:, np.arange(n), cls].T  # (N, S)
        phi = shapley_from_values(torch.from_numpy(values))
        for i in range(n):
            answers[i]["contributions"] = {
                "task": info.name,
                "explained_class": str(info.classes[int(cls[i])]),
                "probability": float(values[i, -1]),
                "base": float(values[i, 0]),
                "values": {name: float(phi[i, j]) for j, name in enumerate(self.names)},
            }
            for j, name in enumerate(self.names):
                answers[i]["modalities"][name]["contribution"] = float(phi[i, j])

    def _gradcam(self, store: CaseStore, i: int, folder: Path) -> dict[str, Any]:
        """Per present image modality, the Grad-CAM overlay as a base64 PNG."""
        from fusiondx.explanations import image
        from fusiondx.explanations._calibrated import calibrated
        from fusiondx.explanations._target import Target

        info = self.explained
        out: dict[str, Any] = {}
        if info is None:
            return out
        batch = store.batch([i])
        inputs, mask = batch["inputs"], batch["mask"]
        kinds = {m.name: m.kind for m in self.cfg.modalities}
        with self._torch_lock:
            model: MultimodalModel = calibrated(self.model, self.posthoc_state)
            with torch.no_grad():
                logits = model.predict(inputs, mask, tasks=[info.name])[info.name]
                probs = self._probs(info, logits.numpy())[0]
            index = 1 if info.type == "binary" else int(np.argmax(probs))
            for j, name in enumerate(self.names):
                if kinds[name] != "image" or not bool(mask[0, j]):
                    continue
                heat, method = image.image_attribution(
                    model, Target(info, index), inputs, mask, name
                )
                png = image.image_figure(
                    inputs[name][0].numpy(), heat[0], method, folder / f"cam_{name}.png"
                )
                out[name] = {
                    "method": method,
                    "class": str(info.classes[index]),
                    "png": base64.b64encode(png.read_bytes()).decode("ascii"),
                }
        return out
