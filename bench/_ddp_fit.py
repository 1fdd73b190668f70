"""One timed training for bench/distributed.py: `python bench/_ddp_fit.py CONFIG OUT.json`.

Called through the Python API with ``launch=True``: with ``train.devices > 1`` Lightning runs
this script again for each extra process. Rank 0 writes the seconds of every epoch (training
and validation, measured inside the training loop, so process start, data decoding and the
process group's setup are left out) and the run's metrics to OUT.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L


class EpochTimer(L.Callback):
    """Wall seconds of each training epoch, its validation included."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def main(config: str, out: str) -> None:
    import fusiondx

    timer = EpochTimer()
    result: Any = fusiondx.fit(
        config, overwrite=True, progress=False, callbacks=[timer], launch=True
    )
    if "rank" not in result.metrics:  # rank 0 alone reports
        Path(out).write_text(
            json.dumps({"epoch_seconds": timer.seconds, "metrics": result.metrics})
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
