"""A synthetic world in the contract's format, with the truth that evaluation needs.

Each creator has hidden traits (click appeal, conversion skill, activity, true reach) that only past
performance reveals; observable profile fields are noisy, partly missing correlates of them. Each pair's
expected impressions, click-through and orders per click follow from category base rates (beauty about
7% CTR), topical fit, the share of the creator's audience in the campaign's marketplaces, the creator's
funnel role against the product's decision cost, price and commission.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import CASHBACK_TYPE, CONTENT_STAGES, FUNNEL_STAGE, SETTLEMENT_DAYS
from features.tables import atomic_path
from simulation.catalog import CATALOG

# Every table a world writes: the contract's tables, then the truth that evaluation needs.
WORLD_TABLES = (
    "creators",
    "campaigns",
    "performance",
    "new_campaigns",
    "touches",
    "purchases",
    "truth",
    "creator_truth",
    "campaign_truth",
    "past_truth",
)

__all__ = [
    "CURRENCIES",
    "UNITS_PER_DOLLAR",
    "WORLD_TABLES",
    "SimulationConfig",
    "World",
    "eligible_truth",
    "in_local_currency",
    "local_currency_truth",
    "pair_truth",
    "realize",
    "simulate",
    "wants_local_currencies",
    "write_table",
    "write_world",
]

TYPE_SHARE = {
    "social_creator": 0.44,
    "content_publisher": 0.12,
    "review_site": 0.12,
    "community": 0.08,
    "deals_site": 0.09,
    "coupon_site": 0.06,
    "cashback_site": 0.05,
    "loyalty_referral": 0.04,
}
PLATFORMS_BY_TYPE = {
    "social_creator": ("instagram", "youtube", "tiktok", "pinterest", "facebook", "x"),
    "content_publisher": ("blog", "podcast", "website", "youtube"),
    "review_site": ("website", "blog", "youtube"),
    "community": ("website", "facebook", "x"),
    "deals_site": ("website", "facebook", "x"),
    "coupon_site": ("website",),
    "cashback_site": ("website",),
    "loyalty_referral": ("website", "facebook"),
}
HOME_MARKETS = {
    "US": 0.5,
    "UK": 0.12,
    "DE": 0.1,
    "CA": 0.08,
    "JP": 0.06,
    "FR": 0.05,
    "IT": 0.03,
    "ES": 0.03,
    "MX": 0.02,
    "AU": 0.01,
}
CAMPAIGN_MARKETS = (
    (("US",), 0.58),
    (("US", "CA"), 0.15),
    (("UK",), 0.08),
    (("DE",), 0.07),
    (("UK", "DE", "FR"), 0.06),
    (("JP",), 0.06),
)
# Rounded rates of the contract's marketplaces' currencies (late 2026): units of each per US dollar, and the
# decimals its amounts are given in (no sen, no cents of a yen).
UNITS_PER_DOLLAR = {
    "US": 1.0,
    "CA": 1.35,
    "MX": 17.0,
    "UK": 0.79,
    "DE": 0.92,
    "FR": 0.92,
    "IT": 0.92,
    "ES": 0.92,
    "JP": 150.0,
    "AU": 1.5,
}
CURRENCY_CODES = {
    "US": "USD",
    "CA": "CAD",
    "MX": "MXN",
    "UK": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "IT": "EUR",
    "ES": "EUR",
    "JP": "JPY",
    "AU": "AUD",
}
CURRENCY_DECIMALS = {"JP": 0}
# `currencies`: "dollars" prices every marketplace alike (as every world did before the setting); "local" prices each
# campaign in its first marketplace's currency (`in_local_currency`).
CURRENCIES = ("dollars", "local")
CATEGORY_WEIGHT = {"beauty": 3.0, "fashion": 2.0, "home": 2.0, "kitchen": 1.5, "electronics": 2.0}
BROAD_TYPES = {"deals_site", "coupon_site", "cashback_site", "loyalty_referral"}
BRANDS = (
    "Lumora",
    "Kestrel & Co",
    "Nordvik",
    "Sablewood",
    "Aurelle",
    "Brightpath",
    "Tidewell",
    "Ferncliff",
    "Oakhaven",
    "Velora",
    "Peakform",
    "Hearthly",
    "Moonwake",
    "Castellan",
    "Juniper Lane",
    "Stoneleaf",
)
TEMPLATES = (
    "{brand} is launching a {product}. {benefit} We are looking for {interest} creators who can show it in "
    "real routines, with honest before and after.",
    "Promote our {product} to shoppers who care about {interest}. {benefit} Short videos and reviews welcome.",
    "New {product} from {brand}. {benefit} Ideal for {interest} audiences; several variants in the campaign.",
    "{brand} {product}: {benefit} Seeking creators and sites focused on {interest}.",
)
BENEFITS = {
    "standard": (
        "Reliable everyday value in a multipack.",
        "Simple, durable and priced to move.",
        "The basics your audience reorders every month.",
    ),
    "non_standard": (
        "Designed with care and made to be shown off.",
        "A premium pick that rewards a closer look.",
        "Distinctive design, limited colours, worth explaining.",
    ),
}


@dataclass(frozen=True)
class SimulationConfig:
    """Knobs of the synthetic world; vary them to check that quality does not hang on one generator."""

    n_creators: int = 3000
    n_campaigns: int = 400
    n_new_campaigns: int | None = None
    seed: int = 0
    as_of: dt.date = dt.date(2026, 11, 1)
    history_days: int = 540
    participants: tuple[int, int] = (12, 40)
    trait_sigma: float = 0.45
    mismatch_ctr: float = 0.2
    mismatch_cvr: float = 0.5
    subtopic_lift: float = 1.35
    content_lift_non_standard: float = 1.5
    conversion_lift_standard: float = 1.7
    event_share: float = 0.25
    outcome_noise: float = 0.5  # log-normal spread of realized impressions around their expectation
    new_creator_share: float = 0.0  # share of creators who never took part in a past campaign
    event_max_clicks: int = 3000
    truth_top: int = 2000
    currencies: str = "dollars"  # or "local": `in_local_currency`
    stage_ctr: dict[str, float] = field(
        default_factory=lambda: {
            "social_creator": 1.0,
            "content_publisher": 0.8,
            "review_site": 1.1,
            "community": 0.9,
            "deals_site": 1.2,
            "coupon_site": 1.3,
            "cashback_site": 1.3,
            "loyalty_referral": 0.7,
        }
    )

    @property
    def new_campaigns(self) -> int:
        return self.n_new_campaigns if self.n_new_campaigns is not None else max(10, self.n_campaigns // 8)


@dataclass
class World:
    """The generated tables, each a DataFrame in the contract's columns.

    The truth tables' `expected_sales` are in US dollars in every world, so evaluation adds them across campaigns in
    one currency; with `currencies="local"` the contract's tables hold each campaign's own currency, and
    `campaign_truth` says which (`currency`, `units_per_dollar`).
    """

    creators: pd.DataFrame
    campaigns: pd.DataFrame
    performance: pd.DataFrame
    new_campaigns: pd.DataFrame
    touches: pd.DataFrame
    purchases: pd.DataFrame
    truth: pd.DataFrame  # (new campaign, creator): expected impressions, ctr, cvr, expected sales
    creator_truth: pd.DataFrame
    campaign_truth: pd.DataFrame
    past_truth: pd.DataFrame  # (past campaign, participant): the expectations its performance row was drawn from


def _creators(cfg: SimulationConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = cfg.n_creators
    categories = list(CATALOG)
    types = rng.choice(list(TYPE_SHARE), size=n, p=np.array(list(TYPE_SHARE.values())))
    homes = rng.choice(list(HOME_MARKETS), size=n, p=np.array(list(HOME_MARKETS.values())))
    followers = np.round(np.exp(rng.normal(np.log(20_000), 1.4, n))).astype(np.int64)
    view_rate = np.clip(rng.beta(2.0, 12.0, n), 0.01, 0.6)
    click_appeal = np.exp(rng.normal(0.0, cfg.trait_sigma, n))
    conversion_skill = np.exp(rng.normal(0.0, cfg.trait_sigma, n))
    activity = np.exp(rng.normal(0.0, 0.3, n))
    violations = np.where(rng.random(n) < 0.06, rng.poisson(1.0, n) + 1, 0)
    rows, truth = [], []
    for i in range(n):
        kind = str(types[i])
        broad = kind in BROAD_TYPES
        picked = rng.choice(
            categories,
            size=int(rng.integers(3, 7)) if broad else int(rng.choice([1, 1, 1, 2])),
            replace=False,
        )
        tags: list[str] = []
        for category in picked:
            pool = CATALOG[category].interests
            tags += list(rng.choice(pool, size=min(len(pool), 1 if broad else int(rng.integers(2, 4))), replace=False))
        if broad:
            tags = [
                {
                    "deals_site": "deals",
                    "coupon_site": "coupons",
                    "cashback_site": "cashback",
                    "loyalty_referral": "rewards",
                }[kind],
                *tags,
            ]
        if rng.random() < 0.25:  # a stray interest: profiles are never perfectly clean
            tags.append(str(rng.choice(CATALOG[str(rng.choice(categories))].interests)))
        tags = list(dict.fromkeys(tags))
        home = str(homes[i])
        share_home = rng.uniform(0.45, 0.95)
        others = rng.choice([m for m in HOME_MARKETS if m != home], size=2, replace=False)
        split = rng.dirichlet([1.0, 1.0]) * (1 - share_home) * rng.uniform(0.6, 1.0)
        audience = {
            home: round(float(share_home), 4),
            str(others[0]): round(float(split[0]), 4),
            str(others[1]): round(float(split[1]), 4),
        }
        platforms = PLATFORMS_BY_TYPE[kind]
        chosen_platforms = list(
            rng.choice(platforms, size=int(rng.integers(1, min(3, len(platforms)) + 1)), replace=False)
        )
        true_views = followers[i] * view_rate[i]
        observed = lambda value, p=0.8: value if rng.random() < p else None  # noqa: E731
        bio = (
            (
                f"{kind.replace('_', ' ').capitalize()} sharing {' and '.join(tags[:2])} "
                f"with an audience mostly in {home}."
            )
            if rng.random() < 0.85
            else None
        )
        rows.append(
            {
                "creator_id": f"cr{i:06d}",
                "handle": f"@creator{i}",
                "creator_type": kind,
                "platforms": chosen_platforms,
                "interest_tags": tags,
                "bio": bio,
                "followers": int(followers[i]),
                "avg_views": observed(int(true_views * np.exp(rng.normal(0, 0.25)))),
                "audience_marketplaces": observed(audience, 0.9),
                "audience_mobile_share": observed(round(float(rng.uniform(0.45, 0.95)), 3)),
                "avg_dwell_seconds": observed(
                    round(float(25 * click_appeal[i] ** 0.8 * np.exp(rng.normal(0, 0.3))), 2)
                ),
                "storefront_followers_30d": observed(
                    int(followers[i] * 0.01 * click_appeal[i] * np.exp(rng.normal(0, 0.5)))
                ),
                "storefront_return_rate": observed(
                    round(
                        float(np.clip(0.15 * conversion_skill[i] ** 0.8 * np.exp(rng.normal(0, 0.3)), 0, 1)),
                        4,
                    )
                ),
                "disclosure_violations": int(violations[i]),
                "accepts_campaigns": bool(rng.random() < 0.95),
            }
        )
        truth.append(
            {
                "creator_id": f"cr{i:06d}",
                "categories": [str(c) for c in picked],
                "audience": audience,
                "true_views": float(true_views),
                "click_appeal": float(click_appeal[i]),
                "conversion_skill": float(conversion_skill[i]),
                "activity": float(activity[i]),
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(truth)


def _campaigns(
    cfg: SimulationConfig, rng: np.random.Generator, count: int, start: int, past: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    categories = list(CATALOG)
    weights = np.array([CATEGORY_WEIGHT.get(c, 1.0) for c in categories])
    rows, truth = [], []
    for k in range(count):
        category = str(rng.choice(categories, p=weights / weights.sum()))
        profile = CATALOG[category]
        ptype = "non_standard" if rng.random() < profile.non_standard_share else "standard"
        product = str(rng.choice(profile.non_standard if ptype == "non_standard" else profile.standard))
        interest = str(rng.choice(profile.interests))
        brand = str(rng.choice(BRANDS))
        brief = str(rng.choice(TEMPLATES)).format(
            brand=brand, product=product, interest=interest, benefit=str(rng.choice(BENEFITS[ptype]))
        )
        median = profile.price[1 if ptype == "non_standard" else 0]
        price = round(float(median * np.exp(rng.normal(0, 0.35))), 2)
        rate = float(rng.choice([0.05, 0.08, 0.10, 0.12, 0.15, 0.15, 0.18, 0.20, 0.20, 0.25]))
        if past:
            begin = cfg.as_of - dt.timedelta(days=int(rng.integers(20, cfg.history_days)))
        else:
            begin = cfg.as_of + dt.timedelta(days=int(rng.integers(1, 30)))
        end = begin + dt.timedelta(days=int(rng.integers(14, 61)))
        markets = CAMPAIGN_MARKETS[rng.choice(len(CAMPAIGN_MARKETS), p=[p for _, p in CAMPAIGN_MARKETS])][0]
        asins = [
            "B0" + "".join(rng.choice(list("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), 8))
            for _ in range(int(rng.integers(1, 25)))
        ]
        campaign_id = f"{'cp' if past else 'nc'}{start + k:05d}"
        rows.append(
            {
                "campaign_id": campaign_id,
                "brand": brand,
                "brief": brief,
                "category": category,
                "asins": asins,
                "price": price,
                "commission_rate": rate,
                "budget": round(float(price * rate * rng.uniform(40, 400)), 2),
                "start_date": begin,
                "end_date": end,
                "marketplaces": list(markets),
                "product_type": ptype if rng.random() < 0.3 else "auto",
                "in_stock": bool(rng.random() < 0.97),
            }
        )
        truth.append({"campaign_id": campaign_id, "product_type": ptype, "interest": interest, "product": product})
    return pd.DataFrame(rows), pd.DataFrame(truth)


def pair_truth(
    cfg: SimulationConfig,
    campaigns: pd.DataFrame,
    campaign_truth: pd.DataFrame,
    creators: pd.DataFrame,
    creator_truth: pd.DataFrame,
    camp_idx: np.ndarray,
    creator_idx: np.ndarray,
) -> pd.DataFrame:
    """Expected impressions, click-through, orders per click and sales of (campaign, creator) pairs."""
    c = campaigns.iloc[camp_idx].reset_index(drop=True)
    ct = campaign_truth.iloc[camp_idx].reset_index(drop=True)
    r = creators.iloc[creator_idx].reset_index(drop=True)
    rt = creator_truth.iloc[creator_idx].reset_index(drop=True)
    base_ctr = c["category"].map(lambda x: CATALOG[x].ctr).to_numpy()
    base_cvr = c["category"].map(lambda x: CATALOG[x].cvr).to_numpy()
    fits = np.array([cat in cats for cat, cats in zip(c["category"], rt["categories"], strict=True)])
    subtopic = np.array([i in tags for i, tags in zip(ct["interest"], r["interest_tags"], strict=True)])
    market = np.array(
        [sum(aud.get(m, 0.0) for m in ms) for aud, ms in zip(rt["audience"], c["marketplaces"], strict=True)]
    )
    non_standard = (ct["product_type"] == "non_standard").to_numpy()
    stage = r["creator_type"].map(FUNNEL_STAGE).to_numpy()
    content = np.isin(stage, CONTENT_STAGES)
    conversion = stage == "conversion"
    stage_cvr = np.where(
        non_standard,
        np.where(content, cfg.content_lift_non_standard, 0.75),
        np.where(conversion, cfg.conversion_lift_standard, np.where(content, 0.65, 1.0)),
    )
    fit_ctr = np.where(fits, np.where(subtopic, cfg.subtopic_lift, 1.0), cfg.mismatch_ctr)
    fit_cvr = np.where(fits, 1.0, cfg.mismatch_cvr)
    rate = c["commission_rate"].to_numpy()
    price = c["price"].to_numpy()
    ctr = np.clip(
        base_ctr
        * rt["click_appeal"].to_numpy()
        * fit_ctr
        * r["creator_type"].map(cfg.stage_ctr).to_numpy()
        * (0.25 + 0.75 * market),
        0,
        0.4,
    )
    cvr = np.clip(
        base_cvr
        * rt["conversion_skill"].to_numpy()
        * stage_cvr
        * fit_cvr
        * (price / 25.0) ** -0.25
        * (0.1 + 0.9 * market),
        0,
        0.5,
    )
    impressions = (
        rt["true_views"].to_numpy()
        * rt["activity"].to_numpy()
        * (rate / 0.15) ** 0.3
        * np.where(r["disclosure_violations"].to_numpy() > 0, 0.5, 1.0)
    )
    return pd.DataFrame(
        {
            "campaign_id": c["campaign_id"].to_numpy(),
            "creator_id": r["creator_id"].to_numpy(),
            "expected_impressions": impressions,
            "ctr": ctr,
            "cvr": cvr,
            "expected_sales": impressions * ctr * cvr * price * UNITS_PER_ORDER,
            "eligible": (r["accepts_campaigns"].to_numpy() & (r["creator_type"] != CASHBACK_TYPE).to_numpy()),
        }
    )


UNITS_PER_ORDER = 1.15


def _participants(
    cfg: SimulationConfig,
    rng: np.random.Generator,
    campaigns: pd.DataFrame,
    creators: pd.DataFrame,
    creator_truth: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray]:
    eligible = np.flatnonzero(
        creators["accepts_campaigns"].to_numpy() & (creators["creator_type"] != CASHBACK_TYPE).to_numpy()
    )
    if cfg.new_creator_share > 0:  # newcomers: no past campaign, so no record to learn from
        eligible = eligible[rng.random(len(eligible)) >= cfg.new_creator_share]
    by_category = {
        cat: eligible[[cat in cats for cats in creator_truth["categories"].iloc[eligible]]] for cat in CATALOG
    }
    camp_idx, creator_idx = [], []
    for k, category in enumerate(campaigns["category"]):
        size = int(rng.integers(*cfg.participants))
        topical = by_category[category]
        n_topical = min(len(topical), round(size * 0.55))
        chosen = set(rng.choice(topical, size=n_topical, replace=False).tolist()) if n_topical else set()
        chosen |= set(rng.choice(eligible, size=min(len(eligible), size - n_topical), replace=False).tolist())
        camp_idx += [k] * len(chosen)
        creator_idx += sorted(chosen)
    return np.array(camp_idx, dtype=np.int64), np.array(creator_idx, dtype=np.int64)


def _events(
    cfg: SimulationConfig,
    rng: np.random.Generator,
    campaigns: pd.DataFrame,
    perf: pd.DataFrame,
    stage: pd.Series,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Touches and purchases for a share of settled campaigns; their performance rows become last-click 24h."""
    settled = perf["status"] == "settled"
    # Event logs are kept for modest campaigns only: one touch per click keeps large worlds cheap.
    clicks = perf[settled].groupby("campaign_id")["clicks"].sum()
    small = campaigns["campaign_id"].map(clicks).fillna(0).le(cfg.event_max_clicks).to_numpy()
    chosen = campaigns["campaign_id"][(rng.random(len(campaigns)) < cfg.event_share) & small]
    touches, purchases = [], []
    starts = campaigns.set_index("campaign_id")["start_date"]
    prices = campaigns.set_index("campaign_id")["price"]
    for campaign_id in chosen:
        rows = perf[(perf["campaign_id"] == campaign_id) & settled]
        if rows.empty:
            continue
        start = pd.Timestamp(starts[campaign_id])
        closers = rows["creator_id"][rows["creator_id"].map(stage).eq("conversion")].tolist()
        for creator_id, clicks, orders in rows[["creator_id", "clicks", "orders"]].itertuples(index=False):
            for n in range(int(clicks)):
                shopper = f"sh-{campaign_id}-{creator_id}-{n}"
                first = start + pd.Timedelta(hours=float(rng.uniform(0, 24 * 14)))
                touches.append((shopper, campaign_id, creator_id, first))
                last = first
                if closers and stage[creator_id] != "conversion" and rng.random() < 0.35:
                    last = first + pd.Timedelta(hours=float(rng.uniform(0.5, 20)))
                    touches.append((shopper, campaign_id, str(rng.choice(closers)), last))
                if n < orders:
                    # Most buy within a day of the last click; some later, seen only by longer windows.
                    delay = rng.uniform(0.1, 23.5) if rng.random() < 0.8 else rng.uniform(25, 24 * 13)
                    units = 1 + int(rng.poisson(UNITS_PER_ORDER - 1))
                    sales = round(float(units * prices[campaign_id] * rng.uniform(0.95, 1.05)), 2)
                    purchases.append((shopper, campaign_id, last + pd.Timedelta(hours=float(delay)), sales, units))
    touch_frame = pd.DataFrame(touches, columns=["shopper_id", "campaign_id", "creator_id", "ts"])
    purchase_frame = pd.DataFrame(purchases, columns=["shopper_id", "campaign_id", "ts", "sales", "units"])
    if len(touch_frame):
        # The dashboard counts every click, so a closing click on a deals site is that site's click too.
        in_events = perf["campaign_id"].isin(set(touch_frame["campaign_id"])) & settled
        keys = pd.MultiIndex.from_frame(perf.loc[in_events, ["campaign_id", "creator_id"]])
        touched = touch_frame.groupby(["campaign_id", "creator_id"]).size().reindex(keys).fillna(0).to_numpy()
        perf.loc[in_events, "clicks"] = touched.astype(np.int64)
        perf.loc[in_events, "impressions"] = np.maximum(perf.loc[in_events, "impressions"].to_numpy(), touched).astype(
            np.int64
        )
    if len(purchase_frame):
        # The dashboard's view of these campaigns: last click within 24 hours.
        last_touch = touch_frame.sort_values("ts").groupby("shopper_id").tail(1).set_index("shopper_id")
        joined = purchase_frame.join(last_touch[["creator_id", "ts"]], on="shopper_id", suffixes=("", "_touch"))
        joined = joined[(joined["ts"] - joined["ts_touch"]) <= pd.Timedelta(hours=24)]
        credited = joined.groupby(["campaign_id", "creator_id"]).agg(
            orders=("sales", "size"), units=("units", "sum"), sales=("sales", "sum")
        )
        in_events = perf["campaign_id"].isin(set(touch_frame["campaign_id"])) & settled
        keys = pd.MultiIndex.from_frame(perf.loc[in_events, ["campaign_id", "creator_id"]])
        credit = credited.reindex(keys).fillna(0)
        perf.loc[in_events, "orders"] = credit["orders"].to_numpy().astype(np.int64)
        perf.loc[in_events, "units"] = credit["units"].to_numpy().astype(np.int64)
        perf.loc[in_events, "sales"] = credit["sales"].to_numpy().round(2)
    return perf, touch_frame, purchase_frame


def simulate(config: SimulationConfig | None = None, **overrides) -> World:
    """Generates a world; the same config and seed give the same world.

    With `currencies="local"` the same world (the same draws, the same truth in dollars) is priced in each campaign's
    currency (`in_local_currency`).
    """
    cfg = replace(config or SimulationConfig(), **overrides)
    local = wants_local_currencies(cfg.currencies)
    rng = np.random.default_rng(cfg.seed)
    creators, creator_truth = _creators(cfg, rng)
    campaigns, past_truth = _campaigns(cfg, rng, cfg.n_campaigns, 0, past=True)
    new_campaigns, new_truth = _campaigns(cfg, rng, cfg.new_campaigns, 0, past=False)
    campaign_truth = pd.concat([past_truth, new_truth], ignore_index=True)

    camp_idx, creator_idx = _participants(cfg, rng, campaigns, creators, creator_truth)
    pairs = pair_truth(cfg, campaigns, past_truth, creators, creator_truth, camp_idx, creator_idx)
    if local:  # after the truth, which stays in dollars; before the sales are drawn, which are the seller's
        campaigns = in_local_currency(campaigns)
    perf, touches, purchases = realize(cfg, rng, campaigns, creators, pairs, camp_idx)

    truth = eligible_truth(
        lambda camp, creator: pair_truth(cfg, new_campaigns, new_truth, creators, creator_truth, camp, creator),
        len(new_campaigns),
        len(creators),
        cfg.truth_top,
    )
    if local:
        new_campaigns = in_local_currency(new_campaigns)
        campaign_truth = local_currency_truth(campaign_truth, pd.concat([campaigns, new_campaigns]))
    return World(
        creators,
        campaigns,
        perf,
        new_campaigns,
        touches,
        purchases,
        truth,
        creator_truth.drop(columns="audience"),
        campaign_truth,
        pairs.drop(columns="eligible"),
    )


def wants_local_currencies(currencies: str) -> bool:
    """Whether a world's `currencies` setting asks for local currencies; an unknown one is refused, named."""
    if currencies not in CURRENCIES:
        raise ValueError(f"Got currencies={currencies!r}; expected one of {', '.join(CURRENCIES)}")
    return currencies == "local"


def _first_marketplace(campaigns: pd.DataFrame) -> pd.Series:
    """Each campaign's first marketplace, whose currency prices it; one the rates do not hold is refused, named."""
    first = campaigns["marketplaces"].map(lambda codes: str(codes[0]))
    if unknown := sorted(set(first) - set(UNITS_PER_DOLLAR)):
        raise ValueError(f"Got marketplace {unknown[0]}; expected one of {' '.join(UNITS_PER_DOLLAR)} to price in")
    return first


def in_local_currency(campaigns: pd.DataFrame) -> pd.DataFrame:
    """`campaigns` with price and budget in their first marketplace's currency, from dollars (`UNITS_PER_DOLLAR`).

    The contract prices a campaign in its marketplaces' currency and names none: a campaign sold in several (US and
    CA; UK, DE and FR) is taken as priced in its first, as a seller running one price list would hold it. Sales,
    commission and purchases follow from the price where `realize` draws them.
    """
    first = _first_marketplace(campaigns)
    rate = first.map(UNITS_PER_DOLLAR).to_numpy(float)
    decimals = first.map(lambda code: CURRENCY_DECIMALS.get(code, 2)).to_numpy()
    priced = campaigns.copy()
    for column in ("price", "budget"):
        amounts = campaigns[column].to_numpy(float) * rate
        # At least one smallest unit: the contract wants a price above 0.
        priced[column] = [max(round(float(a), int(d)), 10.0 ** -int(d)) for a, d in zip(amounts, decimals, strict=True)]
    return priced


def local_currency_truth(campaign_truth: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """`campaign_truth` with each campaign's `currency` (ISO code) and `units_per_dollar`, to bring the sales of
    a world priced `in_local_currency` to the truth's dollars (sales / units_per_dollar)."""
    first = _first_marketplace(campaigns).set_axis(campaigns["campaign_id"].to_numpy())
    codes = first.reindex(campaign_truth["campaign_id"].to_numpy()).to_numpy()
    return campaign_truth.assign(
        currency=[CURRENCY_CODES[code] for code in codes],
        units_per_dollar=[UNITS_PER_DOLLAR[code] for code in codes],
    )


def realize(
    cfg: SimulationConfig,
    rng: np.random.Generator,
    campaigns: pd.DataFrame,
    creators: pd.DataFrame,
    pairs: pd.DataFrame,
    camp_idx: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Draws the performance rows (and event logs) of the pairs that took part from their expected figures.

    Args:
        cfg: needs `outcome_noise`, `as_of`, `event_share`, `event_max_clicks`.
        pairs: pair_truth-like rows (campaign_id, creator_id, expected_impressions, ctr, cvr), row k of
            campaign `camp_idx[k]`.

    Returns:
        performance, touches, purchases.
    """
    noise = np.exp(rng.normal(0, cfg.outcome_noise, len(pairs)))
    impressions = rng.poisson(pairs["expected_impressions"].to_numpy() * noise)
    clicks = rng.binomial(impressions, pairs["ctr"].to_numpy())
    orders = rng.binomial(clicks, pairs["cvr"].to_numpy())
    units = orders + rng.poisson((UNITS_PER_ORDER - 1) * orders)
    price = campaigns["price"].to_numpy()[camp_idx]
    rate = campaigns["commission_rate"].to_numpy()[camp_idx]
    sales = np.round(units * price * rng.uniform(0.95, 1.05, len(pairs)), 2)
    settle = pd.to_datetime(campaigns["end_date"]).to_numpy()[camp_idx] + np.timedelta64(SETTLEMENT_DAYS, "D")
    perf = pd.DataFrame(
        {
            "campaign_id": pairs["campaign_id"].to_numpy(),
            "creator_id": pairs["creator_id"].to_numpy(),
            "impressions": impressions,
            "clicks": clicks,
            "orders": orders,
            "units": units,
            "sales": sales,
            "status": np.where(settle <= np.datetime64(cfg.as_of), "settled", "pending"),
        }
    )
    stage = creators.set_index("creator_id")["creator_type"].map(FUNNEL_STAGE)
    perf, touches, purchases = _events(cfg, rng, campaigns, perf, stage)
    perf["commission"] = (perf["sales"] * rate).round(2)
    return perf, touches, purchases


def eligible_truth(
    pairs: Callable[[np.ndarray, np.ndarray], pd.DataFrame], n_campaigns: int, n_creators: int, top: int
) -> pd.DataFrame:
    """Truth for the campaigns to be matched: every eligible creator, or the best `top` per campaign.

    Args:
        pairs: the world's pair truth for (campaign rows, creator rows), with an `eligible` column.
    """
    truth = pairs(np.repeat(np.arange(n_campaigns), n_creators), np.tile(np.arange(n_creators), n_campaigns))
    truth = truth[truth["eligible"]].drop(columns="eligible")
    if n_creators > top:
        truth = truth.sort_values("expected_sales", ascending=False).groupby("campaign_id").head(top)
    return truth.sort_values(["campaign_id", "expected_sales"], ascending=[True, False]).reset_index(drop=True)


PARQUET_TYPES = {
    "platforms": pa.list_(pa.string()),
    "interest_tags": pa.list_(pa.string()),
    "asins": pa.list_(pa.string()),
    "marketplaces": pa.list_(pa.string()),
    "categories": pa.list_(pa.string()),
    "audience_marketplaces": pa.map_(pa.string(), pa.float64()),
    "start_date": pa.date32(),
    "end_date": pa.date32(),
    # Counts the contract types as integers, which pandas holds as floats once a value is missing.
    "avg_views": pa.int64(),
    "storefront_followers_30d": pa.int64(),
    "disclosure_violations": pa.int64(),
}


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    arrays, names = [], []
    for name in frame.columns:
        values = frame[name].tolist()
        kind = PARQUET_TYPES.get(name)
        if name == "audience_marketplaces":
            values = [None if v is None else list(v.items()) for v in values]
        elif kind == pa.int64():
            # pd.isna: a nullable Int64 column holds pd.NA, whose `v != v` is NA again and has no truth value.
            values = [None if pd.isna(v) else int(v) for v in values]
        arrays.append(pa.array(values, type=kind) if kind else pa.array(frame[name]))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Writes one table as Parquet in the contract's types (lists, maps, dates), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        pq.write_table(_to_arrow(frame), tmp)
    return path


def write_world(world: World, out: str | Path) -> dict[str, Path]:
    """Writes every table of the world as Parquet into `out`; returns the paths by table name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return {name: write_table(getattr(world, name), out / f"{name}.parquet") for name in WORLD_TABLES}
