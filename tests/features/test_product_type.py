"""Product type: a probability with its reason, from evidence that carries to real titles."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from features.embeddings import campaign_vectors
from features.product_type import (
    ProductTypeModel,
    content_conversion_lift,
    kind_vectors,
    price_zones,
    reference_prices,
    resolve_product_types,
)
from simulation import WORLDS
from simulation.world import simulate
from tests.real_fixtures import REAL_FIXTURES, campaigns_from_titles, held_out, real_titles


def test_declared_types_win_and_auto_gets_a_probability_and_a_reason(embedder):
    titles = real_titles().iloc[[0, 1, -1]]
    campaigns = campaigns_from_titles(titles).assign(product_type=["standard", "auto", "non_standard"])
    out = resolve_product_types(campaigns, embedder)
    assert out["product_type"].iloc[0] == "standard" and out["product_type_probability"].iloc[0] == 0.0
    assert out["product_type"].iloc[2] == "non_standard" and out["product_type_probability"].iloc[2] == 1.0
    assert out["product_type_reason"].iloc[0] == "declared by the seller"
    p = out["product_type_probability"].iloc[1]
    assert 0.0 < p < 1.0
    assert f"(probability of non-standard {p:.2f})" in out["product_type_reason"].iloc[1]
    assert out["product_type"].iloc[1] == ("non_standard" if p >= 0.5 else "standard")


def test_uncertain_calls_say_so(embedder):
    out = resolve_product_types(campaigns_from_titles(real_titles()), embedder)
    uncertain = out["product_type_probability"].between(0.35, 0.65)
    assert out.loc[uncertain, "product_type_reason"].str.startswith("uncertain, leaning").all()
    assert not out.loc[~uncertain, "product_type_reason"].str.contains("uncertain").any()


def test_accuracy_on_real_titles_labelled_by_a_written_rule(embedder):
    """benchmarks/product_type.py measured 0.919 on the dev half and 0.868 on the held-out half of these 304 titles
    with no history (the settings were chosen on the dev half only); the floors are well below, on both halves."""
    titles = real_titles()
    out = resolve_product_types(campaigns_from_titles(titles), embedder)
    right = out["product_type"].to_numpy() == titles["label"].to_numpy()
    held = held_out(titles["asin"]).to_numpy()
    assert right[~held].mean() >= 0.8 and right[held].mean() >= 0.75


def test_price_among_the_sellers_products_moves_the_call(embedder):
    """The same brief reads as non-standard when it is among the seller's dearest products, standard among the
    cheapest: a product that costs enough to be researched is a considered purchase."""
    titles = real_titles()
    campaigns = campaigns_from_titles(titles)
    brief = campaigns.iloc[[0]]
    prices = campaigns["price"]
    cheap = brief.assign(campaign_id="cheap", price=prices.min() / 2)
    dear = brief.assign(campaign_id="dear", price=prices.max() * 2)
    out = resolve_product_types(pd.concat([campaigns, cheap, dear], ignore_index=True), embedder)
    p = out.set_index("campaign_id")["product_type_probability"]
    assert p["dear"] > p["cheap"] + 0.3
    reason = out.set_index("campaign_id").loc["dear", "product_type_reason"]
    # No history: the price level is read among this run's titles.
    assert "priced high among this run's products" in reason


def test_the_sellers_declared_campaigns_weigh_the_signals(embedder):
    """On a world whose products no wording reveals, the weights learned from the declared campaigns beat the fixed
    ones, and every weight and the base rate are finite."""
    world = WORLDS["alt"](n_creators=150, n_campaigns=300, n_new_campaigns=120, seed=1)
    past = world.campaigns
    descriptions = kind_vectors(embedder)
    outcomes = content_conversion_lift(world.performance, world.creators)
    model = ProductTypeModel().fit(past, embedder.encode(list(past["brief"])), outcomes, descriptions)
    signals = {"zero_shot", "classifier", "price", "price_level", "category_kinds", "outcomes"}
    assert set(model.weights_) == signals
    assert np.isfinite(list(model.weights_.values())).all() and np.isfinite(model.base_rate_)
    new = world.new_campaigns.assign(product_type="auto")
    truth = world.campaign_truth.set_index("campaign_id")["product_type"].reindex(new["campaign_id"]).to_numpy()
    learned = (resolve_product_types(new, embedder, model)["product_type"].to_numpy() == truth).mean()
    fixed = (resolve_product_types(new, embedder)["product_type"].to_numpy() == truth).mean()
    assert learned > fixed


@pytest.fixture(scope="module")
def alt_world():
    """The second generator's world whose products no wording reveals, simulated once (seconds) for the two tests
    that read a campaign's evidence alone and in batches; neither changes it."""
    return WORLDS["alt"](n_creators=150, n_campaigns=300, n_new_campaigns=40, seed=1)


def test_a_campaigns_evidence_alone_is_the_bits_it_gets_in_a_batch(embedder, alt_world):
    """Given the same prices, every signal of a campaign read alone (a service's request) equals its row in a batch
    (the nightly job) to the bit: the products with the kinds' descriptions, the past briefs and the classifier's
    weights are summed so that they do not follow how many campaigns there are."""
    world = alt_world
    past = world.campaigns
    descriptions = kind_vectors(embedder)
    outcomes = content_conversion_lift(world.performance, world.creators)
    model = ProductTypeModel().fit(past, embedder.encode(list(past["brief"])), outcomes, descriptions)
    assert model.classifier_ is not None and len(model.outcome_vectors_)
    new = world.new_campaigns
    vectors = embedder.encode(list(new["brief"]))
    batch = model.evidence(new, vectors, descriptions)
    alone = pd.concat([model.evidence(new.iloc[[i]], vectors[[i]], descriptions) for i in range(len(new))])
    assert (batch["classifier"] != 0).all() and (batch["zero_shot"] != 0).all()
    pd.testing.assert_frame_equal(alone, batch, check_exact=True)


def test_with_a_history_a_campaign_resolves_the_same_whatever_else_the_batch_holds(embedder, alt_world):
    """A new-user trial's storage bins read 0.37 alone, 0.92 non-standard "priced high for its category" beside 30
    copies at $1 and 0.21 beside 30 at $500: the batch's prices joined the category's range. Where the seller's past
    campaigns in the campaign's marketplaces give a range, they alone do now; a category the past lacks there still
    takes the batch's prices."""
    world = alt_world
    past = world.campaigns
    descriptions = kind_vectors(embedder)
    model = ProductTypeModel().fit(past, embedder.encode(list(past["brief"])), None, descriptions)
    one = (
        world.new_campaigns.iloc[[1]].reset_index(drop=True).assign(product_type="auto")
    )  # sold in US, where the past has its category
    assert len(model.past_prices(one["marketplaces"].iloc[0])[one["category"].iloc[0]]) >= model.min_category_prices
    alone = resolve_product_types(one, embedder, model)
    for price in (1.0, 500.0):
        copies = pd.concat([one.assign(campaign_id=f"copy-{k}", price=price) for k in range(30)])
        batch = resolve_product_types(pd.concat([one, copies], ignore_index=True), embedder, model).iloc[[0]]
        pd.testing.assert_frame_equal(batch, alone, check_exact=True)
    new_category = one.assign(category="a category with no past campaign")
    cheap = pd.concat([new_category.assign(campaign_id=f"copy-{k}", price=1.0) for k in range(30)])
    dear = pd.concat([new_category.assign(campaign_id=f"copy-{k}", price=500.0) for k in range(30)])
    beside_cheap = resolve_product_types(pd.concat([new_category, cheap], ignore_index=True), embedder, model)
    beside_dear = resolve_product_types(pd.concat([new_category, dear], ignore_index=True), embedder, model)
    assert beside_cheap["product_type_probability"].iloc[0] > beside_dear["product_type_probability"].iloc[0], (
        "in a category the past lacks, the batch's prices are the range"
    )


def test_the_sellers_declared_campaigns_teach_the_classifier(embedder):
    world = simulate(n_creators=200, n_campaigns=300, n_new_campaigns=40, seed=5)
    past = world.campaigns
    model = ProductTypeModel().fit(past, embedder.encode(list(past["brief"])))
    assert model.classifier_ is not None and min(model.n_declared_) >= model.min_declared
    new = world.new_campaigns.assign(product_type="auto")
    truth = world.campaign_truth.set_index("campaign_id")["product_type"].reindex(new["campaign_id"]).to_numpy()
    taught = (resolve_product_types(new, embedder, model)["product_type"].to_numpy() == truth).mean()
    untaught = (resolve_product_types(new, embedder)["product_type"].to_numpy() == truth).mean()
    assert taught >= 0.85 and taught >= untaught
    assert "declared" in " ".join(resolve_product_types(new, embedder, model)["product_type_reason"])


def test_content_conversion_lift_reads_who_converted():
    creators = pd.DataFrame({"creator_id": ["a", "b"], "creator_type": ["social_creator", "deals_site"]})
    rows = pd.DataFrame(
        {
            "campaign_id": ["c1", "c1", "c2", "c2"],
            "creator_id": ["a", "b", "a", "b"],
            "clicks": [1000, 1000, 1000, 1000],
            "orders": [80, 20, 10, 60],
        }
    )
    lift = content_conversion_lift(rows, creators).set_index("campaign_id")["lift"]
    assert lift["c1"] > 0.5 and lift["c2"] < -0.5
    assert np.isfinite(lift).all()


def test_a_model_pickled_before_the_learned_weights_still_resolves(embedder):
    """Registered rankers carry a fitted ProductTypeModel; one pickled before the price level, the declared kinds
    per category and the learned weights existed resolves with none of them, as it did then."""
    titles = real_titles().iloc[:40]
    campaigns = campaigns_from_titles(titles)
    model = ProductTypeModel().fit(campaigns, embedder.encode(list(campaigns["brief"])))
    for name in ("weights_", "base_rate_", "category_kinds_", "price_level_weight", "combiner_C", "zero_shot_typical_"):
        delattr(model, name)
    old = pickle.loads(pickle.dumps(model))
    out = old.evidence(campaigns, embedder.encode(list(campaigns["brief"])), kind_vectors(embedder))
    assert (out["price_level"] == 0).all() and (out["base_rate"] == 0).all() and (out["category_kinds"] == 0).all()
    resolved = resolve_product_types(campaigns, embedder, old)
    assert resolved["product_type_probability"].between(0, 1).all()
    assert not resolved["product_type_reason"].str.contains("than the past briefs").any()


def test_a_reason_keeps_the_evidence_against_the_call_apart():
    """The signals that moved a call most are named on its side, and those that pulled the other way after
    "against it", so a non-standard call never reads as if "most campaigns are standard" argued for it."""
    from features.product_type import _describe

    evidence = pd.Series(
        {
            "zero_shot": 0.8,
            "classifier": 0.0,
            "price": 0.1,
            "price_level": 1.5,
            "category_kinds": 0.0,
            "base_rate": -0.6,
            "outcomes": 0.0,
        }
    )
    assert _describe(evidence, 0.99, (0, 0), (4, 30)) == (
        "non-standard (probability of non-standard 0.99): priced high among the products the ranker learned from; "
        "the brief reads like a considered, taste-driven purchase; against it, the baseline learned from 34 declared "
        "past campaigns leans standard"
    )
    assert _describe(-evidence.where(evidence < 0, 0.0), 0.6, (0, 0), (30, 4)).startswith(
        "uncertain, leaning non-standard (probability of non-standard 0.60): the baseline learned from 34 declared "
        "past campaigns leans non-standard"
    )
    assert _describe(evidence * 0, 0.5, (0, 0), (0, 0)).endswith(": no signal either way (slate sized between the two)")


def test_a_category_declaration_is_quoted_with_its_count_not_as_most():
    """One declaration in a category is what the reason says, not "most campaigns in this category"."""
    from features.product_type import _describe

    evidence = pd.Series(
        {name: 0.0 for name in ("zero_shot", "classifier", "price", "price_level", "base_rate", "outcomes")}
        | {"category_kinds": 0.69}
    )
    assert _describe(evidence, 0.7, (1, 0), (1, 3)) == (
        "non-standard (probability of non-standard 0.70): the only past campaign in this category the ranker "
        "learned from that declared a type declared non-standard"
    )


def test_the_probability_shown_never_contradicts_the_band_it_is_called_in():
    """A trial read "standard (probability of non-standard 0.35)" for 0.3483, where the docs call 0.35 to 0.65
    uncertain: near a bound the value is shown to 3 decimals, cut toward the side decided within a thousandth."""
    from features.product_type import _describe

    names = ("zero_shot", "classifier", "price", "price_level", "category_kinds", "base_rate", "outcomes")
    quiet = pd.Series(dict.fromkeys(names, 0.0))
    shown = {
        0.3483: "standard (probability of non-standard 0.348)",
        0.34999: "standard (probability of non-standard 0.349)",
        0.35: "uncertain, leaning standard (probability of non-standard 0.35)",
        0.6501: "non-standard (probability of non-standard 0.651)",
        0.4996: "uncertain, leaning standard (probability of non-standard 0.499)",
        0.5: "uncertain, leaning non-standard (probability of non-standard 0.50)",
        0.2: "standard (probability of non-standard 0.20)",
        0.7: "non-standard (probability of non-standard 0.70)",
    }
    for probability, head in shown.items():
        assert _describe(quiet, probability, (0, 0), (0, 0)).startswith(head + ":"), probability


def test_a_reason_reads_the_brief_against_the_past_briefs_not_the_sign_of_its_closeness(embedder):
    """A trial's demo said "against it, the brief reads like a considered, taste-driven purchase" of plant labels
    "Simple, durable and priced to move", and of most campaigns it resolved standard: every brief of that world is
    closer to the non-standard descriptions than to the standard ones, so the zero-shot signal was positive for
    all of them. A reason now reads the brief against the past briefs the ranker learned from; the probability is
    unchanged. Those are named as such, never as "the seller's" (docs/design.md): for a seller with no history of
    its own they are whatever the ranker was trained on (a simulated world, in a new-seller trial)."""
    from features.embeddings import campaign_vectors

    world = simulate(n_creators=600, n_campaigns=120, seed=7)  # the demo's world
    past = world.campaigns
    descriptions = kind_vectors(embedder)
    vectors = campaign_vectors(embedder, past)
    outcomes = content_conversion_lift(world.performance, world.creators)
    model = ProductTypeModel().fit(past, vectors, outcomes, descriptions)
    raw = model.evidence(past, vectors, descriptions)["zero_shot"] / model.weights_["zero_shot"]
    assert (raw > 0).mean() > 0.9, "the case is not exercised: the briefs are not all closer to one kind"
    assert model.zero_shot_typical_ == float(model._zero_shot(vectors, descriptions).mean())

    new = world.new_campaigns.assign(product_type="auto")
    new_vectors = campaign_vectors(embedder, new)
    out = resolve_product_types(new, embedder, model, new_vectors)
    # The world prices every marketplace alike, so they are one zone: each campaign is read against all the past.
    assert set(model.run_price_zones(new).values()) == {frozenset(model.marketplaces)}
    prices = reference_prices(new, model.past_prices(model.marketplaces), 5)
    evidence = model.evidence(new, new_vectors, descriptions, *prices)
    np.testing.assert_array_equal(
        out["product_type_probability"], 1.0 / (1.0 + np.exp(-evidence.sum(axis=1).to_numpy()))
    )
    simple = new["brief"].str.contains("Simple, durable and priced to move")
    assert simple.sum() >= 3
    assert not out.loc[simple, "product_type_reason"].str.contains("taste-driven").any()
    # Most briefs in commodity words now say so; one that the descriptions still find closer to the non-standard
    # kind than the seller's briefs usually are ("resistance bands to shoppers who care about cycling. The basics
    # your audience reorders every month") is said to, as the model read it.
    commodity = new["brief"].str.contains("Simple, durable and priced to move|The basics your audience reorders")
    said = out.loc[commodity, "product_type_reason"].str.contains(
        "reads more like a commodity than the past briefs the ranker learned from"
    )
    assert said.mean() >= 0.5, out.loc[commodity, "product_type_reason"].tolist()
    taste = out["product_type_reason"].str.contains(
        "the brief reads more like a considered, taste-driven purchase than the past briefs the ranker learned from"
    )
    assert (out.loc[taste, "product_type"] == "non_standard").any()
    assert not out["product_type_reason"].str.contains("the seller's").any()
    # With no past there is nothing to read a brief against: the signal is said as it is.
    alone = resolve_product_types(new, embedder, vectors=new_vectors)["product_type_reason"]
    assert not alone.str.contains("than the past briefs").any()


@pytest.fixture(scope="module")
def simulated_past() -> pd.DataFrame:
    """A simulated world's 200 past campaigns, simulated once (seconds) for the module's tests that read prices;
    each takes a changed copy (`assign`), never changing this one."""
    return simulate(n_creators=100, n_campaigns=200, seed=3).campaigns


@pytest.fixture(scope="module")
def fitted_on_us_dollars(embedder, simulated_past) -> ProductTypeModel:
    """A model fitted on a simulated world's past campaigns, all sold in US and priced 5 to 50 (dollars, say).

    Fitted once for the module's tests that read prices against it; none changes it (one that deletes attributes
    works on a copy)."""
    past = simulated_past.assign(
        marketplaces=[["US"]] * len(simulated_past), price=5.0 + 45.0 * simulated_past["price"].rank(pct=True)
    )
    return ProductTypeModel().fit(past, campaign_vectors(embedder, past), None, kind_vectors(embedder))


def _rupee_campaigns() -> pd.DataFrame:
    """Real amazon.in titles priced 75 to 5,000 (rupees), each a campaign sold in IN."""
    titles = real_titles()
    return campaigns_from_titles(titles[titles["price_inr"].between(75, 5000)]).reset_index(drop=True)


def test_a_price_is_read_only_against_campaigns_sharing_a_marketplace(embedder, fitted_on_us_dollars):
    """A new-user trial: a ranker trained on a world priced like US dollars resolved a seller's campaigns in IN,
    priced in rupees, every one "non-standard (probability 1.00): priced high among the products the ranker learned
    from", a 75-rupee eyebrow pencil included. A price is now read only against campaigns sharing a marketplace
    with it (the closest the contract comes to a currency): the IN campaigns against each other, the same
    campaigns sold in US against the US past."""
    model = fitted_on_us_dollars
    india = _rupee_campaigns()
    out = resolve_product_types(india, embedder, model)
    non_standard = (out["product_type"] == "non_standard").mean()
    assert 0.2 <= non_standard <= 0.8, non_standard
    assert not out["product_type_reason"].str.contains("the products the ranker learned from").any()
    priced = out["product_type_reason"].str.contains("priced (?:high|low) among")
    assert priced.any()
    assert out.loc[priced, "product_type_reason"].str.contains("among this run's products sold in IN").all()
    cheap, dear = (
        out["product_type_probability"].iloc[india["price"].argmin()],
        out["product_type_probability"].iloc[india["price"].argmax()],
    )
    assert cheap < dear

    in_us = resolve_product_types(india.assign(marketplaces=[["US"]] * len(india)), embedder, model)
    assert (
        in_us["product_type_reason"]
        .str.contains("priced high among the products the ranker learned from sold in US")
        .all()
    )
    assert (in_us["product_type_probability"] > out["product_type_probability"]).mean() > 0.5


def test_a_run_reads_each_marketplaces_prices_apart(embedder, fitted_on_us_dollars):
    """Campaigns sharing no marketplace never place each other's prices: the IN campaigns resolve beside US ones
    (dollar prices of the run and of the past) exactly as they do alone; a campaign sold in both is read against
    the US past, which it shares."""
    model = fitted_on_us_dollars
    india = _rupee_campaigns()
    dollars = india.assign(
        campaign_id="us-" + india["campaign_id"], marketplaces=[["US"]] * len(india), price=india["price"] / 83
    )
    vectors = campaign_vectors(embedder, india)
    alone = resolve_product_types(india, embedder, model, vectors)
    both_runs = pd.concat([india, dollars], ignore_index=True)
    beside = resolve_product_types(both_runs, embedder, model, np.concatenate([vectors, vectors]))
    pd.testing.assert_frame_equal(beside.iloc[: len(india)], alone, check_exact=True)
    both = india.iloc[[india["price"].argmax()]].assign(campaign_id="both", marketplaces=[["IN", "US"]])
    reason = resolve_product_types(pd.concat([india, both], ignore_index=True), embedder, model)["product_type_reason"]
    assert "priced high among the products the ranker learned from sold in IN or US" in reason.iloc[-1]


def test_marketplaces_whose_prices_agree_are_read_as_one_currency():
    """The three real fixtures' amazon.in listings, all in rupees but scraped apart (their "home" is appliances in
    one and decor in another), each taken as a marketplace of its own: their prices in the categories they share
    agree within the factor, so they are one zone; the same listings in dollars (at 83 rupees) stay apart from the
    rupee ones; zones decided before (a ranker's past) are kept whole and never joined with each other."""
    runs = [fixture.campaigns(fixture.titles(), "auto") for fixture in REAL_FIXTURES]
    rupees = pd.concat(
        [run.assign(marketplaces=[[code]] * len(run)) for run, code in zip(runs, ("IN", "AE", "SG"), strict=True)],
        ignore_index=True,
    )
    assert set(price_zones(rupees).values()) == {frozenset({"IN", "AE", "SG"})}
    dollars = runs[1].assign(marketplaces=[["US"]] * len(runs[1]), price=runs[1]["price"] / 83)
    both = pd.concat([rupees, dollars], ignore_index=True)
    assert set(price_zones(both).values()) == {frozenset({"IN", "AE", "SG"}), frozenset({"US"})}
    settled = [frozenset({"IN"}), frozenset({"SG"})]
    assert set(price_zones(rupees, settled).values()) == {frozenset({"IN"}), frozenset({"SG", "AE"})}


def test_a_marketplace_new_to_the_past_joins_the_zone_its_prices_agree_with(embedder, fitted_on_us_dollars):
    """A seller's campaigns in CA, a marketplace the ranker's past never sold in, priced in dollars like its US
    past: read against that past (the same prices in IN, in rupees, are read only among themselves)."""
    model = fitted_on_us_dollars
    rupees = _rupee_campaigns()
    canada = rupees.assign(marketplaces=[["CA"]] * len(rupees), price=rupees["price"] / 83)
    assert model.run_price_zones(canada)["CA"] == frozenset({"CA", "US"})
    assert model.price_zones_ == {"US": frozenset({"US"})}
    out = resolve_product_types(canada, embedder, model)
    priced = out["product_type_reason"].str.contains("priced (?:high|low) among")
    assert priced.any()
    assert (
        out.loc[priced, "product_type_reason"]
        .str.contains("the products the ranker learned from sold in CA or US")
        .all()
    )


def test_a_model_pickled_before_zones_reads_its_past_marketplaces_apart(embedder, simulated_past):
    """A ranker registered before marketplaces whose prices agree were read together keeps its past marketplaces
    apart, as it read them: its US and CA campaigns, priced alike, are one zone only for a model fitted now."""
    past = simulated_past
    past = past.assign(marketplaces=[["US"], ["CA"]] * (len(past) // 2))
    model = ProductTypeModel().fit(past, campaign_vectors(embedder, past), None, kind_vectors(embedder))
    assert model.price_zones_ == {"CA": frozenset({"CA", "US"}), "US": frozenset({"CA", "US"})}
    del model.price_zones_
    old = pickle.loads(pickle.dumps(model))
    assert old.price_zones_ == {"CA": frozenset({"CA"}), "US": frozenset({"US"})}
    dear = _rupee_campaigns().nlargest(1, "price").assign(marketplaces=[["US"]])
    reason = resolve_product_types(dear, embedder, old)["product_type_reason"].iloc[0]
    assert "priced high among the products the ranker learned from sold in US" in reason, reason


def test_a_model_pickled_before_marketplaces_reads_prices_as_it_did(embedder, fitted_on_us_dollars):
    """A ranker registered before prices were read by marketplace reads them against all its past campaigns and
    all of the run's, as it did then, and its reasons name no marketplace."""
    model = copy.deepcopy(fitted_on_us_dollars)
    for name in ("price_rows_", "price_marketplaces_", "price_zones_"):
        delattr(model, name)
    old = pickle.loads(pickle.dumps(model))
    out = resolve_product_types(_rupee_campaigns(), embedder, old)
    assert (out["product_type"] == "non_standard").all()
    assert not out["product_type_reason"].str.contains("sold in").any()
    assert out["product_type_reason"].str.contains("priced high among the products the ranker learned from").any()


def test_the_ranker_reads_a_price_against_the_sellers_past_in_its_currency(embedder, simulated_past):
    """The ranker's price feature was the log of the raw price, so a seller's yen campaigns sat five units above its
    dollar ones (150 yen to the dollar) and were read as dear products. It is now the log of the price over the
    median of the past campaigns' in the campaign's price zone: the same products priced in yen in JP and in dollars
    in US read alike, and a campaign sold only in a zone the past never sold in, or in two zones, has no price level
    (missing)."""
    past = simulated_past
    past = past.assign(marketplaces=[["US"]] * len(past), price=5.0 + 45.0 * past["price"].rank(pct=True))
    in_yen = past.assign(campaign_id="jp-" + past["campaign_id"], marketplaces=[["JP"]] * len(past))
    both = pd.concat([past, in_yen.assign(price=in_yen["price"] * 150)], ignore_index=True)
    vectors = campaign_vectors(embedder, past)
    model = ProductTypeModel().fit(both, np.concatenate([vectors, vectors]), None, kind_vectors(embedder))
    assert set(model.price_zones_.values()) == {frozenset({"US"}), frozenset({"JP"})}

    new = _rupee_campaigns().iloc[:8]
    dollars = new.assign(marketplaces=[["US"]] * len(new), price=new["price"] / 83)
    yen = dollars.assign(marketplaces=[["JP"]] * len(new), price=dollars["price"] * 150)
    in_dollars, in_yen = (resolve_product_types(frame, embedder, model) for frame in (dollars, yen))
    read_in_dollars, read_in_yen = in_dollars["log_price_in_zone"].to_numpy(), in_yen["log_price_in_zone"].to_numpy()
    np.testing.assert_allclose(read_in_yen, read_in_dollars, rtol=0, atol=1e-9)
    # Alone in its batch each campaign is in the batch's main currency; beside the dollar ones, the yen ones read 150
    # times dearer, the factor slate assignment divides their sales by to add them up.
    assert (in_dollars["currency_log_scale"] == 0).all() and (in_yen["currency_log_scale"] == 0).all()
    scale = resolve_product_types(pd.concat([dollars, yen], ignore_index=True), embedder, model)["currency_log_scale"]
    np.testing.assert_allclose(scale.iloc[len(new) :].to_numpy() - scale.iloc[: len(new)].to_numpy(), np.log(150))
    assert scale.iloc[: len(new)].nunique() == 1 and scale.iloc[len(new) :].nunique() == 1
    assert np.isfinite(read_in_dollars).all()
    # Still a price: the dearer product reads higher, by its log ratio.
    order = np.argsort(dollars["price"].to_numpy())
    np.testing.assert_allclose(
        np.diff(read_in_dollars[order]), np.diff(np.log(dollars["price"].to_numpy()[order])), atol=1e-9
    )

    # Prices agreeing with neither past zone (12 to the dollar): a zone of the run's own, with no past to read in.
    apart = dollars.assign(marketplaces=[["IN"]] * len(new), price=dollars["price"] * 12)
    read_apart = resolve_product_types(apart, embedder, model)
    assert read_apart["log_price_in_zone"].isna().all()
    # Beside dollar campaigns its prices, this run's there as its product types read them, are compared category by
    # category: about 12 times dearer, another currency. Within 3 times they would read as one.
    beside = resolve_product_types(pd.concat([dollars, apart], ignore_index=True), embedder, model)
    # Other products than the past's in those categories: the ratio is estimated, near the 12 they were priced at.
    apart_scale = beside["currency_log_scale"].iloc[len(new) :]
    assert apart_scale.nunique() == 1 and abs(apart_scale.iloc[0] - np.log(12)) < np.log(1.5), apart_scale.iloc[0]
    assert (beside["currency_log_scale"].iloc[: len(new)] == 0).all()
    near = resolve_product_types(
        pd.concat([dollars, apart.assign(price=apart["price"] / 5)], ignore_index=True), embedder, model
    )
    assert (near["currency_log_scale"] == 0).all()
    # Sold in both zones, a price is in one of two currencies, which the table does not say: not read in a mix of them.
    both_zones = resolve_product_types(dollars.assign(marketplaces=[["US", "JP"]] * len(new)), embedder, model)
    assert both_zones["log_price_in_zone"].isna().all()
    # To add its sales to others' it takes the currency its price agrees with: dollar prices the dollar zone's scale,
    # yen prices the yen zone's, whichever of the two is the batch's main one.
    in_both = pd.concat([dollars, yen], ignore_index=True).assign(marketplaces=[["US", "JP"]] * (2 * len(new)))
    mixed = pd.concat([dollars, yen, in_both], ignore_index=True)
    read = resolve_product_types(mixed, embedder, model)["currency_log_scale"].to_numpy()
    np.testing.assert_array_equal(read[2 * len(new) :], read[: 2 * len(new)])
    assert read[len(new)] - read[0] == pytest.approx(np.log(150))
    # With no past at all there is nothing to read a price against either.
    assert resolve_product_types(dollars, embedder)[["log_price_in_zone", "currency_log_scale"]].isna().all().all()
