"""Lookalikes: creators like a seller's chosen ones, through the Python API and the command line."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.embeddings import creator_vectors
from features.tables import read_table, validate_frame
from matcher.api import Matcher
from matcher.candidate_index import CandidateIndex
from matcher.similar import LOOKALIKE_COLUMNS, UnknownCreator
from tests.commands import run_in_process


@pytest.fixture(scope="module")
def matcher(creators, ranker, embedder):
    index = CandidateIndex.build(creator_vectors(embedder, creators), creators["creator_id"], embedder.model)
    return Matcher(creators, model=ranker, index=index, embedder=embedder)


@pytest.fixture(scope="module")
def sellers(world_dir):
    """The two creators with the most settled sales in the world: what a seller would pick as seeds."""
    performance = pd.read_parquet(world_dir / "performance.parquet")
    return performance.groupby("creator_id")["sales"].sum().sort_values().index[-2:].tolist()


def test_lookalikes_are_ranked_eligible_and_never_the_seeds(matcher, creators, sellers):
    found = matcher.similar(sellers, k=10)
    assert list(found.columns) == LOOKALIKE_COLUMNS
    assert found["rank"].tolist() == list(range(1, 11))
    assert found["score"].is_monotonic_decreasing
    assert not set(found["creator_id"]) & set(sellers)
    rows = creators.set_index("creator_id").loc[found["creator_id"]]
    assert rows["accepts_campaigns"].all() and not (rows["creator_type"] == "cashback_site").any()
    assert found["reasons"].str.len().gt(0).all()
    pd.testing.assert_frame_equal(found, matcher.similar(list(reversed(sellers)), k=10))


def test_a_twin_of_the_seed_is_found_first_and_synonyms_are_named(creators, ranker, embedder):
    """A copy of a seed whose interests are reworded, not repeated, is still its closest lookalike."""
    table = creators.drop(columns="row")
    seed = table[table["accepts_campaigns"] & (table["creator_type"] != "cashback_site")].index[0]
    table.at[seed, "interest_tags"] = ["hiking", "outdoor gear"]
    twin = table.loc[[seed]].assign(creator_id="twin-of-seed")
    twin.at[seed, "interest_tags"] = ["trail running", "camping gear"]
    checked = validate_frame(pd.concat([table, twin], ignore_index=True), "creators")
    assert not checked.rejects
    matcher = Matcher(checked.frame, model=ranker, embedder=embedder)
    found = matcher.similar([table.at[seed, "creator_id"]], k=5)
    assert found.loc[0, "creator_id"] == "twin-of-seed", found[["creator_id", "score"]]
    assert "(like hiking)" in found.loc[0, "reasons"] or "(like outdoor gear)" in found.loc[0, "reasons"]


def test_filters_hold_and_markets_follow_the_matching_rule(matcher, creators, sellers):
    found = matcher.similar(sellers, k=15, marketplaces=["UK"], creator_types=["social_creator", "review_site"])
    assert len(found)
    rows = creators.set_index("creator_id").loc[found["creator_id"]]
    assert rows["creator_type"].isin(["social_creator", "review_site"]).all()
    for audience, reasons in zip(rows["audience_marketplaces"], found["reasons"], strict=True):
        assert not audience or audience.get("UK", 0.0) >= matcher.settings.min_market_share
        assert ("audience split not stated" in reasons) == (not audience), reasons


def test_the_record_channel_names_categories_both_sides_sold_in(matcher, world_dir, sellers):
    performance = pd.read_parquet(world_dir / "performance.parquet")
    campaigns = pd.read_parquet(world_dir / "campaigns.parquet")[["campaign_id", "category"]]
    sold = performance[performance["orders"] > 0].merge(campaigns, on="campaign_id")
    categories = sold.groupby("creator_id")["category"].agg(set)
    seed_categories = set().union(*(categories.get(s, set()) for s in sellers))
    found = matcher.similar(sellers, k=30)
    with_record = found[found["record_similarity"].notna()]
    assert len(with_record), "sellers' lookalikes include creators with a record"
    for row in with_record.itertuples():
        named = row.reasons.split("sells in ")[1].split(" like the seeds")[0].split(", ")
        assert set(named) <= seed_categories & categories[row.creator_id], (row.creator_id, named)
    assert with_record["record_similarity"].between(0, 1 + 1e-9).all()
    assert found["market_overlap"].dropna().between(0, 1 + 1e-9).all()


def test_one_seed_marketplace_or_type_as_a_string_is_one_value_not_its_characters(matcher, sellers):
    """`similar("cr000053")` looked for creators 'c', 'r', '0'...; a string is one id, one code, one type."""
    one = matcher.similar(sellers[0], k=5, marketplaces="UK", creator_types="social_creator")
    assert len(one) == 5
    pd.testing.assert_frame_equal(
        one, matcher.similar([sellers[0]], k=5, marketplaces=["UK"], creator_types=["social_creator"])
    )
    pd.testing.assert_frame_equal(matcher.similar(sellers[0], k=5), matcher.similar([sellers[0]], k=5))


def test_a_seed_id_or_code_is_read_without_the_spaces_around_it_as_a_tables_are(matcher, sellers):
    """`similar --like " cr000053 "` (a pasted id, a shell script's) was refused as "not in the creators table",
    whose ids are read without the spaces around them; `--marketplace "UK "` as not a code."""
    padded = matcher.similar([f" {sellers[0]} ", f"{sellers[1]}\t"], k=5, marketplaces=["UK "])
    pd.testing.assert_frame_equal(padded, matcher.similar(sellers, k=5, marketplaces=["UK"]))


def test_a_search_in_uk_names_the_creators_who_state_their_audience_as_gb(creators, ranker, embedder, sellers):
    """A creators export that writes the United Kingdom as GB (its ISO code): their audience there read as none of
    it in a `--marketplace UK` search, without a word while other creators stated UK. The search says so, as
    `match` does of a campaign sold in UK."""
    in_uk = creators["audience_marketplaces"].map(lambda shares: bool(shares) and "UK" in shares)
    renamed = creators.index[in_uk][:2]
    as_gb = creators.copy()
    as_gb.loc[renamed, "audience_marketplaces"] = as_gb.loc[renamed, "audience_marketplaces"].map(
        lambda shares: {("GB" if code == "UK" else code): share for code, share in shares.items()}
    )
    index = CandidateIndex.build(creator_vectors(embedder, creators), creators["creator_id"], embedder.model)
    matcher = Matcher(as_gb, model=ranker, index=index, embedder=embedder)

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        matcher.similar(sellers, k=3, marketplaces=["UK"])

    assert [str(w.message) for w in said if "marketplace" in str(w.message)] == [
        f"marketplace UK of the lookalike search: 2 creators state an audience in GB "
        f"({', '.join(creators.loc[renamed, 'creator_id'])}), which is not read as audience in UK (GB is not one of "
        "the contract's marketplace codes, US CA MX UK DE FR IT ES JP AU; did you mean UK?): write UK in "
        "audience_marketplaces; until then that share is none of a creator's audience in UK, and a creator can be "
        "left out for it"
    ]


def test_a_creator_type_is_read_in_any_case_as_a_tables_rows_are(matcher, sellers):
    """`Social_Creator` was refused as a filter while the creators table reads it as social_creator."""
    written = matcher.similar(sellers[0], k=5, creator_types=[" Social_Creator", "REVIEW_SITE"])
    pd.testing.assert_frame_equal(
        written, matcher.similar(sellers[0], k=5, creator_types=["social_creator", "review_site"])
    )


def test_bad_requests_name_the_value(matcher):
    with pytest.raises(UnknownCreator, match="'no-such-creator'"):
        matcher.similar(["no-such-creator"])
    with pytest.raises(ValueError, match="creator_type 'blogger'"):
        matcher.similar([matcher.creators["creator_id"][0]], creator_types=["blogger"])
    with pytest.raises(ValueError, match="marketplace 'usa'"):
        matcher.similar([matcher.creators["creator_id"][0]], marketplaces=["usa"])
    # Not a bare TypeError from the slicing deep inside: the value, and what k must be.
    for k in (0, 2.5, "3", True):
        with pytest.raises(ValueError, match=rf"^Got k={k!r}; expected a whole number of at least 1$"):
            matcher.similar([matcher.creators["creator_id"][0]], k=k)
    assert len(matcher.similar([matcher.creators["creator_id"][0]], k=np.int64(3))) == 3


def test_cli_writes_the_same_lookalikes_as_the_api(world_dir, trained, tmp_path, sellers):
    index = tmp_path / "idx"
    done = run_in_process("index", "--creators", str(world_dir / "creators.parquet"), "--out", str(index))
    assert done.returncode == 0, done.stderr
    args = ["similar", "--creators", str(world_dir / "creators.parquet"), "--index", str(index), "--k", "7"]
    out = tmp_path / "like.parquet"
    done = run_in_process(*args, "--like", sellers[0], "--like", sellers[1], "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(out)
    creators = read_table(world_dir / "creators.parquet", "creators").frame
    expected = Matcher(creators, model=trained.model_uri, index=index).similar(sellers, k=7)
    pd.testing.assert_frame_equal(written, expected)

    bad = run_in_process(*args, "--like", "no-such-creator")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "creator-match: Got creator_id 'no-such-creator'; it is not in the creators table; no lookalike was searched"
    ]
    assert np.isfinite(written["score"]).all()


def test_a_lookalike_without_a_shared_interest_is_placed_among_the_catalogue_not_called_close(matcher, sellers):
    """A raw profile cosine is not a claim of closeness (a shared text template lifts every pair): where no
    interest is like the seeds', the reason says how the profile ranks among eligible creators, in step with
    its similarity."""
    found = matcher.similar(sellers, k=150)
    plain = found[~found["reasons"].str.contains("interests like the seeds'", case=False)]
    assert len(plain), "every lookalike shared an interest: the case is not exercised"
    assert not found["reasons"].str.contains("close").any()
    standing = plain["reasons"].str.extract(r"more like theirs than (\d+)% of eligible creators \(similarity")[0]
    least = "profile among the least like theirs of eligible creators ("
    standing[plain["reasons"].str.contains(least, regex=False)] = "0"
    assert standing.notna().all(), plain["reasons"].tolist()[:3]
    by_similarity = plain.assign(standing=standing.astype(int)).sort_values("profile_similarity")
    assert by_similarity["standing"].is_monotonic_increasing


def test_the_bottom_of_the_profile_scale_is_not_more_like_theirs_than_0_percent(matcher, creators, sellers):
    """A new-user trial's lookalike read "profile more like theirs than 0% of eligible creators": the creators at
    the bottom of the scale are said to be among the least like the seeds instead."""
    found = matcher.similar(sellers, k=len(creators))  # every eligible creator, the least alike too
    assert not found["reasons"].str.contains("than 0% of", regex=False).any()
    bottom = found[
        found["reasons"].str.contains("profile among the least like theirs of eligible creators (", regex=False)
    ]
    assert len(bottom), "no lookalike without a shared interest at the bottom: the case is not exercised"
    assert bottom["profile_similarity"].max() < found["profile_similarity"].quantile(0.05)


def test_with_a_marketplaces_filter_a_reason_speaks_of_the_overlap_in_those_markets(matcher, sellers):
    """A new-user trial asked for lookalikes in DE and read "audience in US like the seeds' (6% overlap)": a
    market it had not asked about. With a filter, the markets named are within it and the overlap said is the
    part of `market_overlap` in them."""
    found = matcher.similar(sellers, k=40, marketplaces=["UK"])
    stated = found[found["market_overlap"].notna()]
    assert len(stated)
    named = stated["reasons"].str.extract(r"audience in ([A-Z/]+) like the seeds' \((\d+)% overlap in UK\)")
    other = stated["reasons"].str.extract(r"(\d+)% audience overlap with the seeds in UK")[0]
    assert (named[0].notna() | other.notna()).all(), stated["reasons"].tolist()[:3]
    assert (named[0].dropna() == "UK").all()
    within = named[1].fillna(other).astype(int) / 100
    assert (within <= stated["market_overlap"] + 0.005).all()
    assert (within < stated["market_overlap"] - 0.01).any(), "no lookalike shares a market outside UK: not exercised"


@pytest.fixture(scope="module")
def percent_creators(world_dir, tmp_path_factory) -> tuple[Path, str]:
    """The world's creators with the sixth row's audience_mobile_share written '62%', as a spreadsheet exports a
    percentage cell (the other rows' shares as text too, so that the column can hold it); and that creator's id."""
    table = pq.read_table(world_dir / "creators.parquet")
    column = table.schema.get_field_index("audience_mobile_share")
    shares = [None if share is None else str(share) for share in table.column(column).to_pylist()]
    shares[5] = "62%"
    path = tmp_path_factory.mktemp("percent") / "creators.parquet"
    pq.write_table(table.set_column(column, "audience_mobile_share", pa.array(shares)), path)
    return path, table.column("creator_id")[5].as_py()


def test_a_seed_whose_row_was_rejected_is_refused_as_such_after_the_rejects_are_named(
    percent_creators, world_index, trained, tmp_path
):
    """A new-user trial's `similar --like cr000005` on a table whose cr000005 row is invalid printed only "not a
    valid row of the creators table", as for an id the table does not hold: no reject line, no rejects file with
    --out. The rejects come first, as `match` reports them; then the refusal says which case the seed is."""
    path, bad = percent_creators
    args = ["similar", "--creators", str(path), "--index", str(world_index), "--k", "3", "--model", trained.model_uri]
    reject = (
        f"creators row 6 (id {bad}): column audience_mobile_share: got '62%'; input should be a valid number, "
        "unable to parse string as a number (written as a percentage? write 0.62 for 62%)"
    )
    rejected = f"it is in the creators table, but its row was rejected ({reject})"
    for seed, why in [(bad, rejected), ("nope", "it is not in the creators table")]:
        done = run_in_process(*args, "--like", seed)
        assert done.returncode == 2, done.stderr
        refusal = f"creator-match: Got creator_id {seed!r}; {why}; no lookalike was searched"
        assert done.stderr.strip().splitlines()[-2:] == [reject, refusal]

    out = tmp_path / "like.csv"
    done = run_in_process(*args, "--like", bad, "--out", str(out))
    assert done.returncode == 2, done.stderr
    rejects = tmp_path / "like.rejects.csv"
    assert done.stderr.strip().splitlines()[-3:] == [
        reject,
        f"1 row rejected; see {rejects}",
        f"creator-match: Got creator_id {bad!r}; {rejected}; no lookalike was searched, and {out} was left as it was",
    ]
    assert not out.exists()
    with open(rejects, encoding="utf-8", newline="") as handle:
        assert [(r["table"], r["row"], r["id"], r["column"], r["output"]) for r in csv.DictReader(handle)] == [
            ("creators", "6", bad, "audience_mobile_share", "like.csv")
        ]

    # The service's /v1/similar answers with the matcher's own words (its 422 reason).
    matcher = Matcher(read_table(path, "creators"), model=trained.model_uri, index=world_index)
    with pytest.raises(UnknownCreator) as refused:
        matcher.similar([bad])
    assert str(refused.value) == f"Got creator_id {bad!r}; {rejected}"


@pytest.fixture(scope="module")
def no_jp_creators(world_dir, tmp_path_factory) -> Path:
    """The world's creators with every audience share in JP moved to US: JP is one of the contract's marketplace codes
    that no creator states an audience in."""
    table = pq.read_table(world_dir / "creators.parquet")
    column = table.schema.get_field_index("audience_marketplaces")
    moved = []
    for shares in table.column(column).to_pylist():
        if shares is None:
            moved.append(None)
            continue
        merged: dict[str, float] = {}
        for code, share in shares:
            merged["US" if code == "JP" else code] = merged.get("US" if code == "JP" else code, 0.0) + share
        moved.append(list(merged.items()))
    path = tmp_path_factory.mktemp("no_jp") / "creators.parquet"
    kind = table.schema.field(column).type
    pq.write_table(table.set_column(column, table.schema.field(column), pa.array(moved, type=kind)), path)
    return path


def test_a_marketplace_no_creator_states_is_refused_unless_amazons_and_then_warned_as_match_warns(
    no_jp_creators, world_index, trained, tmp_path
):
    """A trial's `similar --marketplace ZZ` (and `GB`) exited 0 with nothing on standard error, its list only
    creators who state no audience split: the search had quietly narrowed to them. A code that is not Amazon's and
    that no creator states is refused, as the docs say of an unknown code; one of Amazon's that no creator states is
    searched with `match`'s warning for a campaign sold there."""
    table = read_table(no_jp_creators, "creators")
    stated = table.frame["audience_marketplaces"].map(bool)
    seed = table.frame["creator_id"][int(np.flatnonzero(stated)[0])]
    args = ["similar", "--creators", str(no_jp_creators), "--index", str(world_index), "--like", seed]
    args += ["--model", trained.model_uri]
    out = tmp_path / "like.csv"
    codes = "US CA MX UK DE FR IT ES JP AU"
    for code, meant in [("ZZ", ""), ("GB", "; did you mean UK?")]:
        done = run_in_process(*args, "--k", "3", "--marketplace", code, "--out", str(out))
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"creator-match: Got marketplace {code!r}; expected one of the contract's marketplace codes or one a "
            f"creator states an audience in: no creator states an audience there ({code} is not one of the "
            f"contract's marketplace codes, {codes}{meant}); no lookalike was searched, and {out} was left as it was"
        ]
        assert not out.exists()

    unstated = int((~stated).sum())
    warning = (
        "creator-match: warning: marketplace JP of the lookalike search: no creator states an audience there, so "
        "every creator who states an audience split has none of it in its marketplaces, under the minimum market "
        f"share (5%), and is left out: only creators who state no split ({unstated} of the {len(stated)}) can be "
        "proposed"
    )
    # Its warnings on its stderr, as in a process of its own (pytest records this process's otherwise).
    done = run_in_process(*args, "--k", "3", "--marketplace", "JP", "--out", str(out), warnings_on_stderr=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [warning]
    found = pd.read_csv(out)
    assert len(found) and found["market_overlap"].isna().all()  # what the warning says: only unstated creators
    # With a stated marketplace beside it, the search reads that one, and the line says so.
    done = run_in_process(
        *args, "--k", "40", "--marketplace", "JP", "--marketplace", "UK", "--out", str(out), warnings_on_stderr=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [
        "creator-match: warning: marketplace JP of the lookalike search: no creator states an audience there, so "
        "only its other marketplaces count in a creator's audience share"
    ]
    assert pd.read_csv(out)["market_overlap"].notna().any()
    # The Python API warns with the same line and returns it from lookalike_notes, which the service answers with.
    matcher = Matcher(table, model=trained.model_uri, index=world_index)
    with pytest.warns(UserWarning) as warned:
        matcher.similar(seed, k=3, marketplaces="JP")
    assert [str(w.message) for w in warned] == [warning.removeprefix("creator-match: warning: ")]
    with pytest.warns(UserWarning) as from_a_generator:  # codes read once: the search does not spend them
        matcher.similar(seed, k=3, marketplaces=(code for code in ["JP"]))
    assert [str(w.message) for w in from_a_generator] == [str(w.message) for w in warned]
    assert matcher.lookalike_notes(["US"]) == [] and matcher.lookalike_notes(None) == []
