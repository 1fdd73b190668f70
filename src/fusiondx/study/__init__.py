"""The study: baselines vs fusion strategies vs ablations, with statistics and a report."""
