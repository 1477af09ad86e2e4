"""vip5-bench: train and compare VIP5 and its baselines with one evaluator.

`bench` is the framework (data, splits, metrics, registry, runner, CLI). It never
imports `models/` or `baselines/` at import time; the registry loads them lazily.
"""

__version__ = "0.1.0"
