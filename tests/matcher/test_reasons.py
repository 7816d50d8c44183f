"""Reasons: each clause appears exactly when its evidence does, and topical claims rest on a measured threshold."""

from __future__ import annotations

import math

import pytest

from features.similarity import TAG_FIT_THRESHOLD
from matcher.explain import reason

BASE = dict(
    fit_tag="gaming",
    fit_phrase="Wireless controller for PC and console",
    fit_similarity=0.55,
    market_share=0.42,
    marketplaces=["US", "CA"],
    hist_campaigns=3.0,
    hist_ctr=0.031,
    hist_cvr=0.052,
    funnel_stage="awareness",
    creator_type="social_creator",
)


def test_a_fitting_tag_is_named_with_the_phrase_it_fits():
    text = reason(**BASE)
    assert "“gaming” fits “Wireless controller for PC and console” (similarity 0.55)" in text
    assert "not clearly related" not in text


@pytest.mark.parametrize("similarity", [TAG_FIT_THRESHOLD - 0.01, 0.1, math.nan])
def test_no_closeness_is_claimed_below_the_threshold(similarity):
    text = reason(**{**BASE, "fit_similarity": similarity})
    assert "fits" not in text and "gaming" not in text
    assert text.startswith("Interests not clearly related to the brief;")


def test_no_tag_means_no_claim():
    assert "fits" not in reason(**{**BASE, "fit_tag": "", "fit_phrase": ""})


def test_audience_clause_only_when_the_split_is_known():
    assert "42% of audience in US/CA" in reason(**BASE)
    assert "of audience" not in reason(**{**BASE, "market_share": math.nan})


def test_record_or_plainly_no_record():
    assert "record of 3 campaigns at 3.1% click-through and 5.2% orders per click" in reason(**BASE)
    new = reason(**{**BASE, "hist_campaigns": 0.0})
    assert "no record yet: estimate rests on interest fit, reach and category averages" in new
    assert "record of" not in new
    unrelated_new = reason(**{**BASE, "hist_campaigns": 0.0, "fit_similarity": 0.1})
    assert "no record yet: estimate rests on reach and category averages" in unrelated_new


def test_long_phrases_are_shortened_and_the_role_is_last():
    text = reason(**{**BASE, "fit_phrase": "word " * 40})
    assert "…”" in text
    assert text.endswith("awareness role (social creator).")
