"""Datasets: the canonical format (`store`), splits, the loaded view (`BenchData`), importers, `synthetic`."""

from bench.data.dataset import (
    SYNTHETIC,
    BenchData,
    ExplainQuery,
    RankQuery,
    check_dataset_name,
    data_root,
    known_datasets,
    load_dataset,
)
from bench.data.store import Item, Review, User, write_dataset

__all__ = [
    "SYNTHETIC",
    "BenchData",
    "ExplainQuery",
    "Item",
    "RankQuery",
    "Review",
    "User",
    "check_dataset_name",
    "data_root",
    "known_datasets",
    "load_dataset",
    "write_dataset",
]
