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


def test_an_interest_that_fits_the_category_says_so_rather_than_quote_it_as_the_briefs():
    """A new-seller trial read "Interest “family” fits “home” (similarity 0.51)" of a wall-decor brief that never
    says "home": the phrase was the campaign's category, which the sentence did not say."""
    text = reason(**{**BASE, "fit_tag": "family", "fit_phrase": "home"}, category="home")
    assert text.startswith("Interest “family” fits the category “home” (similarity 0.55);")
    assert "fits the category" not in reason(**BASE, category="electronics")


@pytest.mark.parametrize("similarity", [TAG_FIT_THRESHOLD - 0.01, 0.1, math.nan])
def test_no_closeness_is_claimed_below_the_threshold(similarity):
    text = reason(**{**BASE, "fit_similarity": similarity})
    assert "fits" not in text and "gaming" not in text
    assert text.startswith("Interests not clearly related to the brief;")


def test_no_tag_means_no_claim():
    assert "fits" not in reason(**{**BASE, "fit_tag": "", "fit_phrase": ""})


def test_audience_share_when_the_split_is_known_and_plainly_not_stated_otherwise():
    assert "42% of audience in US/CA" in reason(**BASE)
    unknown = reason(**{**BASE, "market_share": math.nan})
    assert "of audience" not in unknown and "audience in US/CA not stated" in unknown


def test_record_or_plainly_no_record():
    assert "record of 3 campaigns at 3.1% click-through and 5.2% orders per click" in reason(**BASE)
    new = reason(**{**BASE, "hist_campaigns": 0.0})
    assert "no record yet: estimate rests on interest fit, reach and category averages" in new
    assert "record of" not in new
    unrelated_new = reason(**{**BASE, "hist_campaigns": 0.0, "fit_similarity": 0.1})
    assert "no record yet: estimate rests on reach and category averages" in unrelated_new


def test_the_record_says_how_much_of_it_is_in_the_category_and_never_invents_a_rate():
    assert "record of 3 campaigns (none in this category) at 3.1%" in reason(**BASE, hist_category_campaigns=0.0)
    assert "record of 3 campaigns (2 in this category) at" in reason(**BASE, hist_category_campaigns=2.0)
    no_clicks = reason(**{**BASE, "hist_ctr": 0.0, "hist_cvr": math.nan})
    assert "at 0.0% click-through and no clicks yet" in no_clicks and "orders per click" not in no_clicks
    assert "with no impressions reported" in reason(**{**BASE, "hist_ctr": math.nan, "hist_cvr": math.nan})
    # 1 click in 16,379 impressions is not 0.0%.
    assert "at 0.0061% click-through" in reason(**{**BASE, "hist_ctr": 1 / 16_379})


def test_a_new_creator_in_a_category_without_history_rests_on_other_categories():
    text = reason(**{**BASE, "hist_campaigns": 0.0}, category_known=False)
    assert "averages of other categories (no past campaigns in this category)" in text
    assert "category averages" not in text


def test_interests_related_by_the_categorys_history_say_so_instead_of_unrelated():
    text = reason(**{**BASE, "fit_similarity": 0.1}, related_by_history=True)
    assert "not clearly related" not in text
    assert text.startswith(
        "Interests not close to the brief in meaning, but creators who share them (or interests close"
    )


def test_a_demoted_creator_says_why():
    assert reason(**BASE, disclosure_violations=2, demoted=True).endswith(
        "; ranked lower for 2 past disclosure violations."
    )
    assert "violation" not in reason(**BASE, disclosure_violations=2, demoted=False)


def test_long_phrases_are_shortened_and_the_role_is_last():
    text = reason(**{**BASE, "fit_phrase": "word " * 40})
    assert "…”" in text
    assert text.endswith("awareness role (social creator).")  # the role is last unless a demotion follows
