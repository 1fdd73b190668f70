"""The commands that write data: `cohort` (the built-in synthetic cohort), `interop-example`
(it as FHIR and OMOP) and `prepare` (a public dataset, FHIR or OMOP turned into a manifest and a
config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand

from fusiondx.cli._app import app, console, guard
from fusiondx.cli._output import print_prepared


@app.command()
def cohort(
    out: Annotated[Path, typer.Argument(help="Folder to write the cohort into.")],
    cases: Annotated[int, typer.Option("--cases", help="Number of cases.")] = 2000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    missing_rate: Annotated[
        float, typer.Option("--missing-rate", help="Chance each modality is missing.")
    ] = 0.1,
    image_format: Annotated[str, typer.Option("--image-format", help="png or dicom")] = "png",
    signal_format: Annotated[str, typer.Option("--signal-format", help="wfdb or npy")] = "wfdb",
    presence_shortcut: Annotated[
        float,
        typer.Option(
            "--presence-shortcut",
            help="Plant a shortcut of strength S in [0, 1): report and labs go missing "
            "more often for healthy cases, so WHICH data a case has predicts its label (0: off).",
        ),
    ] = 0.0,
    uninformative: Annotated[
        str,
        typer.Option(
            "--uninformative",
            help="Comma-separated modalities (image, ecg, report, labs) rendered from "
            "another, independent case: they carry no information about the label.",
        ),
    ] = "",
    site_shift: Annotated[
        float,
        typer.Option(
            "--site-shift",
            help="Plant a shift between sites of strength S in [0, 3]: site_A unchanged, the "
            "last site the full S (scanner contrast, ECG gain, report vocabulary; 0: off).",
        ),
    ] = 0.0,
) -> None:
    """Write the built-in synthetic cohort (manifest.csv + image, signal and mask files).

    Example: `fusiondx cohort data/cohort --cases 2000 --image-format dicom`

    Variants for testing a study (docs/cohort.md): `fusiondx cohort data/shortcut --cases 1500
    --presence-shortcut 0.6` (missingness predicts the label) or `fusiondx cohort data/null
    --cases 1500 --uninformative ecg,report,labs` (fusion cannot beat the image) or
    `fusiondx cohort data/sites --cases 1500 --site-shift 1.0` (held-out sites drop).
    """
    from fusiondx.datasets.synthetic import make_cohort

    def run() -> None:
        manifest = make_cohort(
            out,
            n_cases=cases,
            seed=seed,
            missing_rate=missing_rate,
            image_format=image_format,
            signal_format=signal_format,
            presence_shortcut=presence_shortcut,
            uninformative=uninformative,
            site_shift=site_shift,
            progress=True,
        )
        console.print(f"Wrote {cases} cases to [bold]{manifest}[/]")

    guard(run)


@app.command("interop-example")
def interop_example(
    out: Annotated[
        Path, typer.Argument(help="Folder to write files/, fhir/, omop/ and cohort.yaml into.")
    ],
    cases: Annotated[int, typer.Option("--cases", help="Number of cases.")] = 200,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    bulk: Annotated[
        bool,
        typer.Option(
            "--bulk",
            help="Write FHIR as bulk-export NDJSON (one file per resource type) "
            "instead of one Bundle per patient.",
        ),
    ] = False,
) -> None:
    """Write the built-in cohort as synthetic FHIR R4B resources and OMOP CDM tables.

    The same patients, labels, images, ECGs, reports and labs as `fusiondx cohort`, held the
    way a hospital system holds them, plus a cohort.yaml that `prepare fhir` / `prepare omop`
    read (docs/interoperability.md).

    Example: `fusiondx interop-example fhir_example --cases 200 && fusiondx prepare fhir fhir_example/fhir --cohort fhir_example/cohort.yaml --image-root fhir_example/files --out prepared/fhir`
    """
    from fusiondx.datasets._fhir_synthetic import write_interop_example

    def run() -> None:
        write_interop_example(out, n_cases=cases, seed=seed, bulk=bulk)
        console.print(
            f"Wrote {cases} cases to [bold]{out}[/]: files/ (images, ECGs), fhir/ "
            f"({'NDJSON' if bulk else 'bundles'}), omop/ (CSV tables), cohort.yaml"
        )

    guard(run)


class _PrepareCommand(TyperCommand):
    """`prepare`'s help ends with every adapter and its options, generated when help is shown."""

    @property
    def epilog(self) -> str:
        from fusiondx.datasets.prepare import adapters_help

        return adapters_help()

    @epilog.setter
    def epilog(self, value: str | None) -> None:  # click sets it on construction; it is generated
        pass


@app.command(
    "prepare",
    cls=_PrepareCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def prepare_cmd(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Argument(help="The dataset's adapter (listed below), e.g. ptbxl.")
    ],
    path: Annotated[
        Path, typer.Argument(help="The dataset as downloaded: its folder (MedMNIST: the .npz).")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Output folder, or the manifest's path (.csv).")
    ],
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Turn a public dataset in its official layout into a manifest + ready-to-run config.

    Writes manifest.csv, DATASET.yaml and skipped.csv (every record left out, with the reason)
    into --out; the dataset itself is only read. Splits follow the dataset's convention (PTB-XL
    strat_fold, MedMNIST's own splits) or are grouped by patient (ChestX-ray14, MIMIC-IV). Each
    adapter takes its own options after the folder (listed below). See docs/real-data.md.

    Example: `fusiondx prepare ptbxl ../shared/data/ptbxl500 --out ../prepared/ptbxl --labels superclass`
    """
    from fusiondx.datasets.prepare import parse_options, prepare_dataset

    def run() -> None:
        options = parse_options(dataset, ctx.args)
        print_prepared(prepare_dataset(dataset, path, out, progress=not quiet, **options))

    guard(run)
