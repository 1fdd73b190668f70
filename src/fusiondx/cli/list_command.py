"""`fusiondx list`: the registered parts of every registry, as a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fusiondx.cli._app import app, console, guard


@app.command("list")
def list_parts(
    what: Annotated[
        str,
        typer.Argument(
            help="encoders, fusions, heads, tasks, references, readers, adapters, objectives, "
            "acquisitions or presets"
        ),
    ],
    pattern: Annotated[str, typer.Argument(help="Glob on the name, e.g. '*lstm*'.")] = "*",
) -> None:
    """List registered encoders, fusions, heads, task types, study references, file readers,
    dataset adapters, pretraining objectives or active-learning acquisition strategies with a
    one-line description; old names still accepted are shown as aliases. `presets` lists the
    model presets a config selects with `preset:`.

    Example: `fusiondx list fusions` or `fusiondx list encoders '*transformer*'` or
    `fusiondx list references`, `fusiondx list readers`, `fusiondx list tasks` or
    `fusiondx list presets`
    """
    from fusiondx.registry import (
        ACQUISITIONS,
        ADAPTERS,
        ENCODERS,
        FUSIONS,
        HEADS,
        OBJECTIVES,
        READERS,
        REFERENCES,
        TASK_TYPES,
    )

    def run() -> None:
        regs = {
            "encoders": ENCODERS,
            "fusions": FUSIONS,
            "heads": HEADS,
            "references": REFERENCES,
            "tasks": TASK_TYPES,
            "readers": READERS,
            "adapters": ADAPTERS,
            "objectives": OBJECTIVES,
            "acquisitions": ACQUISITIONS,
        }
        if what == "presets":
            _presets()
            return
        reg = regs.get(what)
        if reg is None:
            from fusiondx.errors import ConfigError, did_you_mean

            raise ConfigError(
                f"Cannot list '{what}'.{did_you_mean(what, [*regs, 'presets'])}",
                fix="use: fusiondx list encoders|fusions|heads|tasks|references|readers|adapters|"
                "objectives|acquisitions|presets",
            )
        table = Table(title=f"{len(reg.names(pattern))} {what}")
        col = {
            "encoders": "kind",
            "fusions": "level",
            "heads": "tasks",
            "references": "inputs",
            "tasks": "heads",
            "readers": "suffixes",
            "adapters": "options",
            "objectives": "options",
            "acquisitions": "reference",
        }[what]
        entries = reg.entries(pattern)
        # names in full on any terminal: the description column wraps instead
        table.add_column(
            "name", no_wrap=True, min_width=max((len(e.name) for e in entries), default=4)
        )
        for c in ("aliases", col, "tags", "description"):
            table.add_column(c, overflow="fold")
        for e in entries:
            extra = e.meta.get(col)
            if what == "heads":
                from fusiondx.tasks import served_by

                extra = served_by(e.name)
            elif what == "fusions":
                extra = e.cls.level
            elif what == "references":
                extra = f"{e.cls.kind}: {e.cls.inputs}"
            elif what == "adapters":
                extra = [o for o in e.options() if o != "progress"]
            elif what == "tasks":
                extra = list(e.cls.heads)
            elif what == "objectives":
                extra = [o for o in e.options() if o not in ("dims", "specs")]
            elif what == "acquisitions":
                extra = e.meta.get("reference", "")
            elif what == "readers":
                extra = f"{e.meta['kind']}: {', '.join(e.meta.get('suffixes', ())) or e.meta.get('hint', '')}"
            extra = ", ".join(extra) if isinstance(extra, (tuple, list)) else str(extra or "")
            table.add_row(e.name, ", ".join(e.aliases), extra, ", ".join(sorted(e.tags)), e.summary)
        console.print(table)

    guard(run)


def _presets() -> None:
    """The model presets: what each fills in per modality kind, its fusion and training settings."""
    from fusiondx.config.presets import PRESETS

    table = Table(title=f"{len(PRESETS)} presets (config key `preset:`)")
    table.add_column("preset", no_wrap=True)
    table.add_column("part", no_wrap=True)
    table.add_column("uses", overflow="fold")
    for name, p in PRESETS.items():
        parts = [*p["encoders"].items(), ("fusion", p["fusion"])]
        for i, (part, choice) in enumerate(parts):
            opts = ", ".join(f"{k}={v}" for k, v in choice["options"].items())
            table.add_row(
                name if i == 0 else "", part, choice["name"] + (f" ({opts})" if opts else "")
            )
        if p.get("train"):
            table.add_row("", "train", ", ".join(f"{k}={v}" for k, v in p["train"].items()))
    console.print(table)
    for name, p in PRESETS.items():
        console.print(f"{name}: {p['description']}", highlight=False)
