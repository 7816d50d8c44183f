"""Profiles edited after the candidate index was built: told apart by their text's key, embedded anew and matched
as an index rebuilt from the edited table matches them, with one warning; the index's files are never written."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.embeddings import profile_keys
from features.text import creator_texts
from matcher.api import Matcher, MatchSettings
from matcher.candidate_index import CandidateIndex
from matcher.index_files import IDS_FILE

CHANGED = r"^2 creators' profiles have changed since the index was built \({}, {}\): they were embedded anew and "
# Few candidates per channel: in a world of 400 creators the defaults retrieve nearly all of them, whatever they read.
SETTINGS = MatchSettings(candidates=20, proven_candidates=20)
CURRENT = r"are matched on their current profiles; "
REBUILD = r"`creator-match index` rebuilds it \(only changed profiles are embedded again\)"


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, embedder):
    """An embedding cache of this module's own, as `creator-match index` fills one (with the session's ONNX export,
    as tests/conftest.py's `empty_cache_dir` has it)."""
    cache = tmp_path_factory.mktemp("cache")
    if embedder.backend == "onnx":
        (cache / "onnx").symlink_to(embedder.encoder.directory.parent, target_is_directory=True)
    return cache


def index_command(creators: pd.DataFrame, out, cache_dir) -> None:
    """`creator-match index` on this table, with this cache (a rebuild embeds only the profiles it lacks)."""
    from matcher.cli import main

    table = out.parent / f"{out.name}-creators.parquet"
    creators.to_parquet(table)
    assert main(["index", "--creators", str(table), "--out", str(out), "--cache-dir", str(cache_dir)]) == 0


@pytest.fixture(scope="module")
def index_dir(creators, cache_dir, tmp_path_factory):
    """The world's index as `creator-match index` writes it, before any profile is edited."""
    out = tmp_path_factory.mktemp("built") / "index"
    index_command(creators, out, cache_dir)
    return out


def matcher_of(creators: pd.DataFrame, ranker, index, embedder) -> Matcher:
    return Matcher(creators, model=ranker, index=index, embedder=embedder, settings=SETTINGS)


@dataclass(frozen=True)
class Edit:
    """The creators table with two profiles rewritten after the index was built, for the first campaign.

    Attributes:
        table: the edited creators table.
        campaign_id: the first campaign.
        closer: an eligible creator its retrieval did not find, rewritten to read like it (the interest tags of its
            closest candidate, its brief as bio).
        farther: the member of its slate whose profile was closest to it, rewritten to its least similar
            candidate's profile (interest tags and bio).
        farther_similarity: `farther`'s profile similarity to the campaign before the edit.
    """

    table: pd.DataFrame
    campaign_id: str
    closer: str
    farther: str
    farther_similarity: float

    @property
    def ids(self) -> list[str]:
        """The edited creators' ids in table order."""
        return [i for i in self.table["creator_id"] if i in (self.closer, self.farther)]


@pytest.fixture(scope="module")
def edit(creators, campaigns, ranker, index_dir, embedder) -> Edit:
    campaign = campaigns.iloc[0]
    before = matcher_of(creators, ranker, index_dir, embedder)
    features = before.candidate_features(campaigns).query("campaign_id == @campaign.campaign_id")
    similarity = features.set_index("creator_id")["similarity"]
    slate = before.match_many(campaigns).matches.query("campaign_id == @campaign.campaign_id")["creator_id"]
    shares = creators["audience_marketplaces"].map(
        lambda shares: 1.0 if shares is None else sum(dict(shares).get(m, 0.0) for m in campaign["marketplaces"])
    )
    eligible = (
        creators["accepts_campaigns"]
        & (creators["creator_type"] != "cashback_site")
        & (creators["disclosure_violations"] == 0)
        & (shares >= 0.2)
    )
    row = {creator_id: i for i, creator_id in enumerate(creators["creator_id"])}
    closer = creators["creator_id"][eligible & ~creators["creator_id"].isin(similarity.index)].iloc[0]
    farther = similarity[slate].idxmax()
    edited = creators.copy()
    edited.at[row[closer], "interest_tags"] = creators.at[row[similarity.idxmax()], "interest_tags"]
    edited.at[row[closer], "bio"] = campaign["brief"]
    for column in ("interest_tags", "bio"):
        edited.at[row[farther], column] = creators.at[row[similarity.idxmin()], column]
    return Edit(edited, campaign["campaign_id"], closer, farther, float(similarity[farther]))


def listing(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_the_index_command_records_each_profile_it_embedded(creators, index_dir):
    """creator_ids.parquet holds, beside each id, the key of the profile text its vector embedded."""
    loaded = CandidateIndex.load(index_dir)
    assert loaded.creator_ids.tolist() == creators["creator_id"].tolist()
    assert loaded.profile_keys.tobytes() == profile_keys(creators).tobytes()


def test_edited_profiles_are_matched_as_an_index_rebuilt_from_the_edited_table_matches_them(
    campaigns, ranker, index_dir, cache_dir, edit, embedder, tmp_path
):
    """Edits after the index was built: the old index gives the slates, scores and features of an index rebuilt
    from the edited table: the creator rewritten to read like the first campaign is now its closest candidate,
    the slate member rewritten off its topic has left the slate; one warning names the count and the ids, and the
    old index's files are as they were. Without its record of profiles (every index before it) the old index
    matched both on their old profiles."""
    files = listing(index_dir)
    with pytest.warns(UserWarning, match=CHANGED.format(*edit.ids) + CURRENT + REBUILD):
        refreshed = matcher_of(edit.table, ranker, index_dir, embedder.isolated())
    assert refreshed.profiles_changed_since_index == 2
    assert listing(index_dir) == files

    index_command(edit.table, tmp_path / "rebuilt", cache_dir)  # embeds the two edited profiles, as the matcher did
    rebuilt = matcher_of(edit.table, ranker, tmp_path / "rebuilt", embedder.isolated())
    assert rebuilt.profiles_changed_since_index == 0
    result = refreshed.match_many(campaigns, with_candidates=True)
    expected = rebuilt.match_many(campaigns, with_candidates=True)
    pd.testing.assert_frame_equal(result.matches, expected.matches)
    pd.testing.assert_frame_equal(result.candidates, expected.candidates)
    features = refreshed.candidate_features(campaigns)
    pd.testing.assert_frame_equal(features, rebuilt.candidate_features(campaigns))

    first = features.query("campaign_id == @edit.campaign_id").set_index("creator_id")["similarity"]
    assert first.idxmax() == edit.closer
    assert edit.farther not in first.index or first[edit.farther] < edit.farther_similarity - 0.1
    assert edit.farther not in set(result.matches.query("campaign_id == @edit.campaign_id")["creator_id"])

    old = CandidateIndex.load(index_dir)
    old.profile_keys = None  # as every index was before it recorded its profiles
    stale = matcher_of(edit.table, ranker, old, embedder.isolated()).candidate_features(campaigns)
    stale_first = stale.query("campaign_id == @edit.campaign_id").set_index("creator_id")["similarity"]
    assert edit.closer not in stale_first.index
    assert stale_first[edit.farther] == pytest.approx(edit.farther_similarity, abs=1e-5)


def test_an_unchanged_table_embeds_no_profile_and_warns_of_nothing(creators, ranker, index_dir, edit, embedder):
    """Hashing tells the profiles apart: an unchanged table has none of its profiles embedded and gives no warning;
    an edited one has its edited profiles embedded, and those only."""
    twin = embedder.isolated()  # a cache of its own, empty: what it holds afterwards is what the matcher embedded
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        same = matcher_of(creators, ranker, index_dir, twin)
    assert same.profiles_changed_since_index == 0
    assert (twin.cache.find(profile_keys(creators))[0] < 0).all()

    twin = embedder.isolated()
    with pytest.warns(UserWarning, match=CHANGED.format(*edit.ids)):
        matcher_of(edit.table, ranker, index_dir, twin)
    embedded = twin.cache.find(profile_keys(edit.table))[0] >= 0
    assert edit.table["creator_id"][embedded].tolist() == edit.ids


def test_an_index_object_of_the_caller_is_copied_not_changed(creators, ranker, index_dir, edit, embedder):
    """The caller's index object is left as it was (another matcher may read it); the matcher's copy holds the
    edited profiles, and matching the unedited table on the caller's index still finds nothing changed."""
    given = CandidateIndex.load(index_dir)
    vectors, keys = given.vectors(), given.profile_keys.copy()
    with pytest.warns(UserWarning, match=CHANGED.format(*edit.ids)):
        matcher = matcher_of(edit.table, ranker, given, embedder)
    assert matcher.index is not given and matcher.index.index is not given.index
    np.testing.assert_array_equal(given.vectors(), vectors)
    assert given.profile_keys.tobytes() == keys.tobytes()
    rows = np.flatnonzero(edit.table["creator_id"].isin(edit.ids))
    assert not np.isclose(matcher.scorer.creator_vectors[rows], vectors[rows]).all(axis=1).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert matcher_of(creators, ranker, given, embedder).profiles_changed_since_index == 0


def test_an_index_written_before_profiles_were_recorded_still_matches_and_says_it_cannot_be_checked(
    creators, campaigns, ranker, index_dir, embedder, tmp_path
):
    """An index directory without the profile column (as every index was before) loads and matches as before;
    one warning says edits cannot be noticed. An index object built without keys is the caller's to vouch for."""
    older = tmp_path / "older"
    CandidateIndex.load(index_dir).save(older)
    pq.write_table(pq.read_table(older / IDS_FILE).select(["creator_id"]), older / IDS_FILE)
    with pytest.warns(UserWarning, match=r"the index .*older was written before indexes recorded the profiles") as seen:
        matcher = matcher_of(creators, ranker, older, embedder)
    assert len([w for w in seen if "profile" in str(w.message)]) == 1
    expected = matcher_of(creators, ranker, index_dir, embedder).match_many(campaigns.iloc[:3])
    pd.testing.assert_frame_equal(matcher.match_many(campaigns.iloc[:3]).matches, expected.matches)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        matcher_of(creators, ranker, CandidateIndex.load(older), embedder)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_an_approximate_index_holds_the_edited_profiles_in_memory_and_hnsw_says_retrieval_may_miss_them(
    creators, ranker, edit, embedder, kind, tmp_path
):
    """ivf moves each edited vector to its nearest list (a float16 residual, as every row): an exact probe finds
    it first for its own profile. hnsw overwrites its stored rows, so their similarities are current, but cannot
    re-link its graph: the warning says retrieval may miss them. Neither writes the index's files."""
    CandidateIndex.of_creators(creators, embedder, kind).save(tmp_path / "index")
    files = listing(tmp_path / "index")
    tail = CURRENT if kind == "ivf" else r"their similarities are the current ones, but .* retrieval may miss them; "
    with pytest.warns(UserWarning, match=CHANGED.format(*edit.ids) + tail + REBUILD):
        matcher = matcher_of(edit.table, ranker, tmp_path / "index", embedder)
    assert listing(tmp_path / "index") == files

    rows = np.flatnonzero(edit.table["creator_id"].isin(edit.ids))
    current = embedder.encode(list(creator_texts(edit.table.iloc[rows])))
    stored = matcher.scorer.creator_vectors[rows]  # index rows are table rows: the index was built from this table
    if kind == "ivf":
        np.testing.assert_allclose(stored, current, atol=2e-4)
        matcher.index.nprobe = matcher.index.meta["nlist"]  # every list: exact
        _, positions = matcher.index.search(current, 1)
        assert matcher.index.creator_ids[positions[:, 0]].tolist() == edit.ids
    else:
        np.testing.assert_array_equal(stored, current)
    untouched = CandidateIndex.load(tmp_path / "index").vectors_at(rows)
    assert not np.isclose(untouched, current, atol=1e-2).all(axis=1).any()
