"""What a reviewer sees of slates: held-out slates of each version, against the champion or the sellers' hand pick."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from features.contract import SETTLEMENT_DAYS
from matcher.slate import SlatePolicy, default_slates
from tests.commands import run_in_process
from training.evaluate import captured_sales
from training.promotion import MIN_CAMPAIGNS, logged_difference, said_difference
from training.ranker import CreatorRanker
from training.registry import FIRST_VERSION, champion_version, finish_registration
from training.review import captured_by_k, model_card
from training.train import summarize, train

pytestmark = pytest.mark.slow
POLICY = SlatePolicy()
FAST = CreatorRanker(max_iter=60)
MODEL = "slate-review"
CARD_HEADINGS = [
    "## Training data",
    "## Held-out later campaigns (the latest by start date: the run's `holdout` share)",
    "## Plots",
    "## Slates on held-out campaigns",
    "## Range of a slate's orders",
    "## Leans most on",
    "## Known limits",
]


@pytest.fixture(scope="module")
def versions(world_dir, embedder, tracking_uri, shared_training_builds):
    """v1 trained on what had settled by 2026-03-01 (champion), v2 on everything; both review their slates."""
    # A lighter ranker keeps the two extra training runs quick; slates only need its scores.
    common = {"model_name": MODEL, "embedder": embedder, "ranker": FAST, "slate_builder": default_slates}
    first = train(world_dir, as_of=dt.date(2026, 3, 1), **common)
    second = train(world_dir, **common)
    return first, second


def assert_sane(metrics: dict[str, float], prefix: str = "") -> None:
    standard, non_standard = metrics[f"{prefix}slate_size_standard"], metrics[f"{prefix}slate_size_non_standard"]
    assert 1 <= standard <= POLICY.standard_size
    assert 1 <= non_standard <= POLICY.non_standard_size
    assert non_standard > standard
    assert 0 <= metrics[f"{prefix}slate_funnel_coverage"] <= 1
    assert 0 < metrics[f"{prefix}slate_captured_sales"] <= 1


def logged(result) -> tuple[dict[str, float], list[str], str]:
    client = MlflowClient()
    run = client.get_run(result.run_id)
    artifacts = [a.path for a in client.list_artifacts(result.run_id, "review")]
    return run.data.metrics, artifacts, client.get_model_version(MODEL, result.version).description


def test_first_version_reviews_its_slates_against_the_sellers_hand_pick(versions):
    """The card called tags_then_followers "the best baseline" whatever the figures (a run had it at NDCG 0.461
    against followers' 0.754); it names the baseline the plot draws."""
    first, _ = versions
    assert first.is_champion
    metrics, artifacts, card = logged(first)
    assert_sane(metrics)
    assert_sane(metrics, "baseline_tags_then_followers_")
    assert not any(k.startswith("champion_slate_") for k in metrics)
    assert "review/slates_vs_champion.png" in artifacts
    assert [line for line in card.splitlines() if line.startswith("## ")] == CARD_HEADINGS
    assert (
        "- `review/slates_vs_champion.png`: this version's slates vs the tags_then_followers baseline's, the sellers' "
        "hand pick (no champion yet)"
    ) in card.splitlines()
    assert "| mean slate size, non-standard |" in card


def test_later_version_reviews_its_slates_against_the_champion_on_campaigns_it_never_saw(versions):
    _, second = versions
    assert not second.is_champion
    metrics, artifacts, card = logged(second)
    for prefix in ("", "versus_champion_", "champion_"):
        assert_sane(metrics, prefix)
    assert metrics["champion_slate_campaigns"] == metrics["champion_comparison_campaigns"] >= 3
    assert metrics["versus_champion_slate_campaigns"] == metrics["champion_slate_campaigns"]
    assert "review/slates_vs_champion.png" in artifacts
    assert [line for line in card.splitlines() if line.startswith("## ")] == CARD_HEADINGS
    assert "champion version 1's on the" in card
    assert second.metrics["slate_captured_sales"] == metrics["slate_captured_sales"]
    # The paired comparison with the champion is on the card, and so are the data and the code it was trained on.
    assert said_difference(*logged_difference(metrics)) in card
    tags = MlflowClient().get_run(second.run_id).data.tags
    assert f"- code: creator-matcher {tags['code_version']}, git commit `{tags['git_commit']}`" in card
    assert f"fingerprint `{tags['data_fingerprint']}` (creators `{tags['data_fingerprint.creators']}`, " in card


def test_the_card_says_how_many_held_out_campaigns_the_ndcg_figures_average(versions, tmp_path):
    """A reviewer read the NDCG figures as means over every held-out campaign, and the cold row's over every campaign
    it names, where they average only those with two pairs or more and some realized sales. The card says both
    counts, read here from the run's own pair files."""
    _, second = versions
    metrics, _, card = logged(second)

    def counted(artifact: str) -> tuple[int, int, int]:
        path = mlflow.artifacts.download_artifacts(
            run_id=second.run_id, artifact_path=f"evaluation/{artifact}", dst_path=str(tmp_path / artifact)
        )
        pairs = pd.read_parquet(path)
        by_campaign = pairs.groupby("campaign_id")["sales"].agg(["size", "sum"])
        ranked = int(((by_campaign["size"] >= 2) & (by_campaign["sum"] > 0)).sum())
        return len(by_campaign), len(pairs), ranked

    campaigns, pairs, ranked = counted("holdout.parquet")
    cold_ranked = counted("cold.parquet")[2]
    assert 0 < cold_ranked < ranked <= campaigns
    assert (
        f"{campaigns} campaigns and {pairs} pairs; the NDCG figures average the {ranked} campaigns with two pairs or "
        f"more and some realized sales, the cold row its {cold_ranked} such campaigns."
    ) in card.splitlines()
    assert (metrics["n_test_campaigns"], metrics["n_ranked_test_campaigns"]) == (campaigns, ranked)


def test_the_same_tables_give_the_same_fingerprint_whatever_the_run_date(versions):
    """Both versions read the same world, as of two dates: the fingerprint is the tables', the date a parameter."""
    client = MlflowClient()
    first, second = (client.get_run(result.run_id).data for result in versions)
    fingerprints = [{k: v for k, v in run.tags.items() if k.startswith("data_fingerprint")} for run in (first, second)]
    assert fingerprints[0] == fingerprints[1] and len(fingerprints[0]) == 6  # the whole, and five tables
    assert (first.params["as_of"], second.params["as_of"]) == ("2026-03-01", str(dt.date.today()))


def test_each_version_logs_the_range_of_a_slates_orders_and_its_card_quotes_it(versions):
    """The held-out campaigns set the range (`training.forecast_interval`): logged and quoted in the card. Version 1,
    trained on what had settled by March, held out 8 campaigns: too few, and its card says there is no range."""
    first, second = (logged(result) for result in versions)
    metrics, _, card = first
    assert metrics["forecast_campaigns"] == 8 and "forecast_low_multiple" not in metrics
    assert "## Range of a slate's orders\nNone: 8 held-out campaigns are too few to set one" in card
    metrics, _, card = second
    assert metrics["forecast_campaigns"] == 12
    low, high = metrics["forecast_low_multiple"], metrics["forecast_high_multiple"]
    assert 0 < low < 1 < high
    assert f"between {low:.3f} and {high:.3f} times (expected orders + 1)" in card
    # Its earlier 6 held-out campaigns are too few to check the range on the later 6.
    assert "forecast_later_half_coverage" not in metrics and "held n/a of the later half" in card


def test_the_card_gives_the_later_half_held_as_a_share_as_the_summary_does(versions):
    """The card said the earlier half's range "held 0.900 of the later half", beside "for 80% of campaigns" in the
    same sentence, where `train`'s summary said 90%."""
    _, second = versions
    tags = MlflowClient().get_run(second.run_id).data.tags
    metrics = second.metrics | {"forecast_later_half_coverage": 0.9}
    card = model_card(MODEL, "9", tags, metrics, None, None)
    assert "the earlier half's range held 90% of the later half" in card
    assert "the earlier half's range held 90% of the later half" in summarize(replace(second, metrics=metrics))


def test_the_card_shows_how_creators_held_out_entirely_rank_beside_the_baselines(versions):
    """The cold-start check (#12: creators held out of training entirely, scored without their record) was logged
    but missing from the card a reviewer reads; a run that held none out shows no such row."""
    first, _ = versions
    tags = MlflowClient().get_run(first.run_id).data.tags
    m = first.metrics
    assert m["cold_n_creators"] > 0
    row = next(
        line for line in model_card(MODEL, "9", tags, m, None, None).splitlines() if "held out of training" in line
    )
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert f"({m['cold_n_creators']:.0f} on {m['cold_n_campaigns']:.0f} campaigns" in cells[0]
    assert cells[1:5] == [
        f"{m[key]:.3f}"
        for key in (
            "cold_ndcg_at_10",
            "cold_baseline_followers_ndcg_at_10",
            "cold_baseline_tags_then_followers_ndcg_at_10",
            "cold_baseline_similarity_ndcg_at_10",
        )
    ]
    without = {key: value for key, value in m.items() if not key.startswith("cold_")}
    assert "held out of training" not in model_card(MODEL, "9", tags, without, None, None)


def test_without_a_slate_builder_the_card_keeps_the_section_and_says_why(versions):
    """Callers that pass no builder (training may not import matcher) still get the heading, with the reason."""
    first, _ = versions
    tags = MlflowClient().get_run(first.run_id).data.tags
    card = model_card(MODEL, "9", tags, first.metrics, None, None)
    assert "## Slates on held-out campaigns\nNot built in this run" in card
    assert "slates_vs_champion.png" not in card


def test_a_run_with_one_settled_campaign_says_it_has_no_held_out_fit(world_dir, embedder, tracking_uri):
    """With one campaign settled, it is all held out and nothing is fitted on earlier ones: no plot, slate or range
    is made. The card listed the three plots, which the run never logged, said no slate builder was given (train
    was given one), and that no campaign was held out; the summary said nothing of it."""
    ends = pd.read_parquet(world_dir / "campaigns.parquet")["end_date"].sort_values()
    assert ends.iloc[0] < ends.iloc[1]  # the first campaign settles a day before any other
    as_of = ends.iloc[0] + dt.timedelta(days=SETTLEMENT_DAYS)
    common = {"embedder": embedder, "ranker": FAST, "slate_builder": default_slates}
    result = train(world_dir, model_name="one-campaign", as_of=as_of, **common)
    assert (result.metrics["n_campaigns"], result.metrics["n_train_pairs"]) == (1, 0)
    client = MlflowClient()
    assert [a.path for a in client.list_artifacts(result.run_id, "review")] == ["review/model_card.md"]
    card = client.get_model_version("one-campaign", result.version).description
    n = int(result.metrics["n_test_pairs"])
    why = f"no held-out fit: 1 settled campaign left 0 earlier pairs to fit on and {n} held-out pairs to evaluate on"
    assert f"## Plots\nNone: {why}.\n" in card and ".png" not in card
    assert f"## Slates on held-out campaigns\nNot built in this run: {why}.\n" in card
    assert f"## Range of a slate's orders\nNone: {why}; summaries give NaN." in card
    assert "slate builder" not in card and "no campaign was held out" not in card
    assert f"not evaluated: {why}; train again once more campaigns have settled" in summarize(result)


def test_a_training_that_a_first_version_registered_meanwhile_beat_names_that_champion(
    world_dir, embedder, tracking_uri, tmp_path, shared_training_builds
):
    """Two first trainings at once: the one registered first is champion. The other's summary said "no version holds
    `champion`" (the line for a deleted alias) while the first did; it names the champion. The rival registers and
    is crowned while this training builds its held-out slates, as a training that finished first would be."""
    name = "raced"

    def rival_finishes_first(scored, evidence):
        if champion_version(name) is None:
            client = MlflowClient()
            client.create_registered_model(name)
            rival = str(client.create_model_version(name, source=str(tmp_path)).version)
            assert finish_registration(name, rival, "the rival's card", make_champion=True)
        return default_slates(scored, evidence)

    result = train(world_dir, model_name=name, embedder=embedder, ranker=FAST, slate_builder=rival_finishes_first)
    assert (result.version, result.is_champion, result.champion, champion_version(name)) == ("2", False, None, "1")
    assert summarize(result).splitlines()[0] == (
        "registered raced version 2 (not champion: version 1 is, registered first by a training that ran at the same "
        "time; this one was not compared with it: `creator-match promote` to use it)"
    )


def test_promoting_the_champion_changes_nothing_and_says_so(versions):
    """Not "version 1 is now champion (version 1 is already champion)": exit 0 and one line saying nothing changed,
    with --force too, since there is nothing to force."""
    first, _ = versions
    before = MlflowClient().get_model_version(MODEL, first.version).tags
    for force in ([], ["--force"]):
        done = run_in_process("promote", "--model-name", MODEL, "--version", first.version, *force)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{MODEL} version {first.version} is already champion; nothing changed\n"
    assert champion_version(MODEL) == first.version
    # Nor is anything recorded: its tags still say how it became champion, as the model's first version.
    assert MlflowClient().get_model_version(MODEL, first.version).tags == before
    assert before["promotion"] == FIRST_VERSION and before["promoted_from"] == "none"


def test_promote_help_names_the_refusals_and_the_override():
    done = run_in_process("promote", "--help")
    text = " ".join(done.stdout.split())  # as wrapped for the terminal
    assert "ranks at least as well (NDCG@10 of realized sales) as the champion" in text
    assert f"fewer than {MIN_CAMPAIGNS} are unseen by the champion: no fair comparison" in text
    assert "--force overrides either refusal" in text


def test_captured_sales_count_only_campaigns_the_top_k_does_not_hold_whole():
    """The top k of a campaign with k pairs or fewer is all of it whatever the order: such a campaign added a 1.0
    to every score's mean alike (the cold check's top 3, the review's captured_at_k at k equal to its size)."""
    pairs = pd.DataFrame({"campaign_id": ["small"] * 3 + ["large"] * 5, "sales": [3.0, 0, 1, 5, 0, 0, 1, 2]})
    worst_first = np.array([0, 1, 2, 0, 1, 2, 3, 4.0])  # ranks each campaign's best pair last
    # "large" alone at k=3: its top 3 sold 2 + 1 + 0 of its best 3's 5 + 2 + 1.
    assert captured_sales(pairs, worst_first, k=3) == pytest.approx(3 / 8)
    by_k = captured_by_k(pairs, {"model": worst_first})
    assert list(by_k.index) == [1, 2, 3, 4]  # no k reaches a campaign's size
    assert by_k.loc[3, "model"] == pytest.approx(3 / 8)
    assert by_k.loc[1, "model"] == pytest.approx((1 / 3 + 2 / 5) / 2)  # both campaigns rank at k=1
    assert np.isnan(captured_sales(pairs[pairs["campaign_id"] == "small"], worst_first[:3], k=3))
