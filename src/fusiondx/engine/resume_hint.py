"""What a stopped training prints: how to continue it."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


class ResumeHint(L.Callback):
    """On Ctrl-C or SIGTERM, say how to continue instead of leaving a bare exit.

    Args:
        last: the checkpoint of the last finished epoch (what ``--resume`` continues from).
        distilled: the run learns from a teacher (``fusiondx distill``), whose command has no
            ``--resume``: the hint names the ``fit`` command that continues it with the teacher.
    """

    def __init__(self, last: Path, *, distilled: bool = False) -> None:
        self.last = last
        self.distilled = distilled

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, (KeyboardInterrupt, SIGTERMException)):
            how = "Stopped by SIGTERM" if isinstance(exception, SIGTERMException) else "Interrupted"
            how_to = (
                f"run `fusiondx fit {self.last.parent.parent / 'config.yaml'} --resume` to "
                "continue (with the same teacher)"
                if self.distilled
                else "run the same `fusiondx fit` command with --resume to continue"
            )
            print(
                f"\n{how} in epoch {trainer.current_epoch}. The last finished epoch is saved in "
                f"{self.last}; {how_to}.",
                file=sys.stderr,
            )
