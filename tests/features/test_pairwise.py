"""Pair features that stand in for what a creator did not state."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.affinity import AFFINITY_COLUMNS
from features.history import HISTORY_COLUMNS, CategoryPriors
from features.pairwise import FEATURES, OPTIONAL_FEATURES, pair_features, typical_audience
from features.similarity import EVIDENCE_COLUMNS, SEMANTIC_FEATURES
from features.tables import read_table


def _creators(tmp_path) -> pd.DataFrame:
    rows = [
        '{"creator_id": "us", "creator_type": "social_creator", "platforms": ["instagram"], "interest_tags": ["a"], '
        '"followers": 1000, "audience_marketplaces": {"US": 0.8, "DE": 0.1}}',
        '{"creator_id": "de", "creator_type": "review_site", "platforms": ["blog"], "interest_tags": ["b"], '
        '"followers": 2000, "audience_marketplaces": {"DE": 0.6, "UK": 0.2}}',
        '{"creator_id": "silent", "creator_type": "social_creator", "platforms": ["tiktok"], "interest_tags": ["c"], '
        '"followers": 3000}',
    ]
    path = tmp_path / "creators.jsonl"
    path.write_text("\n".join(rows) + "\n")
    return read_table(path, "creators").frame


def _pair_features(campaigns: pd.DataFrame, creators: pd.DataFrame, priors: CategoryPriors) -> pd.DataFrame:
    """Every campaign with every creator, with neutral semantic, affinity and history inputs, each campaign's price
    read against the others' (`log_price_in_zone`, as `resolve_product_types` adds it against a seller's past)."""
    log_price = np.log(campaigns["price"].to_numpy(float))
    campaigns = campaigns.assign(log_price_in_zone=log_price - np.median(log_price))
    campaign_index = np.repeat(np.arange(len(campaigns)), len(creators))
    creator_index = np.tile(np.arange(len(creators)), len(campaigns))
    n = len(campaign_index)
    semantic = pd.DataFrame({name: np.zeros(n) for name in SEMANTIC_FEATURES} | {c: [""] * n for c in EVIDENCE_COLUMNS})
    none = pd.DataFrame(0.0, index=np.arange(n), columns=HISTORY_COLUMNS)
    return pair_features(
        campaigns,
        creators,
        campaign_index,
        creator_index,
        semantic,
        pd.DataFrame(1.0, index=np.arange(n), columns=AFFINITY_COLUMNS),
        none,
        none,
        none,
        priors,
    )


def test_typical_audience_averages_the_creators_who_state_a_split(tmp_path):
    typical = typical_audience(_creators(tmp_path))
    assert typical == pytest.approx({"US": 0.4, "DE": 0.35, "UK": 0.1})


def test_a_creator_stating_no_split_is_expected_to_have_the_typical_share_of_each_campaigns_markets(tmp_path):
    creators = _creators(tmp_path)
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["in-us", "in-de-uk"],
            "category": ["beauty", "beauty"],
            "price": [20.0, 20.0],
            "commission_rate": [0.1, 0.1],
            "marketplaces": [["US"], ["DE", "UK"]],
            "product_type": ["standard", "standard"],
        }
    )
    features = _pair_features(
        campaigns, creators, CategoryPriors().fit(pd.DataFrame(columns=["category", "impressions", "clicks", "orders"]))
    )
    # What the creators state is used as it is; the silent one gets the typical share, not a learned guess.
    assert features["expected_market_share"].tolist() == pytest.approx([0.8, 0.0, 0.4, 0.1, 0.8, 0.45])
    # The stated share stays apart, NaN where nothing was stated: eligibility and reasons read only that.
    assert np.isnan(features["market_share"].to_numpy()[[2, 5]]).all()
    assert features["market_share"].to_numpy()[[0, 1, 3, 4]].tolist() == pytest.approx([0.8, 0.0, 0.1, 0.8])


def test_campaigns_in_a_sellers_own_categories_carry_a_category_the_ranker_can_split_on(tmp_path):
    """Category names other than the contract's examples ("Beauty & Personal Care", as Amazon names it) were all
    missing in `category_code`; learned from the seller's rows, each has its own code."""
    own = ["Beauty & Personal Care", "Toys & Games", "Beauty & Personal Care"]
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["a", "b", "c"],
            "category": own,
            "price": [20.0] * 3,
            "commission_rate": [0.1] * 3,
            "marketplaces": [["US"]] * 3,
            "product_type": ["standard"] * 3,
        }
    )
    rows = pd.DataFrame({"category": own, "impressions": 1_000, "clicks": 50, "orders": 2})

    code = _pair_features(campaigns, _creators(tmp_path), CategoryPriors().fit(rows))["category_code"].to_numpy()

    per_campaign = code.reshape(3, -1)
    assert not np.isnan(code).any()
    assert (per_campaign == per_campaign[:, :1]).all()
    assert per_campaign[0, 0] != per_campaign[1, 0] and per_campaign[0, 0] == per_campaign[2, 0]


def test_the_optional_features_are_those_a_creator_stating_no_optional_field_leaves_unknown(tmp_path):
    """`OPTIONAL_FEATURES`, the feature columns the logged model may be given without (as unknown in every row), are
    exactly those the creators' optional profile fields make: missing for a creator who states none of them, as
    the heads saw in training, and known for one who states them all. Of every other feature, only the two that a
    creator without a record has no value for are missing (neither creator has one)."""
    stated = {
        "avg_views": 500,
        "audience_marketplaces": {"US": 0.5},
        "audience_mobile_share": 0.7,
        "avg_dwell_seconds": 12.5,
        "storefront_followers_30d": 40,
        "storefront_return_rate": 0.05,
        "disclosure_violations": 1,
    }
    rows = [
        {"creator_id": "silent", "creator_type": "social_creator", "platforms": ["tiktok"], "interest_tags": ["c"]},
        {"creator_id": "open", "creator_type": "review_site", "platforms": ["blog"], "interest_tags": ["b"], **stated},
    ]
    path = tmp_path / "creators.jsonl"
    path.write_text("".join(json.dumps(row | {"followers": 1000}) + "\n" for row in rows))
    creators = read_table(path, "creators").frame
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["in-us"],
            "category": ["beauty"],
            "price": [20.0],
            "commission_rate": [0.1],
            "marketplaces": [["US"]],
            "product_type": ["standard"],
        }
    )
    rates = pd.DataFrame({"category": ["beauty"], "impressions": [1_000], "clicks": [50], "orders": [2]})
    features = _pair_features(campaigns, creators, CategoryPriors().fit(rates))[FEATURES]
    unknown = features.columns[features.isna().to_numpy()[0]]
    no_record = {"hist_log_impressions_per_campaign", "hist_market_share"}  # both creators have none
    assert set(unknown) == set(OPTIONAL_FEATURES) | no_record
    assert set(features.columns[features.isna().to_numpy()[1]]) == no_record
    assert [name for name in FEATURES if name in OPTIONAL_FEATURES] == OPTIONAL_FEATURES
