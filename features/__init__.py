"""Raw contract records to model inputs: validated tables, texts, embeddings, history and pair features."""

from __future__ import annotations

from features.contract import FUNNEL_STAGE
from features.embeddings import Embedder
from features.history import CategoryPriors, creator_history, settled_rows
from features.pairwise import FEATURES, pair_features
from features.product_type import resolve_product_types
from features.tables import InputError, Reject, Table, read_table, validate_frame

__all__ = [
    "FEATURES",
    "FUNNEL_STAGE",
    "CategoryPriors",
    "Embedder",
    "InputError",
    "Reject",
    "Table",
    "creator_history",
    "pair_features",
    "read_table",
    "resolve_product_types",
    "settled_rows",
    "validate_frame",
]
