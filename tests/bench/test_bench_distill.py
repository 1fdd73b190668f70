"""bench/distill.py is registered, documented, and its student is the efficient preset."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import distill
from bench.__main__ import BENCHMARKS
from bench._common import default_config
from bench.efficient import efficient_config


def test_distill_benchmark_is_registered_with_an_example_and_defaults() -> None:
    assert "distill" in BENCHMARKS and "Example: python -m bench distill" in (distill.__doc__ or "")
    p = argparse.ArgumentParser()
    distill.add_arguments(p)
    args = p.parse_args(["--cases", "200", "--alpha", "0.7"])
    assert (args.cases, args.epochs, args.alpha, args.temperature) == (200, 20, 0.7, 2.0)


def test_the_student_shares_the_teachers_data_split_and_tasks(cohort_dir: Path, tmp_path: Path):
    teacher = default_config(cohort_dir / "manifest.csv", tmp_path)
    student = efficient_config(teacher)
    # What `fusiondx distill` requires of a student (check_student), by construction.
    assert student.data == teacher.data and student.seed == teacher.seed
    assert student.tasks == teacher.tasks and student.preset == "efficient"
