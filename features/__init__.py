"""Raw contract records to model inputs: validated tables, texts, embeddings, history and pair features.

Names load on first use, so importing a light module (`features.environment`, `features.contract`) does not
pay for pandas, scikit-learn or the embedding model.
"""

from __future__ import annotations

import importlib

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

_HOME = {
    "FEATURES": "features.pairwise",
    "FUNNEL_STAGE": "features.contract",
    "CategoryPriors": "features.history",
    "Embedder": "features.embeddings",
    "InputError": "features.tables",
    "Reject": "features.tables",
    "Table": "features.tables",
    "creator_history": "features.history",
    "pair_features": "features.pairwise",
    "read_table": "features.tables",
    "resolve_product_types": "features.product_type",
    "settled_rows": "features.history",
    "validate_frame": "features.tables",
}


def __getattr__(name: str) -> object:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'features' has no attribute {name!r}")
