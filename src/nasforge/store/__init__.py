"""Experiment stores."""

from nasforge.store.base import ExperimentRecord, Store, TrialRecord
from nasforge.store.sql import SCHEMA_VERSION, SqlStore, open_store

__all__ = ["SCHEMA_VERSION", "ExperimentRecord", "SqlStore", "Store", "TrialRecord", "open_store"]
