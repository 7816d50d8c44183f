"""Track records: only settled campaigns teach, only the past is visible, and priors shrink toward the overall rate."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError

from features.contract import CATEGORIES
from features.history import HISTORY_COLUMNS, MAX_CATEGORY_CODES, CategoryPriors, creator_history, settled_rows
from features.records import CreatorRecords, marketplace_history_as_of

D = dt.date


def campaigns_frame(rows: list[tuple[str, str, dt.date, dt.date]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["campaign_id", "category", "start_date", "end_date"])
    return frame.assign(marketplaces=[["US"]] * len(frame))


def performance_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["campaign_id", "creator_id", "impressions", "clicks", "orders", "status"])


CAMPAIGNS = campaigns_frame(
    [
        ("c1", "beauty", D(2025, 12, 1), D(2026, 1, 1)),  # settles 2026-01-08
        ("c2", "home", D(2026, 1, 5), D(2026, 1, 25)),  # settles 2026-02-01
        ("c3", "home", D(2026, 2, 1), D(2026, 3, 1)),  # settles 2026-03-08
    ]
)
PERFORMANCE = performance_frame(
    [
        ("c1", "u1", 1000, 70, 7, "settled"),
        ("c1", "u2", 900, 30, 1, "pending"),
        ("c2", "u1", 2000, 40, 2, "settled"),
        ("c2", "u2", 400, 20, 1, "settled"),
        ("c3", "u1", 500, 10, 0, "settled"),
        ("c9", "u1", 800, 8, 1, "settled"),  # no such campaign
    ]
)


def test_settled_rows_drop_pending_rows_and_unknown_campaigns():
    """Without as_of every settled row of a known campaign teaches; pending rows never do."""
    rows = settled_rows(PERFORMANCE, CAMPAIGNS)

    assert list(zip(rows["campaign_id"], rows["creator_id"], strict=True)) == [
        ("c1", "u1"),
        ("c2", "u1"),
        ("c2", "u2"),
        ("c3", "u1"),
    ]
    assert rows["category"].tolist() == ["beauty", "home", "home", "home"]
    assert rows["settled_on"].tolist() == [
        pd.Timestamp(d) for d in ("2026-01-08", "2026-02-01", "2026-02-01", "2026-03-08")
    ]
    assert rows["start_date"].iloc[0] == pd.Timestamp("2025-12-01")


def test_settled_rows_exclude_campaigns_less_than_seven_days_past_their_end():
    """As of a date, a campaign teaches only once end_date + 7 days has come (the boundary day included)."""
    as_of = pd.Timestamp("2026-02-01")

    rows = settled_rows(PERFORMANCE, CAMPAIGNS, as_of)

    assert sorted(set(rows["campaign_id"])) == ["c1", "c2"]
    assert len(settled_rows(PERFORMANCE, CAMPAIGNS, pd.Timestamp("2026-01-31"))) == 1
    assert settled_rows(PERFORMANCE, CAMPAIGNS, pd.Timestamp("2026-01-07")).empty
    assert len(settled_rows(PERFORMANCE, CAMPAIGNS, pd.Timestamp("2026-03-08"))) == 4


def test_creator_history_counts_only_campaigns_settled_strictly_before_each_query():
    """Each query sees the totals of campaigns settled before its as_of, never on or after it."""
    rows = settled_rows(PERFORMANCE, CAMPAIGNS)
    queries = pd.DataFrame(
        [
            ("u1", "2026-03-01"),  # c1 + c2
            ("u1", "2026-01-08"),  # c1 settles that very day: not yet
            ("u2", "2026-02-02"),  # c2
            ("u1", "2026-01-09"),  # c1
            ("u3", "2026-06-01"),  # no history at all
            ("u1", "2026-12-31"),  # c1 + c2 + c3
            ("u2", "2026-02-01"),  # c2 settles that day: not yet; c1 was pending
        ],
        columns=["creator_id", "as_of"],
    )

    history = creator_history(rows, no_priors(), queries)

    assert list(history.columns) == ["creator_id", *HISTORY_COLUMNS]
    assert history["creator_id"].tolist() == queries["creator_id"].tolist()
    # Priors fitted on no rows: beauty CTR 0.07, any other category 0.05; orders per click 0.04.
    expected = pd.DataFrame(
        [
            ("u1", 2, 3000, 110, 9, 70 + 100, (70 + 40) * 0.04),
            ("u1", 0, 0, 0, 0, 0, 0),
            ("u2", 1, 400, 20, 1, 20, 20 * 0.04),
            ("u1", 1, 1000, 70, 7, 70, 70 * 0.04),
            ("u3", 0, 0, 0, 0, 0, 0),
            ("u1", 3, 3500, 120, 9, 70 + 100 + 25, (70 + 40 + 10) * 0.04),
            ("u2", 0, 0, 0, 0, 0, 0),
        ],
        columns=["creator_id", *HISTORY_COLUMNS],
    )
    expected[HISTORY_COLUMNS] = expected[HISTORY_COLUMNS].astype(float)
    pd.testing.assert_frame_equal(history, expected, check_dtype=False, atol=1e-9)


def test_creator_history_without_queries_sums_everything_per_creator():
    """With no queries, each creator gets the totals over all settled rows."""
    rows = settled_rows(PERFORMANCE, CAMPAIGNS)

    history = creator_history(rows, no_priors()).set_index("creator_id")

    assert history.index.tolist() == ["u1", "u2"]
    assert history.loc["u1", ["hist_campaigns", "hist_impressions", "hist_clicks", "hist_orders"]].tolist() == [
        3.0,
        3500.0,
        120.0,
        9.0,
    ]
    assert history.loc["u2", "hist_prior_clicks"] == pytest.approx(400 * 0.05)


def random_history(seed: int, distinct_days: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Settled rows of 12 creators over 80 campaigns, and 150 (creator, as_of) queries."""
    rng = np.random.default_rng(seed)
    n_campaigns, n_creators = 80, 12
    day = rng.permutation(n_campaigns) if distinct_days else rng.integers(0, 25, n_campaigns)
    ends = [D(2025, 1, 1) + dt.timedelta(days=int(d)) for d in day]
    campaigns = campaigns_frame(
        [(f"c{i}", str(rng.choice(["beauty", "home"])), end - dt.timedelta(days=20), end) for i, end in enumerate(ends)]
    )
    perf = []
    for i in range(n_campaigns):
        for creator in rng.choice(n_creators, 4, replace=False):
            impressions = int(rng.integers(100, 5000))
            clicks = int(rng.integers(0, impressions // 10))
            perf.append((f"c{i}", f"u{creator}", impressions, clicks, int(rng.integers(0, clicks + 1)), "settled"))
    rows = settled_rows(performance_frame(perf), campaigns)
    queries = pd.DataFrame(
        {
            "creator_id": [f"u{c}" for c in rng.integers(0, n_creators, 150)],
            "as_of": [pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(d)) for d in rng.integers(0, 100, 150)],
        }
    )
    return rows, queries


def brute_force_history(rows: pd.DataFrame, queries: pd.DataFrame) -> pd.DataFrame:
    out = []
    for creator_id, as_of in queries.itertuples(index=False):
        past = rows[(rows["creator_id"] == creator_id) & (rows["settled_on"] < as_of)]
        out.append((len(past), past["impressions"].sum(), past["clicks"].sum(), past["orders"].sum()))
    return pd.DataFrame(out, columns=["hist_campaigns", "hist_impressions", "hist_clicks", "hist_orders"]).astype(float)


def test_creator_history_matches_brute_force_when_settle_days_differ():
    """On many creators and queries, the as-of totals equal a direct filter-and-sum."""
    rows, queries = random_history(seed=3, distinct_days=True)

    history = creator_history(rows, no_priors(), queries)

    expected = brute_force_history(rows, queries)
    pd.testing.assert_frame_equal(history[expected.columns], expected)


def test_creator_history_matches_brute_force_when_campaigns_settle_the_same_day():
    """Several campaigns of one creator settling on the same day all count once that day has passed."""
    rows, queries = random_history(seed=3, distinct_days=False)

    history = creator_history(rows, no_priors(), queries)

    expected = brute_force_history(rows, queries)
    pd.testing.assert_frame_equal(history[expected.columns], expected)


def test_marketplace_records_sum_each_asked_marketplace_of_campaigns_settled_before_the_date():
    """A creator's record in a campaign's marketplaces: per marketplace asked, the campaigns that ran there and
    settled before the date, summed; a creator with none there has zeros, whatever it did elsewhere."""
    rows, queries = random_history(seed=5, distinct_days=False)
    rng = np.random.default_rng(5)
    choices = [["US"], ["DE"], ["US", "CA"], ["UK", "DE"]]
    ran_in = {c: choices[int(rng.integers(len(choices)))] for c in rows["campaign_id"].unique()}
    rows = rows.assign(marketplaces=rows["campaign_id"].map(ran_in))
    queries = queries.assign(marketplaces=[choices[int(i)] for i in rng.integers(len(choices), size=len(queries))])

    found = marketplace_history_as_of(rows, no_priors(), queries)

    expected = []
    for creator_id, as_of, markets in queries[["creator_id", "as_of", "marketplaces"]].itertuples(index=False):
        past = rows[(rows["creator_id"] == creator_id) & (rows["settled_on"] < as_of)]
        there = pd.concat([past[past["marketplaces"].map(lambda ran, m=m: m in ran).astype(bool)] for m in markets])
        expected.append((len(there), there["impressions"].sum(), there["clicks"].sum(), there["orders"].sum()))
    expected = pd.DataFrame(expected, columns=["hist_campaigns", "hist_impressions", "hist_clicks", "hist_orders"])
    pd.testing.assert_frame_equal(found[expected.columns], expected.astype(float))
    assert (found["hist_campaigns"] == 0).any() and (found["hist_campaigns"] > 0).any()
    # Every row counts once per marketplace it ran in, in the per-marketplace records scoring reads.
    records = CreatorRecords.from_rows(rows, no_priors()).marketplace_history
    assert records["hist_campaigns"].sum() == rows["marketplaces"].map(len).sum()


# --- category priors ----------------------------------------------------------------------------------------------


def prior_rows(data: dict[str, tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(category, *numbers) for category, numbers in data.items()],
        columns=["category", "impressions", "clicks", "orders"],
    )


def no_priors() -> CategoryPriors:
    """Priors fitted on no rows: the documented fallbacks."""
    return CategoryPriors().fit(prior_rows({}))


def test_priors_fitted_on_no_rows_use_the_documented_fallbacks():
    """Fitted on nothing: beauty 7% click-through, other categories 5%, 4% orders per click; unfitted, none."""
    with pytest.raises(NotFittedError, match="CategoryPriors"):
        CategoryPriors().ctr(pd.Series(["beauty"]))
    priors = no_priors()

    np.testing.assert_allclose(priors.ctr(pd.Series(["beauty", "home"])), [0.07, 0.05])
    np.testing.assert_allclose(priors.cvr(pd.Series(["beauty", "home"])), [0.04, 0.04])


def test_category_without_data_falls_back_to_the_overall_rate_and_beauty_to_seven_percent():
    """An unseen category gets the overall rates; unseen beauty gets 0.07 click-through."""
    priors = CategoryPriors().fit(prior_rows({"home": (1_000_000, 20_000, 1_000), "toys": (200_000, 6_000, 600)}))

    overall_ctr = 26_000 / 1_200_000
    overall_cvr = 1_600 / 26_000
    assert priors.overall_ctr_ == pytest.approx(overall_ctr)
    assert priors.overall_cvr_ == pytest.approx(overall_cvr)
    np.testing.assert_allclose(priors.ctr(pd.Series(["garden", "beauty"])), [overall_ctr, 0.07])
    np.testing.assert_allclose(priors.cvr(pd.Series(["garden", "beauty"])), [overall_cvr, overall_cvr])


def test_a_sellers_own_category_names_are_categories_the_ranker_can_tell_apart():
    """Categories named as the seller names them get codes of their own (they were all missing, so the ranker
    could not split on category at all); the contract's names keep the codes registered rankers learned, and a
    category the priors never saw is missing, as the booster reads one it never saw."""
    own = ["Beauty & Personal Care", "Patio, Lawn & Garden", "Toys & Games"]
    priors = CategoryPriors().fit(prior_rows({name: (10_000, 500, 20) for name in [*own, "home"]}))

    codes = priors.codes(pd.Series([*own, own[0], "home", "beauty", "Pet Supplies"]))

    assert not np.isnan(codes[:3]).any() and len(set(codes[:3])) == 3
    assert codes[3] == codes[0]
    assert list(codes[4:6]) == [CATEGORIES.index("home"), CATEGORIES.index("beauty")]
    assert set(codes[:3]).isdisjoint(range(len(CATEGORIES)))
    assert np.isnan(codes[6])
    refitted = CategoryPriors().fit(prior_rows({name: (10_000, 500, 20) for name in reversed([*own, "home"])}))
    np.testing.assert_array_equal(refitted.codes(pd.Series(own)), codes[:3])


def test_category_codes_stop_at_what_the_boosted_heads_take():
    """A seller with 300 category names: the first 255 by name have codes, the rest are missing, and a real
    booster fits on them (it refuses more than 255 categories)."""
    names = [f"department {i:03d}" for i in range(300)]
    priors = CategoryPriors().fit(prior_rows({name: (1_000, 50, 2) for name in names}))
    codes = priors.codes(pd.Series(names))

    assert len(set(codes[~np.isnan(codes)])) == MAX_CATEGORY_CODES - len(CATEGORIES)
    assert np.isnan(codes[MAX_CATEGORY_CODES - len(CATEGORIES) :]).all()
    target = np.arange(len(names)) % 7
    HistGradientBoostingRegressor(categorical_features=[0], max_iter=5).fit(codes.reshape(-1, 1), target)
    with pytest.raises(ValueError, match="cardinality"):
        HistGradientBoostingRegressor(categorical_features=[0], max_iter=5).fit(np.arange(300.0).reshape(-1, 1), target)


def test_category_with_much_data_moves_to_its_own_rate_and_with_little_stays_near_the_prior():
    """Shrinkage: a million impressions at 2% give about 2%; a thousand at 10% stay near the overall rate."""
    priors = CategoryPriors().fit(
        prior_rows({"home": (5_000_000, 100_000, 5_000), "toys": (1_000, 100, 30), "pets": (400_000, 4_000, 200)})
    )
    overall_ctr = priors.overall_ctr_

    home, toys = priors.ctr(pd.Series(["home", "toys"]))
    assert home == pytest.approx(0.02, abs=2e-4)
    assert overall_ctr < toys < 0.10
    assert abs(toys - overall_ctr) < abs(toys - 0.10)
    home_cvr, toys_cvr = priors.cvr(pd.Series(["home", "toys"]))
    assert home_cvr == pytest.approx(0.05, abs=1e-3)
    assert priors.overall_cvr_ < toys_cvr < 0.30


def test_more_data_pulls_a_category_closer_to_its_own_rate():
    """The same 2% click-through on more impressions lands closer to 2%."""
    gaps = []
    for impressions in (1_000, 10_000, 100_000, 1_000_000):
        priors = CategoryPriors().fit(
            prior_rows({"home": (impressions, impressions // 50, 0), "toys": (100_000, 10_000, 0)})
        )
        gaps.append(abs(priors.ctr(pd.Series(["home"]))[0] - 0.02))

    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 0.1 * gaps[0]


def test_beauty_with_little_data_shrinks_toward_seven_percent_not_the_overall_rate():
    """Beauty's anchor is the 7% North-America benchmark even once other categories set the overall rate."""
    priors = CategoryPriors().fit(prior_rows({"home": (2_000_000, 40_000, 2_000), "beauty": (2_000, 20, 1)}))

    beauty = priors.ctr(pd.Series(["beauty"]))[0]

    assert beauty == pytest.approx((20 + 20_000 * 0.07) / (2_000 + 20_000))
    assert abs(beauty - 0.07) < abs(beauty - priors.overall_ctr_)


def affinity_rows() -> tuple[pd.DataFrame, pd.Series]:
    """Beauty and home campaigns; skincare creators click in beauty, hiking ones in home, deals sites in both."""
    rng = np.random.default_rng(0)
    tags, categories, ctr = [], [], []
    for _ in range(60):
        for kind, category, rate in [
            (["skincare"], "beauty", 0.08),
            (["deals", "skincare"], "beauty", 0.08),
            (["deals", "hiking"], "beauty", 0.01),
            (["hiking"], "home", 0.06),
            (["deals", "hiking"], "home", 0.06),
            (["deals", "skincare"], "home", 0.01),
        ]:
            tags.append(kind)
            categories.append(category)
            ctr.append(rate)
    impressions = np.full(len(tags), 2000)
    clicks = rng.binomial(impressions, ctr)
    rows = pd.DataFrame({"category": categories, "impressions": impressions, "clicks": clicks, "orders": clicks // 20})
    return rows, pd.Series(tags)


def test_joint_tag_model_gives_a_generic_tag_no_credit_for_the_category_tags_it_travels_with():
    from features.affinity import TagCategoryAffinity

    rows, tags = affinity_rows()
    affinity = TagCategoryAffinity().fit(rows, tags, CategoryPriors().fit(rows))
    out = affinity.transform(
        pd.Series([["deals", "skincare"], ["deals", "hiking"], ["skincare"]]), pd.Series(["beauty"] * 3)
    )
    in_category, out_of_category, specialist = out["tag_model_ctr"]
    assert in_category > 3 * out_of_category
    assert in_category == pytest.approx(specialist, rel=0.3)


def test_a_category_without_an_order_gets_no_order_lift_and_no_warning():
    """A category whose rows sold nothing: the Poisson fit started from log(0) and fell back to another solver,
    warning twice per category and build (80 lines of `train` on `simulate --creators 10 --campaigns 10`) for what
    it then found, a rate of 0. The same is given without a fit: an order lift of 0, the click lift as before."""
    import warnings

    from features.affinity import TagCategoryAffinity

    rows, tags = affinity_rows()
    rows.loc[rows["category"] == "home", "orders"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        affinity = TagCategoryAffinity().fit(rows, tags, CategoryPriors().fit(rows))
    out = affinity.transform(pd.Series([["hiking"], ["deals", "skincare"], ["skincare"]]), pd.Series(["home"] * 3))
    assert out["tag_model_cvr"].tolist() == [0.0, 0.0, 0.0]
    assert affinity.intercepts_.loc["home", "cvr"] == -np.inf and np.isfinite(affinity.intercepts_.loc["home", "ctr"])
    hiking, generic, _ = out["tag_model_ctr"]
    assert hiking > 3 * generic


def test_participation_lift_is_high_for_a_category_s_own_tags_and_neutral_for_generic_or_unknown_ones():
    from features.affinity import TagCategoryAffinity

    rows, tags = affinity_rows()
    affinity = TagCategoryAffinity().fit(rows, tags, CategoryPriors().fit(rows))
    out = affinity.transform(
        pd.Series([["skincare"], ["deals"], ["never seen"], ["hiking"]]), pd.Series(["beauty"] * 4)
    )["tag_participation"].to_numpy()
    own, generic, unknown, other = out
    assert own > 1.2 and other < 0.9
    assert generic == pytest.approx(1.0, abs=0.1) and unknown == 1.0


def test_history_relates_a_tag_to_a_category_only_beyond_what_chance_gives():
    """A tag in 3 of a category's rows where chance gives about 3.5 is at chance and relates nothing; one in 6 is
    above it and relates, as a category's own tags do. A tag the history never saw is no evidence."""
    from features.affinity import TagCategoryAffinity

    rows, tags = affinity_rows()
    few = pd.DataFrame(
        {"category": ["beauty"] * 3 + ["home"] * 4 + ["beauty"] * 6 + ["home"], "impressions": 2000, "clicks": 100}
    ).assign(orders=5)
    rows = pd.concat([rows, few], ignore_index=True)
    tags = pd.concat([tags, pd.Series([["lifestyle"]] * 7 + [["glam"]] * 7)], ignore_index=True)
    affinity = TagCategoryAffinity().fit(rows, tags, CategoryPriors().fit(rows))
    out = affinity.transform(
        pd.Series([["lifestyle"], ["glam"], ["skincare"], ["deals"], ["never seen"]]), pd.Series(["beauty"] * 5)
    )
    lifestyle, glam, own, generic, unknown = out["tag_participation_floor"].to_numpy()
    assert out["tag_participation"].iloc[0] == pytest.approx(1.0, abs=0.1)
    assert lifestyle < 1.0 and generic < 1.0 and unknown == 0.0
    assert glam > 1.0 and own > 1.0


def test_coded_tag_lists_give_the_affinities_of_the_lists_they_code_in_any_row_order():
    """A table's tags coded once (`TagLists`) and taken by row give what `transform` gives for those rows' lists,
    spelling aside: case and surrounding spaces do not make a tag new."""
    from features.affinity import TagCategoryAffinity, TagLists

    rows, tags = affinity_rows()
    affinity = TagCategoryAffinity().fit(rows, tags, CategoryPriors().fit(rows))
    table = pd.Series([["deals", "skincare"], [" Hiking "], [], ["never seen", "SKINCARE"], ["deals"]])
    pick = np.array([3, 0, 0, 2, 4, 1])
    categories = np.array(["beauty", "home", "beauty", "toys", "home", "beauty"], dtype=object)

    coded = affinity.transform_lists(TagLists.of(table).take(pick), categories)

    spelled = [[t.strip().lower() for t in table[i]] for i in pick]
    pd.testing.assert_frame_equal(coded, affinity.transform(pd.Series(spelled), pd.Series(categories)))
    skincare = affinity.transform(pd.Series([["skincare"]]), pd.Series(["beauty"]))["tag_affinity_ctr"].iloc[0]
    assert coded["tag_affinity_ctr"].iloc[0] == skincare > 1.0  # SKINCARE is skincare; an unknown tag lifts 1
    assert (coded.iloc[3] == affinity.transform(pd.Series([[]]), pd.Series(["toys"])).iloc[0]).all()


def test_a_tag_history_never_saw_reads_in_part_through_the_closest_known_tag_in_meaning(embedder):
    """Creators name interests in their own words: one tagged "skin care" (history learned "skincare") read as a tag
    of no evidence ranked below any creator whose tag history spelled the same way, whatever the product. With an
    embedder the unknown tag takes the history of the known tags close to it in part (lifts between theirs and none),
    and relates where they do; a tag close to none stays unknown, and known tags read exactly as before."""
    from features.affinity import TagCategoryAffinity

    rows, tags = affinity_rows()
    priors = CategoryPriors().fit(rows)
    affinity = TagCategoryAffinity().fit(rows, tags, priors, embedder)
    asked = pd.Series([["skin care"], ["skin care"], ["income tax law"], ["skincare"], ["never seen"]])
    categories = pd.Series(["beauty", "home", "beauty", "beauty", "beauty"])

    read = affinity.transform(asked, categories, embedder)
    plain = affinity.transform(asked, categories)

    skin_care_beauty, skin_care_home, far, skincare, unknown = (read.iloc[i] for i in range(5))
    assert 1.0 < skin_care_beauty["tag_affinity_ctr"] < skincare["tag_affinity_ctr"]
    assert skin_care_beauty["tag_participation_floor"] > 1.0  # relates to beauty, as skincare does
    assert 0 < skin_care_beauty["tag_affinity_evidence"] < skincare["tag_affinity_evidence"]
    skincare_home = affinity.transform(pd.Series([["skincare"]]), pd.Series(["home"])).iloc[0]
    assert skincare_home["tag_affinity_ctr"] < skin_care_home["tag_affinity_ctr"] < 1.0  # sold badly there: less so
    pd.testing.assert_series_equal(far, unknown, check_names=False)  # close to no known tag: no evidence
    assert far["tag_affinity_ctr"] == 1.0 and far["tag_participation_floor"] == 0.0
    pd.testing.assert_frame_equal(read.iloc[3:], plain.iloc[3:])  # known and unknown tags: as without an embedder
    assert plain.iloc[0]["tag_affinity_ctr"] == 1.0  # without one, "skin care" is unknown
    # A table fitted without an embedder (as rankers trained before stand-ins) reads every tag as itself.
    old = TagCategoryAffinity().fit(rows, tags, priors)
    pd.testing.assert_frame_equal(old.transform(asked, categories, embedder), plain)
