"""The arithmetic of lookalikes' views of "alike" (markets, record), and the sentence naming what is shared."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matcher.similar import LookalikeSpace

__all__ = ["audience_matrix", "cosine", "lookalike_reason", "mean_defined", "overlap", "record_matrix"]

# Two interest tags "mean the same" for a reason at this MiniLM cosine: near-synonyms ("hiking"/"trail
# running", "skincare"/"k-beauty") score 0.5-0.8, unrelated tags below 0.3.
TAG_MEANING = 0.5
# A market or category is named in a reason when both sides put at least this share in it.
NAMED_SHARE = 0.05


def lookalike_reason(
    space: LookalikeSpace,
    row: int,
    seed_tags: np.ndarray,
    seed_audience: np.ndarray | None,
    seed_record: np.ndarray | None,
    market: float,
    record: float,
    profile: tuple[float, float],
    marketplaces: list[str] | None = None,
) -> str:
    """One sentence on lookalike `row`: interests like the seeds' (by meaning), markets and categories shared.

    `profile` is the row's profile similarity to the seeds and the share of the catalogue it is more like the
    seeds than; it is named only when no interest is: a cosine alone is not called close. With `marketplaces` (the
    request's filter), the markets named and the overlap said are those within it.
    """
    own = space.tags_of(row)
    parts = []
    if len(own) and len(seed_tags):
        closeness = space.tags.vectors[own] @ space.tags.vectors[seed_tags].T
        best, nearest = closeness.max(axis=1), seed_tags[closeness.argmax(axis=1)]
        named = []
        for i in np.argsort(-best, kind="stable"):
            if best[i] < TAG_MEANING or len(named) == 3:
                break
            tag, seed_tag = space.tags.vocabulary[own[i]], space.tags.vocabulary[nearest[i]]
            if tag not in [n.split(" (")[0] for n in named]:
                named.append(tag if own[i] == nearest[i] else f"{tag} (like {seed_tag})")
        if named:
            parts.append(f"interests like the seeds': {', '.join(named)}")
    if not parts:
        similarity, standing = profile
        share = math.floor(standing * 100)  # rounded down: it never claims all when one in the reference is alike
        if np.isnan(standing):
            parts.append(f"no interest like the seeds'; profile similarity {similarity:.2f}")
        elif share == 0:  # "more like theirs than 0%" says nothing: it is at the bottom of the catalogue
            parts.append(
                f"no interest like the seeds'; profile among the least like theirs of eligible creators "
                f"(similarity {similarity:.2f})"
            )
        else:
            parts.append(
                f"no interest like the seeds'; profile more like theirs than {share}% of eligible creators "
                f"(similarity {similarity:.2f})"
            )
    if not np.isnan(market) and seed_audience is not None:
        both = np.minimum(np.nan_to_num(space.audience_[row]), seed_audience)
        if marketplaces is None:
            inside, within, where = np.arange(len(space.markets_)), market, ""
        else:
            # Overlap in markets the request left out would be a reason outside what the seller asked about.
            inside = np.array([i for i, code in enumerate(space.markets_) if code in marketplaces], dtype=np.int64)
            within = float(overlap(space.audience_[[row]], seed_audience, inside)[0])
            where = f" in {'/'.join(dict.fromkeys(marketplaces))}"
        shared = inside[np.argsort(-both[inside], kind="stable")[:3]]
        codes = [space.markets_[i] for i in shared if both[i] >= NAMED_SHARE]
        if codes:
            parts.append(f"audience in {'/'.join(codes)} like the seeds' ({within:.0%} overlap{where})")
        elif marketplaces is not None:
            parts.append(f"{within:.0%} audience overlap with the seeds{where}")
    elif seed_audience is not None:
        parts.append("audience split not stated")
    if not np.isnan(record) and seed_record is not None:
        both = np.minimum(space.record_[row], seed_record)
        names = [space.categories_[i] for i in np.argsort(-both, kind="stable")[:3] if both[i] >= NAMED_SHARE]
        if names:
            parts.append(f"sells in {', '.join(names)} like the seeds")
    elif seed_record is not None:
        # No orders: never took part, or took part without a sale, which the record does not tell apart here.
        parts.append("no sales yet")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def audience_matrix(audience: pd.Series) -> tuple[list[str], np.ndarray]:
    """Marketplace codes seen, and each creator's stated audience shares (NaN rows: none stated)."""
    codes = sorted({code for shares in audience if isinstance(shares, dict) for code in shares})
    column = {code: i for i, code in enumerate(codes)}
    matrix = np.full((len(audience), len(codes)), np.nan)
    for row, shares in enumerate(audience):
        if isinstance(shares, dict) and shares:
            matrix[row] = 0.0
            for code, share in shares.items():
                matrix[row, column[code]] = share
    return codes, matrix


def record_matrix(creator_ids: pd.Series, category_history: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Categories sold in, and each creator's orders per category as a unit vector (NaN rows: no orders)."""
    frame = category_history.reset_index()
    orders = frame.pivot_table(index="creator_id", columns="category", values="hist_orders", aggfunc="sum")
    orders = orders.reindex(creator_ids).fillna(0.0)
    matrix = orders.to_numpy(float)
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.where(norm > 0, matrix / norm, np.nan)
    return [str(c) for c in orders.columns], matrix


def mean_defined(rows: np.ndarray) -> np.ndarray | None:
    """The mean of the rows that are defined (not NaN), or None when none is."""
    defined = rows[~np.isnan(rows).any(axis=1)]
    return defined.mean(axis=0) if len(defined) else None


def overlap(shares: np.ndarray, seed: np.ndarray | None, markets: np.ndarray | None = None) -> np.ndarray:
    """Sum over markets (all, or the columns `markets`) of the smaller of two audience distributions, each
    normalised to sum to 1 over all markets."""
    out = np.full(len(shares), np.nan)
    if seed is None or seed.sum() <= 0:
        return out
    total = shares.sum(axis=1)
    stated = total > 0  # False for NaN rows (no audience stated)
    smaller = np.minimum(shares[stated] / total[stated, None], seed / seed.sum())
    out[stated] = (smaller if markets is None else smaller[:, markets]).sum(axis=1)
    return out


def cosine(unit_rows: np.ndarray, seed: np.ndarray | None) -> np.ndarray:
    """Each unit row's cosine with the seed vector (NaN for every row when the seeds have none)."""
    if seed is None:
        return np.full(len(unit_rows), np.nan)
    return unit_rows @ (seed / max(float(np.linalg.norm(seed)), 1e-12))
