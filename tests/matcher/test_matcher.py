"""The Python API: eligibility, slate sizes, the contract's columns, reasons, and artifact guards."""

from __future__ import annotations

import datetime as dt
import itertools
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from features.embeddings import Embedder, creator_vectors
from features.environment import QUIET_ENVIRONMENT
from features.product_type import resolve_product_types
from features.records import SettledPerformance
from features.rows import MAX_PRICE, CampaignRow
from features.similarity import TAG_FIT_THRESHOLD
from features.tables import Table, read_table
from matcher.api import MATCH_COLUMNS, Matcher, MatchSettings
from matcher.assignment import budget_rows
from matcher.candidate_index import ArtifactMismatch, CandidateIndex
from matcher.schema import MATCH_SCHEMA, SlateEntry, empty_matches
from matcher.settings import SlatePolicy
from matcher.slate import plan_sizes
from training.registry import ModelNotFound

# One campaign as a campaign tool passes it to the API.
API_CAMPAIGN = {
    "campaign_id": "api-1",
    "brand": "Lumora",
    "brief": "Our vitamin C serum for glowing skin; skincare fans.",
    "category": "beauty",
    "asins": ["B0ABCDEFGH"],
    "price": 30.0,
    "commission_rate": 0.15,
    "budget": 5000.0,
    "start_date": dt.date(2026, 12, 1),
    "end_date": dt.date(2026, 12, 31),
    "marketplaces": ["US"],
}


@pytest.fixture(scope="module")
def index(creators, embedder):
    return CandidateIndex.build(creator_vectors(embedder, creators), creators["creator_id"], embedder.model)


@pytest.fixture(scope="module")
def result(creators, campaigns, ranker, index, embedder):
    return Matcher(creators, model=ranker, index=index, embedder=embedder).match_many(campaigns)


def test_the_typed_row_and_the_empty_table_follow_the_one_schema(result):
    python_type = {"string": str, "int64": int, "double": float}
    assert {name: f.annotation for name, f in SlateEntry.model_fields.items()} == {
        column.name: python_type[str(column.type)] for column in MATCH_SCHEMA
    }
    assert list(SlateEntry.model_fields) == MATCH_COLUMNS == MATCH_SCHEMA.names
    empty = empty_matches()
    assert list(empty.columns) == MATCH_COLUMNS and empty["rank"].dtype == np.int64
    # As a filled table's: its strings were object beside a filled table's `str`.
    assert len(result.matches) and empty.dtypes.equals(result.matches.dtypes)


def test_matches_have_the_contract_columns_and_ranks(result, campaigns):
    m = result.matches
    assert list(m.columns) == MATCH_COLUMNS
    for _, group in m.groupby("campaign_id"):
        assert group["rank"].tolist() == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
    assert m["p_click"].between(0, 1).all() and m["p_order"].between(0, 1).all()
    rate = campaigns.set_index("campaign_id")["commission_rate"].reindex(m["campaign_id"]).to_numpy()
    np.testing.assert_allclose(m["expected_commission"], m["expected_sales"] * rate)
    np.testing.assert_allclose(m["expected_orders"], m["expected_clicks"] * m["p_order"])
    assert (m["model_version"] == "creator-ranker/1").all()


def test_every_campaign_is_matched_or_summarised(result, campaigns):
    assert [s.campaign_id for s in result.summaries] == campaigns["campaign_id"].tolist()
    for s in result.summaries:
        assert (s.slate_size > 0) == (s.status == "matched")
        assert s.size_reason


def test_a_slates_orders_get_a_range_only_in_a_category_the_seller_has_run_before(creators, ranker, index, embedder):
    """The range of a slate's orders is calibrated on past campaigns: a category none of them was in gets none."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    unseen = {**API_CAMPAIGN, "campaign_id": "api-2", "category": "musical instruments", "brief": "A beginner ukulele."}
    known, new = matcher.match_many([API_CAMPAIGN, unseen]).summaries
    assert known.slate_size > 0 and new.slate_size > 0
    assert 0 <= known.expected_orders_low < known.expected_orders < known.expected_orders_high
    assert known.expected_commission_low < known.expected_commission < known.expected_commission_high
    assert new.expected_orders > 0
    ends = ("expected_orders_low", "expected_orders_high", "expected_commission_low", "expected_commission_high")
    assert np.isnan([getattr(new, end) for end in ends]).all()


def test_never_proposes_ineligible_creators(result, creators):
    proposed = creators.set_index("creator_id").loc[result.matches["creator_id"]]
    assert proposed["accepts_campaigns"].all()
    assert not (proposed["creator_type"] == "cashback_site").any()


def test_cashback_sites_only_when_the_caller_allows(creators, campaigns, ranker, index, embedder):
    strict = Matcher(creators, model=ranker, index=index, embedder=embedder)
    allowed = Matcher(
        creators, model=ranker, index=index, embedder=embedder, settings=MatchSettings(allow_cashback=True)
    )
    cashback = set(creators.loc[creators["creator_type"] == "cashback_site", "creator_id"])
    assert cashback
    assert strict.eligibility.in_index[np.isin(index.creator_ids, list(cashback))].sum() == 0
    assert allowed.eligibility.in_index[np.isin(index.creator_ids, list(cashback))].sum() > 0


def test_standard_slates_are_shorter(result):
    sizes = result.matches.groupby("campaign_id").size()
    kind = result.matches.groupby("campaign_id")["product_type"].first()
    assert sizes[kind == "standard"].max() <= MatchSettings().slate.standard_size
    assert sizes[kind == "standard"].mean() < sizes[kind == "non_standard"].mean()


def test_reasons_name_interests_audience_record_and_role(result):
    reasons = result.matches["reasons"]
    assert reasons.str.len().gt(20).all()
    assert reasons.str.contains("role").all()
    assert reasons.str.contains("fits “", regex=False).any()
    assert reasons.str.contains("of audience in").any()
    assert reasons.str.contains("record of|no record yet").all()


def test_a_reason_names_the_category_when_the_fitting_phrase_is_the_category(
    creators, campaigns, ranker, index, embedder
):
    """The phrase a tag fits is a phrase of the brief or the category's name; a seller looks for a quoted phrase in
    the brief, so the category is called the category."""
    out = Matcher(creators, model=ranker, index=index, embedder=embedder).match_many(campaigns, with_candidates=True)
    on_slates = out.candidates.dropna(subset=["rank"]).merge(out.matches[["campaign_id", "creator_id", "reasons"]])
    on_slates = on_slates.merge(campaigns[["campaign_id", "category"]])
    fits = on_slates[on_slates["fit_similarity"] >= TAG_FIT_THRESHOLD]
    by_category = fits["fit_phrase"] == fits["category"]
    assert by_category.any() and (~by_category).any(), "the case is not exercised"
    said = [
        f"fits the category “{category}”" in text
        for category, text in zip(fits["category"], fits["reasons"], strict=True)
    ]
    assert (np.array(said) == by_category.to_numpy()).all()


def test_one_campaign_as_a_mapping(creators, ranker, index, embedder):
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    out = matcher.match(API_CAMPAIGN)
    assert out.summaries[0].product_type == "non_standard"
    assert len(out.matches) > 0 and (out.matches["campaign_id"] == "api-1").all()


def test_a_marketplace_or_asin_listed_twice_counts_once(creators, campaigns, ranker, index, embedder):
    """A campaign that repeats a marketplace and an ASIN gets the slate, scores and reasons of the same campaign
    listing each once: a repeated market once summed the creators' audience share there twice."""
    matcher = Matcher(
        creators, model=ranker, index=index, embedder=embedder, settings=MatchSettings(min_market_share=0.6)
    )
    once = campaigns.iloc[:3].reset_index(drop=True)
    twice = once.assign(
        marketplaces=[[*m, *m] for m in once["marketplaces"]], asins=[[a[0], *a] for a in once["asins"]]
    )
    assert matcher.match_many(twice).matches.equals(matcher.match_many(once).matches)


def test_names_with_spaces_around_them_are_read_as_a_files_header_is(creators, campaigns, ranker, index, embedder):
    """A spreadsheet's `product_type ` is read as product_type by the command line; a DataFrame or mappings given
    to the API were matched with that column ignored (the product type left to `auto`) and a note saying so."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    plain = campaigns.iloc[:3].reset_index(drop=True).assign(product_type=["standard", "non_standard", "standard"])
    spaced = plain.rename(columns={"product_type": "product_type ", "budget": " budget"})
    records = [
        {(f"{key} " if key in ("product_type", "price") else key): value for key, value in record.items()}
        for record in plain.to_dict(orient="records")
    ]
    expected = matcher.match_many(plain)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "is not in the campaigns table and was ignored"
        for given in (spaced, records):
            out = matcher.match_many(given)
            assert out.matches.equals(expected.matches)
            assert [s.product_type_reason for s in out.summaries] == ["declared by the seller"] * 3


def test_a_misspelt_campaign_column_is_a_note_of_the_result_as_well_as_a_warning(
    creators, campaigns, ranker, index, embedder
):
    """A new-user trial's app sent `product_typ`: the seller's declared type was lost (the campaign matched as
    `auto`) and only a UserWarning said so, which an app reads only by capturing warnings. The same line is now in
    `MatchResult.notes` too, from `match_many` (a DataFrame, mappings) and `match`; a batch without it has none."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    typo = campaigns.iloc[:2].reset_index(drop=True).assign(product_typ="standard")
    line = (
        "the campaigns given: column 'product_typ' is not in the campaigns table and was ignored; did you mean "
        "product_type?"
    )
    for given in (typo, typo.to_dict(orient="records")):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            out = matcher.match_many(given)
        assert out.notes == [line] and [str(w.message) for w in said] == [line]
        assert [s.product_type_reason for s in out.summaries] != ["declared by the seller"] * 2
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert matcher.match(typo.iloc[0].to_dict()).notes == [line]
        assert matcher.match_many(campaigns.iloc[:2]).notes == []


def test_a_marketplace_no_creator_reaches_is_warned_about_once_naming_its_campaigns(
    creators, campaigns, ranker, index, embedder
):
    """A new-user trial's campaign in `GB` (the ISO code; Amazon's is UK) was matched without a word, every
    creator's audience there unknown; such a code is now said once per run with its campaigns, and a run whose
    marketplaces creators state says nothing of the kind. What it does is said as it is: a second trial's note
    spoke of slates resting on reach alone, where the minimum market share had left out every creator who states
    an audience from a campaign sold only there; in one sold elsewhere too, the other marketplaces decide."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    frame = campaigns.iloc[:3].reset_index(drop=True).assign(marketplaces=[["GB"], ["GB", "US"], ["US"]])
    out, said = _matched_with_marketplace_lines(matcher, frame)
    first, second = frame["campaign_id"].iloc[:2]
    silent = creators["audience_marketplaces"].map(lambda shares: not shares)
    typo = "(GB is not one of the contract's marketplace codes, US CA MX UK DE FR IT ES JP AU; did you mean UK?)"
    # The line on prices in a marketplace the ranker never learned from is the next test's.
    assert (
        [line for line in said if "log_price" not in line]
        == [line for line in out.notes if "log_price" not in line]
        == [
            f"marketplace GB of campaign {first}: no creator states an audience there, so every creator who states an "
            "audience split has none of it in its marketplaces, under the minimum market share (5%), and is left out: "
            f"only creators who state no split ({silent.sum()} of the {len(creators)}) can be proposed {typo}",
            f"marketplace GB of campaign {second}: no creator states an audience there, so only its other marketplaces "
            f"count in a creator's audience share {typo}",
        ]
    )
    assert set(out.for_campaign(first)["creator_id"]) <= set(creators.loc[silent, "creator_id"])
    assert not set(out.for_campaign(second)["creator_id"]) <= set(creators.loc[silent, "creator_id"])
    assert _matched_with_marketplace_lines(matcher, campaigns)[1] == []


def test_a_marketplace_the_ranker_never_learned_prices_in_is_said_once_for_the_run(
    creators, campaigns, ranker, index, embedder
):
    """A new-user trial's campaigns in IN, priced in rupees, were read against a ranker's dollar prices without a word.
    Prices are now compared only between campaigns sharing a marketplace, and a run's marketplaces that none of the
    ranker's training campaigns was sold in are named in one line: a price there is read against this run's
    campaigns there alone, and the ranker, which reads a price in its zone's currency, has none to read it in."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    frame = (
        campaigns.iloc[:3]
        .reset_index(drop=True)
        .assign(marketplaces=[["IN"], ["IN", "US", "BR"], ["US"]], product_type="auto")
    )
    out, said = _matched_with_marketplace_lines(matcher, frame)
    priced = [line for line in said if "log_price" in line]
    first, second = frame["campaign_id"].iloc[:2]
    known = ", ".join(ranker.model.past.product_types.marketplaces)
    assert (
        priced
        == [line for line in out.notes if "log_price" in line]
        == [
            f"marketplaces BR, IN of campaigns {first}, {second}: the ranker learned from fewer than 5 campaigns sold "
            "there, so the price of a campaign sold only there is placed, for its product type, among this run's "
            "campaigns there (and those few), and the ranker, which reads a price against its training campaigns' in "
            f"the same currency (log_price_in_zone), has too few there (it learned from campaigns sold in {known}): "
            "a campaign sold only there is scored with its price unknown"
        ]
    )
    # Two campaigns sold in IN are too few to place a price: the one sold there alone is read on its brief.
    reason = next(s.product_type_reason for s in out.summaries if s.campaign_id == first)
    assert "priced" not in reason, reason
    assert not [line for line in _matched_with_marketplace_lines(matcher, campaigns)[1] if "log_price" in line]

    # Warned of once per matcher and marketplace, as a service matching one campaign a call would repeat it on every
    # call; still a note of every result it concerns.
    again, said = _matched_with_marketplace_lines(matcher, frame)
    assert [line for line in again.notes if "log_price" in line] == priced
    assert not [line for line in said if "log_price" in line]
    new = next(code for code in ("MX", "JP", "AU", "ES") if code not in known)
    out, said = _matched_with_marketplace_lines(matcher, frame.assign(marketplaces=[["IN"], [new], ["US"]]))
    assert [line.split(":")[0] for line in said if "log_price" in line] == [f"marketplace {new} of campaign {second}"]
    assert [line.split(":")[0] for line in out.notes if "log_price" in line] == [
        f"marketplaces {', '.join(sorted(['IN', new]))} of campaigns {first}, {second}"
    ]


def _matched_with_marketplace_lines(matcher: Matcher, campaigns: pd.DataFrame) -> tuple[object, list[str]]:
    """`match_many`'s result, and the warnings it gave about marketplaces."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = matcher.match_many(campaigns)
    return out, [str(w.message) for w in said if "marketplace" in str(w.message)]


def test_creators_stating_an_audience_under_the_iso_code_of_a_campaigns_marketplace_are_named(
    creators, campaigns, ranker, index, embedder
):
    """A new-user trial's creators export wrote the United Kingdom as GB (its ISO code), the campaigns as UK
    (Amazon's): a creator stating `{"GB": 0.5, "US": 0.3}` read as having none of its audience in a UK campaign,
    and was left out of it without a word, other creators stating UK. The run now names those creators once per
    code, with the campaigns sold there; a run whose creators state UK says nothing of the kind."""
    in_uk = creators["audience_marketplaces"].map(lambda shares: bool(shares) and "UK" in shares)
    renamed = creators.index[in_uk][:2]
    assert len(renamed) == 2 and in_uk.sum() > 2  # others still state UK: no "no creator states" line
    as_gb = creators.copy()
    as_gb.loc[renamed, "audience_marketplaces"] = as_gb.loc[renamed, "audience_marketplaces"].map(
        lambda shares: {("GB" if code == "UK" else code): share for code, share in shares.items()}
    )
    frame = campaigns.iloc[:3].reset_index(drop=True).assign(marketplaces=[["UK"], ["US", "UK"], ["US"]])
    first, second = frame["campaign_id"].iloc[:2]
    ids = ", ".join(creators.loc[renamed, "creator_id"])

    out, said = _matched_with_marketplace_lines(Matcher(as_gb, model=ranker, index=index, embedder=embedder), frame)

    assert (
        said
        == out.notes
        == [
            f"marketplace UK of campaigns {first}, {second}: 2 creators state an audience in GB ({ids}), which is not "
            "read as audience in UK (GB is not one of the contract's marketplace codes, US CA MX UK DE FR IT ES JP AU; "
            "did you mean UK?): write UK in audience_marketplaces; until then that share is none of a creator's "
            "audience in UK, and a creator can be left out for it"
        ]
    )
    out, said = _matched_with_marketplace_lines(Matcher(creators, model=ranker, index=index, embedder=embedder), frame)
    assert said == out.notes == []


def test_a_campaign_whose_candidates_capacity_placed_elsewhere_says_so(creators, campaigns, ranker, embedder, result):
    """A new-user trial's batch against one creator said "no eligible creator" and "0: no eligible candidate with
    positive expected sales" for the campaigns that capacity had left without them, though each matched alone got
    the creator. Under a capacity of 1, the creator's one campaign is matched and the others say capacity took it."""
    star = result.matches["creator_id"].value_counts().index[0]
    theirs = result.matches.loc[result.matches["creator_id"] == star, "campaign_id"].unique()[:3]
    assert len(theirs) == 3
    frame = campaigns[campaigns["campaign_id"].isin(theirs)].reset_index(drop=True)
    matcher = Matcher(
        creators[creators["creator_id"] == star],
        model=ranker,
        embedder=embedder,
        settings=MatchSettings(slate=SlatePolicy(capacity=1)),
    )
    batch = matcher.match_many(frame)
    assert sorted(s.status for s in batch.summaries) == ["candidates taken by capacity"] * 2 + ["matched"]
    for s in batch.summaries:
        if s.status != "matched":
            assert s.slate_size == 0
            assert s.size_reason == (
                "0: capacity (1 campaign per creator) placed its only eligible candidate on other campaigns of this run"
            )
            alone = matcher.match(frame[frame["campaign_id"] == s.campaign_id].iloc[0].to_dict())
            assert alone.summaries[0].status == "matched"
            assert alone.matches["creator_id"].tolist() == [star]


def test_a_slate_whose_commission_passes_its_budget_only_if_everyone_takes_part_says_so(
    creators, campaigns, ranker, index, embedder
):
    """A summary's expected commission counts every creator taking part; slates are sized for half of them. A budget
    between the two left a reason that never named it beside a commission above it, which a seller read as a slate
    sized past the budget. The reason now gives both figures."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    campaign = campaigns.iloc[0].to_dict() | {"budget": 1e12}
    full = matcher.match(campaign).summaries[0].expected_commission
    assert full > 0
    budget = 0.75 * full  # over the half that take part, under all of them
    summary = matcher.match(campaign | {"budget": budget}).summaries[0]
    assert summary.expected_commission == pytest.approx(full)
    assert "budget reached" not in summary.size_reason
    assert (
        f"; {full / budget:.1f}x the budget in expected commission if every creator takes part, "
        f"{0.5 * full / budget:.0%} of it at the 50% take-up slates are sized for (pay-per-sale never spends past "
        "the budget)"
    ) in summary.size_reason
    unbound = matcher.match(campaign).summaries[0]
    assert "x the budget" not in unbound.size_reason


def test_out_of_stock_campaigns_get_no_slate(creators, campaigns, ranker, index, embedder):
    frame = campaigns.copy()
    frame.loc[0, "in_stock"] = False
    out = Matcher(creators, model=ranker, index=index, embedder=embedder).match_many(frame)
    first = frame["campaign_id"].iloc[0]
    assert first not in set(out.matches["campaign_id"])
    assert out.summaries[0].status == "out of stock"


def test_index_from_another_embedding_model_is_refused(tmp_path, creators, ranker, index, embedder):
    other = CandidateIndex(index.index, index.creator_ids, {**index.meta, "embedding_model": "other-model"})
    other.save(tmp_path / "idx")
    with pytest.raises(ArtifactMismatch, match="other-model"):
        Matcher(creators, model=ranker, index=tmp_path / "idx", embedder=embedder)


def test_index_or_embedder_on_another_backend_is_refused(tmp_path, creators, ranker, index, embedder):
    """The ranker records the backend its similarity features came from, like the model: an index or an
    embedder on the other backend is refused, naming it."""
    assert ranker.model.embedding_backend == embedder.backend == index.meta["embedding_backend"]
    other = "torch" if embedder.backend == "onnx" else "onnx"
    CandidateIndex(index.index, index.creator_ids, {**index.meta, "embedding_backend": other}).save(tmp_path / "idx")
    with pytest.raises(ArtifactMismatch, match=f"'{other}'"):
        Matcher(creators, model=ranker, index=tmp_path / "idx", embedder=embedder)
    with pytest.raises(ArtifactMismatch, match=f"on {other}"):
        Matcher(creators, model=ranker, index=index, embedder=Embedder(backend=other))


def test_a_matcher_built_from_a_model_uri_draws_no_progress_bar(creators, index, embedder, trained, monkeypatch, capfd):
    """MLflow drew a "Downloading artifacts" bar on standard error for the ranker and again for its records, each
    time a Matcher was built from a URI; the command line's quiet defaults now apply wherever rankers load."""
    for name in QUIET_ENVIRONMENT:  # as in a fresh Python session: not set by a command run earlier in this one
        monkeypatch.delenv(name, raising=False)
    capfd.readouterr()

    matcher = Matcher(creators, model=trained.model_uri, index=index, embedder=embedder)

    assert matcher.ranker.version == "creator-ranker/1"
    err = capfd.readouterr().err
    assert "Downloading" not in err and "%|" not in err, err


def test_unresolvable_model_uri_is_a_clear_error(creators, trained, tmp_path):
    with pytest.raises(ModelNotFound, match="no-such-model"):
        Matcher(creators, model="models:/no-such-model@champion")
    # A path is refused by what it holds, not with the tracking store's name.
    missing = tmp_path / "no-such-dir"
    for model in (str(missing), missing):  # a Path too, as an index's directory may be
        with pytest.raises(ModelNotFound) as refused:
            Matcher(creators, model=model)
        assert str(refused.value) == f"model {str(missing)!r}: no directory {missing}"
    with pytest.raises(ModelNotFound) as refused:
        Matcher(creators, model=f"file://{tmp_path}")
    assert str(refused.value).endswith(f"{tmp_path} holds no MLmodel file (not a saved model)")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        # Failed inside with "'dict' object has no attribute 'allow_cashback'".
        (
            {"settings": {"capacity": 3}},
            "Got settings as dict; expected a MatchSettings, or None (slate sizes and capacity are its SlatePolicy: "
            "MatchSettings(slate=SlatePolicy(capacity=3)))",
        ),
        # Failed inside with "'int' object has no attribute 'startswith'".
        ({"model": 42}, "Got model as int; expected a model URI or directory, or a LoadedRanker"),
        ({"index": 7}, "Got index as int; expected a CandidateIndex, its directory, or None"),
        ({"embedder": "all-MiniLM-L6-v2"}, "Got embedder as str; expected an Embedder, or None"),
        ({"performance": pd.DataFrame()}, "Got performance as DataFrame; expected a SettledPerformance, or None"),
        (
            {"creators": "world/creators.parquet"},
            "Got creators as str; expected a DataFrame, or a table from features.read_table",
        ),
    ],
)
def test_an_argument_of_the_wrong_type_is_refused_naming_it_before_anything_loads(creators, arguments, message):
    """The model named here does not exist: each argument is refused before a model, an index or a table is read."""
    with pytest.raises(TypeError) as refused:
        Matcher(**{"creators": creators, "model": "models:/no-such-ranker@champion", "index": "index"} | arguments)
    assert str(refused.value) == message


def test_creators_missing_from_the_index_table_are_never_proposed(creators, campaigns, ranker, index, embedder):
    """An index built on more creators than the table given: only table creators can be proposed."""
    subset = creators.iloc[: len(creators) // 2]
    out = Matcher(subset, model=ranker, index=index, embedder=embedder).match_many(campaigns)
    assert set(out.matches["creator_id"]) <= set(subset["creator_id"])


def test_an_index_built_from_a_frame_of_integer_ids_serves_a_matcher_on_that_frame(
    creators, campaigns, ranker, embedder
):
    """A database export's integer ids: the Matcher reads them as their decimal text, the index kept them as
    integers, so a Matcher on the very frame the index was built from found none of its creators there."""
    numbered = creators.assign(creator_id=np.arange(len(creators), dtype=np.int64) + 1000)
    index = CandidateIndex.of_creators(numbered, embedder)
    assert index.creator_ids[:2].tolist() == ["1000", "1001"]

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even one creator missing from the index
        out = Matcher(numbered, model=ranker, index=index, embedder=embedder).match_many(campaigns.iloc[:2])
    assert len(out.matches) and out.matches["creator_id"].isin(index.creator_ids).all()


def test_creators_the_index_lacks_are_warned_about_and_an_index_of_another_table_is_refused(
    creators, campaigns, ranker, index, embedder
):
    """A table grown since the index was built: the newcomers cannot be proposed, and the Matcher says how many
    instead of leaving them out silently; a table sharing no creator with the index is refused, not matched to
    empty slates."""
    newcomers = creators.iloc[:3].assign(creator_id=lambda f: "new-" + f["creator_id"])
    grown = pd.concat([creators, newcomers], ignore_index=True)
    with pytest.warns(UserWarning, match=r"^3 of the \d+ creators are not in the index and are never proposed"):
        matcher = Matcher(grown, model=ranker, index=index, embedder=embedder)
    assert matcher.creators_not_in_index == 3
    assert not set(matcher.match_many(campaigns.iloc[:3]).matches["creator_id"]) & set(newcomers["creator_id"])
    with pytest.raises(ArtifactMismatch, match="holds none of the creators table's 3: it was built from another"):
        Matcher(newcomers, model=ranker, index=index, embedder=embedder)


def test_results_are_deterministic(creators, campaigns, ranker, index, embedder, result):
    again = Matcher(creators, model=ranker, index=index, embedder=embedder).match_many(campaigns)
    pd.testing.assert_frame_equal(again.matches, result.matches)


def test_a_campaign_scored_alone_gets_the_numbers_it_gets_in_a_batch(creators, campaigns, ranker, index, embedder):
    """A campaign tool asking for one campaign and the nightly job scoring it among hundreds see the same scores
    to the bit: a brief's vector depends on the brief alone, not on the briefs embedded beside it."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=Embedder(cache_dir=None))
    matcher.embedder._encoder = embedder.encoder  # the session's loaded model, with an empty cache
    batch = matcher.scored_candidates(campaigns)
    one_by_one = matcher.scored_candidates(campaigns, chunk_size=1)
    assert batch["campaign_id"].nunique() > 10
    pd.testing.assert_frame_equal(one_by_one, batch, check_exact=True)


def test_one_chunk_kept_in_memory_gives_the_slates_of_a_checkpointed_run(
    creators, campaigns, ranker, index, embedder, result, tmp_path
):
    """A single chunk without a checkpoint folder (a service's request) skips the Parquet round trip."""
    assert len(campaigns) <= 256  # one chunk of the default size: `result` took the in-memory path
    committed = Matcher(creators, model=ranker, index=index, embedder=embedder).match_many(
        campaigns, checkpoint_dir=tmp_path
    )
    assert list(tmp_path.glob("scored-*.parquet"))
    pd.testing.assert_frame_equal(committed.matches, result.matches)
    assert [s.size_reason for s in committed.summaries] == [s.size_reason for s in result.summaries]


def test_typed_slate_entries_mirror_the_table(result):
    first = result.matches["campaign_id"].iloc[0]
    entries = result.slate(first)
    assert [e.rank for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].creator_id == result.for_campaign(first)["creator_id"].iloc[0]
    assert entries[0].funnel_stage in {"awareness", "consideration", "conversion", "retention"}


def test_a_slate_is_found_by_the_id_the_campaign_was_given_with(creators, ranker, index, embedder):
    """A campaign given with the id 17 (a database's integer key) or " api-1 " is matched under "17" and "api-1", as
    ids are read: looked up by the id the caller gave it, its slate was empty, without a word."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    for given, read in ((17, "17"), (" api-1 ", "api-1")):
        result = matcher.match({**API_CAMPAIGN, "campaign_id": given})
        assert result.slate(read) and result.slate(given) == result.slate(read)
        pd.testing.assert_frame_equal(result.for_campaign(given), result.for_campaign(read))


def test_creators_with_too_little_audience_in_the_marketplaces_are_left_out(
    creators, campaigns, ranker, index, embedder
):
    """With a 60% floor, every proposed creator who states an audience split has 60% or more there."""
    out = Matcher(
        creators, model=ranker, index=index, embedder=embedder, settings=MatchSettings(min_market_share=0.6)
    ).match_many(campaigns)
    audience = creators.set_index("creator_id")["audience_marketplaces"]
    markets = campaigns.set_index("campaign_id")["marketplaces"]
    for row in out.matches.itertuples(index=False):
        split = audience[row.creator_id]
        if isinstance(split, dict) and split:
            assert sum(split.get(m, 0.0) for m in markets[row.campaign_id]) >= 0.6


def test_disclosure_violations_excluded_or_demoted_by_setting(creators, campaigns, ranker, index, embedder):
    violators = set(creators.loc[creators["disclosure_violations"] > 0, "creator_id"])
    assert violators
    strict = Matcher(
        creators, model=ranker, index=index, embedder=embedder, settings=MatchSettings(violations="exclude")
    ).match_many(campaigns)
    assert not set(strict.matches["creator_id"]) & violators
    # related_first off: it scales some new creators' scores too, and this test is about the violations rule alone.
    without_related_first = MatchSettings(related_first=False)
    lenient = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=without_related_first)
    scored = lenient.scorer.score(resolve_product_types(campaigns.iloc[:3].reset_index(drop=True), embedder))
    flagged = scored["creator_id"].isin(violators)
    assert flagged.any()
    np.testing.assert_allclose(scored.loc[flagged, "score"], 0.5 * scored.loc[flagged, "expected_sales"])
    np.testing.assert_allclose(scored.loc[~flagged, "score"], scored.loc[~flagged, "expected_sales"])


def test_a_ranker_whose_heads_found_no_split_is_warned_about_once_and_noted_in_every_result(
    creators, campaigns, ranker, index, embedder, result
):
    """A new-user trial matched with a ranker trained on a few dozen pairs: `train` had warned that its heads found
    no split, but `match` ranked every candidate the same (slates then followed creator id) without a word. The
    matcher now says so once, and every result carries the line as a note; the session's ranker gives none."""
    import copy

    from features.pairwise import FEATURES
    from training.ranker import OUTCOMES, CreatorRanker, flat_heads

    pairs = Matcher(creators, model=ranker, index=index, embedder=embedder).candidate_features(campaigns.iloc[:1])
    few = pairs.head(20)  # fewer rows than a split needs on each side (min_samples_leaf)
    outcomes = pd.DataFrame(dict(zip(OUTCOMES, (np.arange(20) * 100, np.arange(20) * 5, np.arange(20)), strict=True)))
    flat = copy.copy(ranker)
    flat.model = copy.copy(ranker.model)
    flat.model.ranker = CreatorRanker().fit(few[FEATURES], outcomes)
    assert flat_heads(flat.model.ranker, pairs) == ["reach", "click-through", "orders-per-click"]
    line = (
        f"ranker {ranker.version}: its reach, click-through and orders-per-click heads each predict one value for "
        "every pair (found no split in training: too few settled pairs), so every candidate of a campaign gets the "
        "same expected sales and its slate follows creator id, not fit; train it again once more campaigns have "
        "settled"
    )
    matcher = Matcher(creators, model=flat, index=index, embedder=embedder)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        first, second = matcher.match_many(campaigns), matcher.match(API_CAMPAIGN)
    assert [str(w.message) for w in said] == [line]
    assert first.notes == second.notes == [line]
    assert result.notes == []


def test_two_creator_ids_with_one_handle_on_a_platform_both_list_are_one_person_to_every_slate(
    creators, campaigns, ranker, index, embedder, result
):
    """A seller's table listed @glowwithmaya under two creator ids on Instagram, and both were proposed on one slate.
    Here two creators who share a slate and a platform are given one handle (case, spaces and "@" aside): the slate
    keeps one of them, no slate holds both, and the matcher names them once, in a warning and in every result's
    notes, by their ids. The session's world, whose handles are all different, has no such line."""
    listed = creators.set_index("creator_id")["platforms"].map(set)
    better, worse, campaign = next(
        (a, b, c)
        for c, slate in result.matches.groupby("campaign_id", sort=False)
        for a, b in itertools.combinations(slate.sort_values("rank")["creator_id"], 2)
        if listed[a] & listed[b]
    )
    handle = creators.set_index("creator_id").at[better, "handle"]
    table = creators.copy()
    table.loc[table["creator_id"] == worse, "handle"] = f"  {handle.upper()} "
    in_row_order = [one for one in table["creator_id"] if one in (better, worse)]
    line = (  # by ids alone: handles are never echoed
        "creators with the same handle on a platform they both list are taken for one person: a slate holds at most "
        f"one of each group, and their campaigns count together towards capacity: ({', '.join(in_row_order)})"
    )
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = Matcher(table, model=ranker, index=index, embedder=embedder).match_many(campaigns)
    assert [str(w.message) for w in said if "one person" in str(w.message)] == [line]
    assert out.notes == [line] and result.notes == []
    slates = out.matches.groupby("campaign_id")["creator_id"].agg(set)
    assert not any({better, worse} <= members for members in slates)
    # One of them stays: the better scored, unless capacity (the person's, which both ids share) places it on
    # another campaign.
    assert len(slates[campaign] & {better, worse}) == 1


def test_two_creator_ids_of_one_person_share_one_capacity_through_the_matcher(
    creators, campaigns, ranker, index, embedder
):
    """A person registered under two creator ids was proposed to twice the capacity's campaigns. Two campaigns whose
    best candidates are two creators on a common platform, matched with a capacity of 1: each creator tops a slate.
    Given one handle, they are one person on one campaign in all, and the other campaign's size reason says why its
    best candidate is off: the same person, already proposed to a campaign under another id. Matched a campaign a
    chunk, the slates are the same."""
    settings = MatchSettings(slate=SlatePolicy(capacity=1))
    apart = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=settings)
    scored = apart.scored_candidates(campaigns)
    top = scored.sort_values(["score", "creator_id"], ascending=[False, True]).groupby("campaign_id")["creator_id"]
    top = top.first()
    listed = creators.set_index("creator_id")["platforms"].map(set)
    (x, a), (y, b) = next(
        (one, other)
        for one, other in itertools.combinations(top.items(), 2)
        if one[1] != other[1] and listed[one[1]] & listed[other[1]]
    )
    two = campaigns[campaigns["campaign_id"].isin([x, y])]
    before = apart.match_many(two).matches
    assert set(zip(before["creator_id"], before["campaign_id"], strict=True)) >= {(a, x), (b, y)}
    table = creators.copy()
    table.loc[table["creator_id"] == b, "handle"] = table.loc[table["creator_id"] == a, "handle"].iloc[0]

    with pytest.warns(UserWarning, match="and their campaigns count together towards capacity"):
        merged = Matcher(table, model=ranker, index=index, embedder=embedder, settings=settings)
    out = merged.match_many(two)

    # Chunked, the batch is assigned whole as ever: the same slates, one campaign a chunk.
    pd.testing.assert_frame_equal(merged.match_many(two, chunk_size=1).matches, out.matches)
    placed = out.matches[out.matches["creator_id"].isin([a, b])]
    assert len(placed) == 1
    left_out = x if placed["creator_id"].iloc[0] == b else y
    reason = next(s.size_reason for s in out.summaries if s.campaign_id == left_out)
    assert (
        "the same person as another creator id (the same handle on a platform both list), already proposed to "
        "1 campaign under that id, and one person's ids share the capacity"
    ) in reason


def test_ranker_with_another_feature_set_is_refused(creators, ranker, index, embedder):
    """A ranker whose features differ from the ones this version computes is a clear error, not garbage."""
    import copy

    from mlflow import MlflowClient

    stale = copy.copy(ranker)
    stale.model = copy.copy(ranker.model)
    stale.model.features = [*ranker.model.features, "newer_feature"]
    with pytest.raises(ArtifactMismatch, match=r"another feature set.*newer_feature") as newer:
        Matcher(creators, model=stale, index=index, embedder=embedder)
    # Features this code does not compute, and none it lacks: the model is newer than the code, and retraining
    # here cannot help.
    recorded = MlflowClient().get_run(ranker.run_id).data.tags["code_version"]
    assert f"match with the creator-matcher it was trained with (code_version {recorded}" in str(newer.value)
    assert "retrain" not in str(newer.value) and "\n" not in str(newer.value)
    # A feature renamed: older or newer, either remedy may be the one.
    stale.model.features = [*ranker.model.features[:-1], "retired_feature"]
    with pytest.raises(ArtifactMismatch, match=r"retired_feature.*: retrain it with `creator-match train`, or match "):
        Matcher(creators, model=stale, index=index, embedder=embedder)
    # Only fewer features than the code computes: the model is older, and retraining it is the way.
    stale.model.features = ranker.model.features[:-1]
    with pytest.raises(ArtifactMismatch, match=r"another feature set.*: retrain it with `creator-match train`$"):
        Matcher(creators, model=stale, index=index, embedder=embedder)


def test_invalid_creators_of_a_frame_are_left_out_named_and_warned_about(creators, ranker, index, embedder):
    """A frame is validated, even one that has the validator's `row` column, and so is a Table built by hand. As
    the command line does, the bad row is left out and the valid ones kept: it is in `creator_rejects`, and one
    warning counts the rows left out and names the first."""
    frame = creators.copy()
    frame.loc[3, "followers"] = -5
    frame.loc[5, "platforms"] = []
    assert "row" in frame.columns
    warning = (
        r"^2 invalid rows left out \(Matcher\.creator_rejects\); first: creators row 4 \(id \w+\): column followers"
    )
    for given in (frame, Table("creators", frame, [])):
        with pytest.warns(UserWarning, match=warning):
            matcher = Matcher(given, model=ranker, index=index, embedder=embedder)

        assert [(r.table, r.row, r.id, r.column) for r in matcher.creator_rejects] == [
            ("creators", 4, frame.at[3, "creator_id"], "followers"),
            ("creators", 6, frame.at[5, "creator_id"], "platforms"),
        ]
        assert matcher.creators["creator_id"].tolist() == frame["creator_id"].drop(index=[3, 5]).tolist()
        assert len(matcher.match(API_CAMPAIGN).matches) > 0


def test_a_read_table_is_used_as_validated_with_its_rejects_left_to_the_reader(
    world_dir, tmp_path, creators, ranker, index, embedder
):
    """Creators read with rejects: the valid rows are matched from, without a second validation."""
    frame = creators.drop(columns="row").copy()
    frame.loc[0, "creator_type"] = "influencer"
    frame.to_parquet(tmp_path / "creators.parquet")
    table = read_table(tmp_path / "creators.parquet", "creators")
    assert [(r.row, r.column) for r in table.rejects] == [(1, "creator_type")]

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the reader has these rejects already: no news to warn of
        matcher = Matcher(table, model=ranker, index=index, embedder=embedder)

    assert matcher.creators["creator_id"].tolist() == creators["creator_id"].iloc[1:].tolist()
    assert matcher.creator_rejects == table.rejects


def test_invalid_performance_rows_of_a_frame_are_left_out_named_and_warned_about(
    world_dir, creators, ranker, index, embedder
):
    """The performance table and its past campaigns given as frames: their bad rows are left out as the creators'
    are (SettledPerformance alone refuses them), and the records are those of the valid rows."""
    performance = pd.read_parquet(world_dir / "performance.parquet")
    past = pd.read_parquet(world_dir / "campaigns.parquet")
    bad = performance.copy()
    bad.loc[2, "clicks"] = bad.loc[2, "impressions"] + 1

    warning = r"^1 invalid row left out \(Matcher\.performance_rejects\); first: performance row 3 .*column clicks"
    with pytest.warns(UserWarning, match=warning):
        matcher = Matcher(
            creators, model=ranker, index=index, embedder=embedder, performance=SettledPerformance(bad, past)
        )

    assert [(r.table, r.row, r.column) for r in matcher.performance_rejects] == [("performance", 3, "clicks")]
    without = SettledPerformance(performance.drop(index=2), past)
    clean = Matcher(creators, model=ranker, index=index, embedder=embedder, performance=without)
    assert clean.performance_rejects == []
    pd.testing.assert_frame_equal(matcher.records.history, clean.records.history)


def test_match_many_validates_a_frame_and_returns_its_invalid_campaigns_as_rejects(
    creators, campaigns, ranker, index, embedder
):
    """No column name skips validation: a frame without `in_stock` takes the contract's default, and an
    invalid campaign is a reject naming row and column while the valid ones are still matched."""
    frame = campaigns.drop(columns=["in_stock"]).iloc[:4].copy()
    frame.loc[1, "price"] = -3.0
    frame.loc[2, "marketplaces"] = ["usa"]

    out = Matcher(creators, model=ranker, index=index, embedder=embedder).match_many(frame)

    assert [(r.table, r.row, r.id, r.column) for r in out.rejects] == [
        ("campaigns", 2, frame["campaign_id"].iloc[1], "price"),
        ("campaigns", 3, frame["campaign_id"].iloc[2], "marketplaces"),
    ]
    assert "greater than 0" in out.rejects[0].reason
    valid = [frame["campaign_id"].iloc[0], frame["campaign_id"].iloc[3]]
    assert [s.campaign_id for s in out.summaries] == valid
    assert set(out.matches["campaign_id"]) <= set(valid) and len(out.matches) > 0


def test_match_many_on_mappings_rejects_the_invalid_and_matches_the_rest(creators, ranker, index, embedder):
    good = API_CAMPAIGN
    bad = good | {"campaign_id": "api-2", "commission_rate": 1.7}
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)

    out = matcher.match_many([bad, good])

    assert [(r.row, r.id, r.column) for r in out.rejects] == [(1, "api-2", "commission_rate")]
    assert [s.campaign_id for s in out.summaries] == ["api-1"]
    assert (out.matches["campaign_id"] == "api-1").all() and len(out.matches) > 0
    with pytest.raises(ValueError, match=r"^invalid campaign: campaigns row 1 \(id api-2\): column commission_rate"):
        matcher.match(bad)


def test_match_many_refuses_an_iterable_of_tables_naming_the_position(creators, campaigns, ranker, index, embedder):
    """A list of DataFrames was read as two campaigns whose every field held a whole column: all rejected, with
    ids that were printed Series, and nothing matched, without an error; a list of read tables raised a bare
    TypeError. One table is what match_many takes."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    with pytest.raises(TypeError, match=r"^Got campaigns\[0\] as DataFrame; expected a mapping or a CampaignRow; "):
        matcher.match_many([campaigns.iloc[:2], campaigns.iloc[2:4]])
    with pytest.raises(TypeError, match=r"^Got campaigns\[0\] as Table; .* \(pandas.concat the frames\)$"):
        matcher.match_many([Table("campaigns", campaigns.iloc[:2], [])])


def test_an_empty_campaign_is_a_reject_naming_every_missing_column(creators, ranker, index, embedder):
    """An empty mapping made no row of a frame, so it was never validated and vanished: it is a reject like any
    campaign without its required columns, and `match` names each of them."""
    required = sorted(name for name, field in CampaignRow.model_fields.items() if field.is_required())
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)

    out = matcher.match_many([{}, API_CAMPAIGN])

    assert [(r.row, r.id, r.column, r.reason) for r in out.rejects] == [
        (1, "", column, "required value is missing") for column in required
    ]
    assert [s.campaign_id for s in out.summaries] == ["api-1"] and len(out.matches) > 0
    with pytest.raises(
        ValueError, match=r"^invalid campaign: campaigns row 1 \(id \?\): column asins: required"
    ) as refused:
        matcher.match({})
    assert all(f"column {column}: required value is missing" in str(refused.value) for column in required)


def test_the_largest_price_and_budget_get_slates_and_a_larger_price_is_a_reject(
    creators, campaigns, ranker, index, embedder
):
    """A price of 1e18 made the slate assignment's solver fail and the whole batch with it. Now it is one reject,
    and at the largest price allowed every valid campaign of the batch gets its slate: with the largest budget
    there is (no overflow on the way either), and with budgets that bind beyond the minimum, so that the programme
    has budget rows, whose coefficients are the largest of all."""
    # A budget row is needed where the slate's walk skips some of the dearest candidates (creators past the
    # unproven limit), which hangs on the ranker's order: standard slates that take no creator without a record
    # past the proven ones make such skips common, whatever the ranker.
    settings = MatchSettings(slate=SlatePolicy(max_unproven_standard=0))
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder, settings=settings)
    policy = matcher.settings.slate
    priced = campaigns.drop(columns="row").assign(price=MAX_PRICE, budget=sys.float_info.max, product_type="standard")
    scored = matcher.scored_candidates(priced)
    scored = scored[scored["score"] > 0]
    minimum = plan_sizes(scored, policy)["minimum"]
    binding = []
    for campaign_id, spend in scored.groupby("campaign_id"):
        # The budget of the campaign's `minimum + extra` dearest candidates: wider than the minimum, short of the size.
        cost = np.sort(spend["expected_commission"].to_numpy() * policy.participation_rate)[::-1]
        row = priced.set_index("campaign_id").loc[campaign_id].to_dict() | {"campaign_id": campaign_id}
        for extra in (1, 2, 3):
            budget = cost[: minimum[campaign_id] + extra].sum() / (1 + policy.budget_overrun)
            binding.append(row | {"campaign_id": f"{campaign_id}-{extra}", "budget": budget})
    implausible = priced.iloc[[0]].assign(campaign_id="implausible", price=1e18)
    batch = pd.concat([priced, pd.DataFrame(binding), implausible], ignore_index=True)
    valid = batch[batch["price"] <= MAX_PRICE]
    bound = matcher.scored_candidates(valid)
    bound = bound[bound["score"] > 0]
    assert budget_rows(bound, plan_sizes(bound, policy), policy).any()

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        out = matcher.match_many(batch)

    assert [(r.id, r.column) for r in out.rejects] == [("implausible", "price")]
    assert "got 1e+18; input should be less than or equal to 1000000000" in out.rejects[0].reason
    assert [s.campaign_id for s in out.summaries] == valid["campaign_id"].tolist()
    in_stock = valid.loc[valid["in_stock"], "campaign_id"]
    assert set(out.matches["campaign_id"]) == set(in_stock)
    assert np.isfinite(out.matches["score"]).all() and out.matches["score"].max() > 1e9
    assert any(
        s.size_reason.split(";")[0].endswith("budget reached (expected commission x 50% take-up)")
        or "sized to the budget" in s.size_reason
        for s in out.summaries
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"allow_cashback": "no"}, "Got allow_cashback='no'; expected True or False"),
        ({"related_first": 1}, "Got related_first=1; expected True or False"),
        ({"candidates": 2.5}, "Got candidates=2.5; expected a whole number"),
        ({"proven_candidates": -1}, "Got proven_candidates=-1; expected at least 0"),
        ({"min_market_share": 1.7}, "Got min_market_share=1.7; expected a value in [0, 1]"),
        ({"min_market_share": float("nan")}, "Got min_market_share=nan; expected a finite number"),
        ({"violations": "ignore"}, "Got violations='ignore'; expected 'demote' or 'exclude'"),
        ({"slate": {"capacity": 2}}, "Got slate={'capacity': 2}; expected a SlatePolicy"),
    ],
)
def test_match_settings_refuse_a_value_naming_it(values, message):
    """A string is truthy: allow_cashback="no" used to propose cashback sites. Every setting is refused in one
    line when its value is not of its type or range (the slate's own in tests/matcher/test_slate.py)."""
    with pytest.raises(ValueError) as refused:
        MatchSettings(**values)
    assert str(refused.value) == message
    assert MatchSettings(allow_cashback=True, proven_candidates=0, slate=SlatePolicy(capacity=None)).allow_cashback


def test_candidate_features_are_what_the_slates_were_scored_on(creators, campaigns, ranker, index, embedder, result):
    """Model review reads the same pairs and features as scoring: the ranker on them gives each slate member's
    expected clicks and orders again."""
    from training.ranker import expected_outcomes

    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    pairs = matcher.candidate_features(campaigns)
    assert not pairs.duplicated(["campaign_id", "creator_id"]).any()
    price = pairs["campaign_id"].map(campaigns.set_index("campaign_id")["price"]).to_numpy(float)
    again = pairs[["campaign_id", "creator_id"]].assign(**expected_outcomes(ranker.model.ranker.predict(pairs), price))
    members = result.matches.merge(again, on=["campaign_id", "creator_id"], how="left", suffixes=("", "_again"))
    assert members["expected_orders_again"].notna().all()
    np.testing.assert_allclose(members["expected_orders_again"], members["expected_orders"], rtol=1e-9)
    np.testing.assert_allclose(members["expected_clicks_again"], members["expected_clicks"], rtol=1e-9)
    # Out-of-stock campaigns get no slate, so they have no pairs either, and their briefs do not join the batch.
    assert set(pairs["campaign_id"]) == set(campaigns.loc[campaigns["in_stock"], "campaign_id"])
    none_in_stock = matcher.candidate_features(campaigns.assign(in_stock=False))
    assert none_in_stock.empty and list(none_in_stock.columns) == list(pairs.columns)


def test_scored_candidates_are_what_the_slates_were_built_from(creators, campaigns, ranker, index, embedder, result):
    """Every slate member is among the scored candidates with the same score, the candidates hold more than the
    slates, and the slate rules applied to them again give the same slates."""
    from matcher.slate import build_slates

    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    scored = matcher.scored_candidates(campaigns)
    assert not scored.duplicated(["campaign_id", "creator_id"]).any() and len(scored) > len(result.matches)
    members = result.matches.merge(scored, on=["campaign_id", "creator_id"], how="left", suffixes=("", "_scored"))
    np.testing.assert_allclose(members["score_scored"], members["score"], rtol=1e-12)
    again, _ = build_slates(scored, matcher.settings.slate, matcher.duplicate_evidence)
    key = ["campaign_id", "rank", "creator_id"]
    pd.testing.assert_frame_equal(
        again[key].sort_values(key).reset_index(drop=True), result.matches[key].sort_values(key).reset_index(drop=True)
    )
    none_in_stock = matcher.scored_candidates(campaigns.assign(in_stock=False))
    assert none_in_stock.empty and list(none_in_stock.columns) == list(scored.columns)


def test_match_many_returns_every_scored_pair_when_asked(creators, campaigns, ranker, index, embedder, result):
    """`with_candidates=True` leaves the slates as they are and adds each scored pair once, typed as the
    candidates schema says: the slates' rows with their rank and score, the others without a rank; a batch with
    nothing in stock gives an empty table of the same types."""
    from matcher.schema import CANDIDATE_SCHEMA

    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    out = matcher.match_many(campaigns, with_candidates=True)
    pd.testing.assert_frame_equal(out.matches, result.matches)
    candidates = out.candidates
    assert list(candidates.columns) == list(CANDIDATE_SCHEMA.names)
    assert not candidates.duplicated(["campaign_id", "creator_id"]).any()
    on_slates = candidates[candidates["rank"].notna()]
    assert len(on_slates) == len(result.matches) < len(candidates)
    pairs = on_slates.merge(result.matches, on=["campaign_id", "creator_id"], suffixes=("", "_m"))
    assert len(pairs) == len(result.matches) and (pairs["rank"] == pairs["rank_m"]).all()
    np.testing.assert_allclose(pairs["score"], pairs["score_m"], rtol=1e-12)
    assert matcher.match_many(campaigns).candidates is None
    nothing = matcher.match_many(campaigns.assign(in_stock=False), with_candidates=True).candidates
    assert nothing.empty and nothing.dtypes.equals(candidates.dtypes)


def test_warm_runs_the_encoder_as_a_brief_runs_it_and_writes_no_cache(creators, ranker, index, empty_cache_dir):
    """The first request after `warm` paid ONNX Runtime's first runs; warm encodes a brief's way instead, through a
    memory-only cache it drops: the disk cache a result reads gains nothing."""
    if Embedder().backend != "onnx":
        pytest.skip("the encoder's sessions are ONNX Runtime's")
    Matcher(creators, model=ranker, index=index, embedder=Embedder(cache_dir=empty_cache_dir))  # caches the tags
    cached = sorted(path.relative_to(empty_cache_dir) for path in empty_cache_dir.rglob("*"))
    embedder = Embedder(cache_dir=empty_cache_dir)
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    assert not embedder.encoder._sessions  # every text it read was on disk: the model has not run
    matcher.warm()
    assert embedder.encoder._sessions  # ran, on the threads a brief's isolated embedder runs on
    assert embedder.encoded_count_ == 0
    assert sorted(path.relative_to(empty_cache_dir) for path in empty_cache_dir.rglob("*")) == cached
    cold = Matcher(creators, model=ranker, index=index, embedder=Embedder())  # never warmed: the same slates
    pd.testing.assert_frame_equal(matcher.match(API_CAMPAIGN).matches, cold.match(API_CAMPAIGN).matches)


def test_warm_takes_one_category_or_several_as_a_campaign_writes_them(creators, ranker, index, embedder):
    """warm("beauty") warmed the categories "b", "e", "a", "u", "t" and "y", and warm([" Home"]) a category no
    campaign has (a campaign's is read stripped and lower-case): the first request of each was as slow as ever."""
    matcher = Matcher(creators, model=ranker, index=index, embedder=embedder)
    matcher.warm("beauty")
    matcher.warm([" Home"])
    assert set(matcher.scorer.retrieval._proven) == {"beauty", "home"}


@pytest.mark.parametrize("package", ["matcher", "features", "training", "simulation"])
def test_each_package_carries_the_typed_marker_and_the_wheel_ships_it(package):
    """PEP 561: without `py.typed` mypy and pyright ignore the library's annotations (the source tree's: the venv's
    install is an editable one of another checkout)."""
    import importlib.resources
    import tomllib
    from pathlib import Path

    assert (importlib.resources.files(package) / "py.typed").is_file()
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["*"]


@pytest.mark.parametrize("bio", [None, "", "   ", "no bio column", "Skincare routines and makeup tutorials."])
def test_creators_alike_in_tags_share_a_slate_unless_their_bios_make_them_copies(
    creators, campaigns, ranker, embedder, bio
):
    """Six creators with the same interests and no bio (null, blank, or a table without the column) are alike in
    interests, not copies: all six make a skincare slate of six. Given the same bio, their whole profiles coincide
    and the near-duplicate rule keeps one of them; creators whose interests do not relate fill the rest."""
    beauty = [f"skin-{k}" for k in range(6)]
    table = creators.head(12).assign(
        creator_id=beauty + [f"angler-{k}" for k in range(6)],
        creator_type="social_creator",
        interest_tags=[["skincare", "makeup"]] * 6 + [["fishing", "boats"]] * 6,
        bio=[None if bio == "no bio column" else bio] * 6 + [None] * 6,
        followers=[100_000 - 1_000 * k for k in range(12)],
        audience_marketplaces=None,
        accepts_campaigns=True,
        disclosure_violations=0,
    )
    if bio == "no bio column":
        table = table.drop(columns=["bio", "row"])
    campaign = campaigns.iloc[[0]].assign(
        brief="A hydrating face serum with hyaluronic acid for a daily skincare routine",
        category="beauty",
        product_type="non_standard",
        marketplaces=[["US"]],
        budget=1e9,
        in_stock=True,
    )
    slate = SlatePolicy(standard_size=6, non_standard_size=6, min_non_standard_size=6, capacity=None)
    settings = MatchSettings(slate=slate)
    matcher = Matcher(table, model=ranker, embedder=embedder, settings=settings)
    chosen = set(matcher.match_many(campaign).matches["creator_id"])
    assert len(chosen) == 6
    same_bio = isinstance(bio, str) and bio.strip() and bio != "no bio column"
    assert len(chosen & set(beauty)) == (1 if same_bio else 6), sorted(chosen)


@pytest.mark.filterwarnings("ignore:marketplace .* of campaign in-yen")
def test_a_creator_both_a_dollar_and_a_yen_campaign_want_goes_where_it_sells_more_in_one_currency(
    creators, campaigns, ranker, embedder, result
):
    """Slate assignment added predicted sales across a batch's campaigns in their own currencies: a yen campaign
    (prices ~150x dollars) outbid a dollar one for every creator both could take. Sales are now put on one scale
    (each divided by how much dearer its currency reads), so a creator with room for one campaign goes where it sells
    more on that scale, and the same batch with the yen campaign priced in dollars gives the same choice.

    The yen twin is sold in a marketplace the ranker never learned prices in, a zone of its own: the simulated world
    prices JP in dollars (against the contract), so its few past JP campaigns would read a yen price as dear."""
    known = ranker.model.past.product_types.marketplaces
    us_only = campaigns.loc[campaigns["marketplaces"].map(lambda codes: list(codes) == ["US"]), "campaign_id"]
    on_us = result.matches[result.matches["campaign_id"].isin(us_only)]
    audience = creators.set_index("creator_id")["audience_marketplaces"].map(lambda shares: dict(shares or {}))
    # A creator on a dollar campaign's slate whose audience is also in a marketplace the ranker has no price in.
    star, new = next(
        (creator, code)
        for creator in on_us["creator_id"]
        for code, share in sorted(audience[creator].items())
        if code not in known and share >= MatchSettings().min_market_share
    )
    dollar = campaigns[campaigns["campaign_id"] == on_us.loc[on_us["creator_id"] == star, "campaign_id"].iloc[0]]
    twin = dollar.assign(campaign_id="in-yen", marketplaces=[[new]], price=dollar["price"] * 150)
    matcher = Matcher(
        creators[creators["creator_id"] == star],
        model=ranker,
        embedder=embedder,
        settings=MatchSettings(slate=SlatePolicy(capacity=1)),
    )
    chosen = {}
    for currency, frame in (("yen", twin), ("dollars", twin.assign(price=dollar["price"]))):
        batch = pd.concat([dollar, frame], ignore_index=True)
        scored = matcher.scored_candidates(batch).set_index("campaign_id")
        common = scored["score"] / np.exp(scored["currency_log_scale"])
        chosen[currency] = matcher.match_many(batch).matches["campaign_id"].tolist()
        assert chosen[currency] == [common.idxmax()], (currency, scored[["score", "currency_log_scale"]])
        if currency == "yen":  # added as they were, the yen campaign's sales would have won
            assert scored.at["in-yen", "score"] > scored.at[dollar["campaign_id"].iloc[0], "score"]
    assert chosen["yen"] == chosen["dollars"]
