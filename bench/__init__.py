"""FusionDx benchmarks: `python -m bench --help`. Results go to BENCHMARKS.md and bench/results/."""
