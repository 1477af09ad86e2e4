"""Studies built on the run path: ablations, tuning, reproduction, regression checks, efficiency."""
