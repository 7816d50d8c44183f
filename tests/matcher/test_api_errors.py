"""What an app calling the Python API catches: every refusal importable from `matcher`, one base for them all, and
each raised where its docstring says, with the words and the records an app needs."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pandas as pd
import pytest

import matcher
import matcher.api
from features.embeddings import creator_vectors
from features.errors import MatcherError
from features.rows import CampaignRow
from matcher.api import Matcher
from matcher.candidate_index import CandidateIndex
from tests.matcher.test_matcher import API_CAMPAIGN
from training.registry import create_store

# Each error a public Matcher method can raise, and the bases it had before MatcherError joined them.
ERRORS = {
    "ModelNotFound": Exception,
    "IncompatibleModel": Exception,
    "NotARanker": Exception,
    "DigestMismatch": Exception,
    "RegistryUnavailable": Exception,
    "ArtifactMismatch": Exception,
    "DamagedIndex": Exception,
    "IndexNotFound": FileNotFoundError,
    "RayUnavailable": Exception,
    "UnknownCreator": ValueError,
    "CampaignRejected": ValueError,
}


@pytest.fixture(scope="module")
def built(creators, ranker, embedder):
    index = CandidateIndex.build(creator_vectors(embedder, creators), creators["creator_id"], embedder.model)
    return Matcher(creators, model=ranker, index=index, embedder=embedder)


@pytest.mark.parametrize(("name", "base"), ERRORS.items())
def test_each_error_is_exported_from_matcher_and_its_api_and_is_a_matcher_error_besides_its_old_base(name, base):
    error = getattr(matcher, name)
    assert error is getattr(matcher.api, name)
    assert name in matcher.__all__ and name in matcher.api.__all__
    assert issubclass(error, MatcherError) and issubclass(error, base)
    assert matcher.MatcherError is MatcherError


def test_the_package_and_its_api_list_the_same_public_names_and_the_crash_hooks_are_not_among_them():
    assert set(matcher.api.__all__) <= set(matcher.__all__)
    assert set(matcher.__all__) - set(matcher.api.__all__) == {"CandidateIndex", "SlatePolicy", "run_match"}
    for name in matcher.__all__:
        assert getattr(matcher, name) is not None
    assert "HALT_MARKER_ENV" not in matcher.api.__all__ and "HALT_AFTER_CHUNKS_ENV" not in matcher.api.__all__
    from matcher.api import HALT_AFTER_CHUNKS_ENV, HALT_MARKER_ENV  # noqa: F401  (still importable: the crash tests')


def test_a_model_missing_from_a_real_store_is_caught_as_a_matcher_error(creators, tracking_uri):
    create_store()  # the session's SQLite store, with no such model in it
    with pytest.raises(MatcherError) as refused:
        Matcher(creators, model="models:/no-such-model@champion")
    assert isinstance(refused.value, matcher.ModelNotFound)
    assert "no-such-model" in str(refused.value)


def test_an_index_directory_that_holds_no_index_is_caught_as_a_matcher_error_naming_it(
    creators, ranker, embedder, tmp_path
):
    """A wrong index path was a bare FileNotFoundError, the one refusal of a Matcher's arguments that an app's
    `except MatcherError` let through (a wrong model directory is a ModelNotFound)."""
    (tmp_path / "empty").mkdir()
    for directory in (tmp_path / "never-made", tmp_path / "empty"):
        with pytest.raises(MatcherError) as refused:
            Matcher(creators, model=ranker, index=directory, embedder=embedder)
        assert isinstance(refused.value, matcher.IndexNotFound) and isinstance(refused.value, FileNotFoundError)
        assert str(refused.value) == f"{directory}: no candidate index here (missing meta.json)"


def test_a_wrong_index_path_is_refused_before_the_model_is_loaded(creators, tmp_path):
    """The index path was checked only once the ranker had loaded (seconds, and with MLflow a round trip to its
    server): a model that cannot be loaded now is never reached, and the index is what the refusal names."""
    not_a_model = str(tmp_path / "no-such-model")
    with pytest.raises(matcher.IndexNotFound) as refused:
        Matcher(creators, model=not_a_model, index=tmp_path / "never-made")
    assert str(refused.value) == f"{tmp_path / 'never-made'}: no candidate index here (missing meta.json)"


def test_an_unknown_seed_is_caught_as_a_matcher_error_and_as_a_value_error(built):
    with pytest.raises(MatcherError) as refused:
        built.similar(["no-such-creator"])
    assert isinstance(refused.value, matcher.UnknownCreator) and isinstance(refused.value, ValueError)
    assert "'no-such-creator'" in str(refused.value)


def test_an_invalid_campaign_carries_its_rejects_as_match_many_returns_them(built):
    bad = {**API_CAMPAIGN, "price": -5.0, "budget": "lots"}
    with pytest.raises(matcher.CampaignRejected) as refused:
        built.match(bad)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, MatcherError)
    assert str(refused.value).startswith("invalid campaign: ")
    assert refused.value.rejects == built.match_many([bad]).rejects
    assert {reject.column for reject in refused.value.rejects} == {"price", "budget"}
    copied = pickle.loads(pickle.dumps(refused.value))  # as a worker process hands it back
    assert str(copied) == str(refused.value) and copied.rejects == refused.value.rejects
    with pytest.raises(matcher.CampaignRejected) as in_a_table:
        built.scored_candidates(pd.DataFrame([API_CAMPAIGN, bad]))
    assert in_a_table.value.rejects == built.match_many([API_CAMPAIGN, bad]).rejects


def test_arguments_of_the_wrong_type_are_named_as_the_method_names_them(built):
    with pytest.raises(TypeError) as refused:
        built.similar(5)
    assert str(refused.value) == "Got creator_ids as int; expected a creator_id or a list of them"
    many = "; match_many takes a table or a list of campaigns"
    for campaign, kind, hint in (
        (pd.Series(API_CAMPAIGN), "Series", many),
        (pd.DataFrame([API_CAMPAIGN]), "DataFrame", many),
        ("api-1", "str", ""),
        (7, "int", ""),
    ):
        with pytest.raises(TypeError) as refused:
            built.match(campaign)
        assert str(refused.value) == f"Got campaign as {kind}; expected one campaign, a mapping or a CampaignRow{hint}"


def test_one_campaign_a_path_or_a_number_given_for_campaigns_is_refused_as_what_it_is(built):
    """`match_many(campaign)` iterated the mapping's keys and `match_many("new_campaigns.parquet")` a path's letters:
    both were refused as "Got campaigns[0] as str", naming a key or a letter as a campaign; a number failed as
    "'int' object is not iterable"."""
    whole = "; expected a table from features.read_table, a DataFrame, or an iterable of mappings and CampaignRows"
    for campaigns, kind, hint in (
        (API_CAMPAIGN, "dict", "; one campaign is match's (or a list of one)"),
        (CampaignRow(**API_CAMPAIGN), "CampaignRow", "; one campaign is match's (or a list of one)"),
        ("world/new_campaigns.parquet", "str", "; read a file with features.read_table(path, 'campaigns')"),
        (7, "int", ""),
    ):
        for method in (built.match_many, built.scored_candidates, built.candidate_features):
            with pytest.raises(TypeError) as refused:
                method(campaigns)
            assert str(refused.value) == f"Got campaigns as {kind}{whole}{hint}"


def test_a_chunk_size_that_is_no_whole_number_of_at_least_one_is_refused_by_every_method_that_takes_it(built):
    """match_many(chunk_size="10") failed as "'<' not supported between instances of 'str' and 'int'", and
    candidate_features(chunk_size=0) as "range() arg 3 must not be zero"."""
    for method in (built.match_many, built.scored_candidates, built.candidate_features):
        for chunk_size in ("10", 0, 2.5, True):
            with pytest.raises(ValueError) as refused:
                method([API_CAMPAIGN], chunk_size=chunk_size)
            shown = repr(chunk_size) if isinstance(chunk_size, str) else chunk_size
            assert str(refused.value) == f"Got chunk_size={shown}; expected a whole number of at least 1"


def test_a_registered_model_loads_with_library_deprecations_as_errors(world_dir, world_index, trained):
    """An app's test suite turning warnings into errors: SQLAlchemy's deprecation inside MLflow made the session's
    healthy ranker a NotARanker."""
    script = (
        "import sys\n"
        "from features.tables import read_table\n"
        "from matcher import Matcher\n"
        "m = Matcher(read_table(sys.argv[1], 'creators'), model=sys.argv[2], index=sys.argv[3])\n"
        "print(m.ranker.version)\n"
    )
    args = [str(world_dir / "creators.parquet"), trained.model_uri, str(world_index)]
    warnings_as_errors = ["-W", "error::DeprecationWarning", "-W", "error::FutureWarning"]
    done = subprocess.run(
        [sys.executable, *warnings_as_errors, "-c", script, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("creator-ranker/1"), done.stdout
