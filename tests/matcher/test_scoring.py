"""The rule that, with no record, a creator whose interests relate to the product scores above one whose do not."""

from __future__ import annotations

import warnings

import numpy as np

from matcher.scoring import UNRELATED_MARGIN, unrelated_after_related


def test_unrelated_new_creators_go_below_every_related_one_keeping_their_order():
    # Campaign 0: two related new creators (5, 3) and two unrelated ones with more reach (40, 20).
    score = np.array([5.0, 3.0, 40.0, 20.0])
    campaign = np.zeros(4, dtype=int)
    no_record = np.ones(4, dtype=bool)
    related = np.array([True, True, False, False])

    got = unrelated_after_related(score, campaign, no_record, related)

    np.testing.assert_array_equal(got[:2], score[:2])
    assert got[2:].max() == UNRELATED_MARGIN * 3.0
    assert got[2] > got[3]
    assert got[2] / got[3] == 2.0


def test_creators_with_a_record_and_campaigns_without_both_kinds_are_left_alone():
    # Campaign 0 has only related creators; campaign 1 only unrelated ones; campaign 2 an unrelated creator with a
    # record above a related new one, and an unrelated new creator already below it.
    score = np.array([70.0, 20.0, 9.0, 1.0, 50.0, 4.0, 0.5])
    campaign = np.array([0, 0, 1, 1, 2, 2, 2])
    no_record = np.array([True, True, True, True, False, True, True])
    related = np.array([True, True, False, False, False, True, False])

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the campaigns without an unrelated pair once overflowed a division
        got = unrelated_after_related(score, campaign, no_record, related)

    np.testing.assert_array_equal(got, score)
