"""A second synthetic world, written to disagree with `simulation.world` wherever the contract allows.

Same tables and truth, other mechanisms, so that what only works on one generator shows:

- briefs paraphrase an interest in a brand's voice (`simulation.vocabulary_alt`); they never quote tags;
- product type follows latent price within the category and decision cost, not the product's name; the
  brief's wording leans towards the type only weakly, and each category's share of types is drawn per seed;
- creators hold continuous interest weights over themes; tags are a noisy sample of them plus generic ones;
- each creator converts differently in each category (a creator x category effect), and an audience's
  affluence decides how price hurts conversion;
- reach is Pareto-tailed, and engagement falls with size;
- past participants are those a seller invited (by followers, by its own roster, by tag match) who accepted,
  more often when the campaign was worth their while: not chosen by interest alone;
- many optional fields are missing; a share of creators never took part, and whole categories have no past
  campaign at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.contract import CASHBACK_TYPE, FUNNEL_STAGE
from simulation.vocabulary_alt import ALT_CATALOG, BRAND_VOICES, DEAL_TAGS, GENERIC_TAGS, WEAK_CUES
from simulation.world import (
    UNITS_PER_ORDER,
    World,
    eligible_truth,
    in_local_currency,
    local_currency_truth,
    realize,
    wants_local_currencies,
)

__all__ = ["AltConfig", "simulate_alt"]

TYPE_SHARE = {
    "social_creator": 0.38,
    "content_publisher": 0.1,
    "review_site": 0.16,
    "community": 0.1,
    "deals_site": 0.1,
    "coupon_site": 0.07,
    "cashback_site": 0.04,
    "loyalty_referral": 0.05,
}
PLATFORMS = {
    "awareness": ("instagram", "tiktok", "youtube", "podcast", "blog"),
    "consideration": ("website", "youtube", "blog", "facebook"),
    "conversion": ("website", "x", "facebook"),
    "retention": ("website",),
}
HOMES = {"US": 0.42, "UK": 0.14, "DE": 0.12, "CA": 0.1, "AU": 0.07, "FR": 0.06, "JP": 0.05, "ES": 0.04}
CAMPAIGN_MARKETS = ((("US",), 0.5), (("US", "CA"), 0.2), (("UK", "DE"), 0.12), (("DE",), 0.1), (("AU",), 0.08))
BRANDS = ("Orrin", "Quillby", "Marlo & Finch", "Tessaly", "Brunvik", "Holloway", "Cindra", "Pell", "Wrenfield", "Zuma")
# Conversion of each funnel stage as a function of decision cost d in [0, 1]: (at d=0, at d=1).
STAGE_CVR = {
    "awareness": (0.5, 1.6),
    "consideration": (0.8, 1.9),
    "conversion": (1.9, 0.6),
    "retention": (1.1, 0.9),
}


@dataclass(frozen=True)
class AltConfig:
    """Knobs of the second world; names shared with `SimulationConfig` mean the same thing."""

    n_creators: int = 3000
    n_campaigns: int = 400
    n_new_campaigns: int | None = None
    seed: int = 0
    as_of: dt.date = dt.date(2026, 11, 1)
    history_days: int = 540
    outcome_noise: float = 0.7
    new_creator_share: float = 0.25
    cold_categories: int = 2  # categories with campaigns to match but none in the past
    trait_sigma: float = 0.55
    category_sigma: float = 0.5  # spread of a creator's conversion from one category to another
    pareto_alpha: float = 1.15
    missing: float = 0.45  # share of each optional creator field left empty
    invites: tuple[int, int] = (25, 90)
    event_share: float = 0.2
    event_max_clicks: int = 3000
    truth_top: int = 2000
    currencies: str = "dollars"  # or "local": `simulation.world.in_local_currency`

    @property
    def new_campaigns(self) -> int:
        return self.n_new_campaigns if self.n_new_campaigns is not None else max(10, self.n_campaigns // 8)


@dataclass
class _Latent:
    """What the world knows about creators and the tables do not show."""

    themes: list[tuple[str, int]]  # (category, theme index) per column of `weight`
    weight: np.ndarray  # creators x themes, rows sum to 1 (or 0: no topical interest)
    category_effect: np.ndarray  # creators x categories
    affluence: np.ndarray
    audience: list[dict[str, float]]
    views: np.ndarray
    click_appeal: np.ndarray
    conversion_skill: np.ndarray
    activity: np.ndarray


def _creators(cfg: AltConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, _Latent]:
    n = cfg.n_creators
    categories = list(ALT_CATALOG)
    themes = [(c, t) for c in categories for t in range(len(ALT_CATALOG[c].themes))]
    types = rng.choice(list(TYPE_SHARE), size=n, p=np.array(list(TYPE_SHARE.values())))
    followers = np.minimum(np.round(4000 * (1 + rng.pareto(cfg.pareto_alpha, n))), 5e7).astype(np.int64)
    # Big accounts reach a smaller share of their followers with each post.
    view_rate = np.clip(rng.beta(2.0, 9.0, n) * (followers / 5000.0) ** -0.15, 0.005, 0.8)
    views = followers * view_rate
    click_appeal = np.exp(rng.normal(0, cfg.trait_sigma, n))
    conversion_skill = np.exp(rng.normal(0, cfg.trait_sigma, n))
    activity = np.exp(rng.normal(0, 0.4, n))
    affluence = rng.normal(0, 1, n)
    category_effect = np.exp(rng.normal(0, cfg.category_sigma, (n, len(categories))))
    weight = np.zeros((n, len(themes)))
    audience, rows = [], []
    homes = rng.choice(list(HOMES), size=n, p=np.array(list(HOMES.values())))
    for i in range(n):
        kind = str(types[i])
        stage = FUNNEL_STAGE[kind]
        broad = stage in ("conversion", "retention")
        k = int(rng.integers(4, 9)) if broad else int(rng.choice([1, 2, 2, 3, 4]))
        picked = rng.choice(len(themes), size=k, replace=False)
        weight[i, picked] = rng.dirichlet(np.full(k, 0.8))
        tags: list[str] = []
        for j in picked[np.argsort(-weight[i, picked])]:
            if rng.random() < 0.35 + weight[i, j]:  # strong interests show in the tags, weak ones may not
                category, t = themes[j]
                pool = ALT_CATALOG[category].themes[t].tags
                tags += [str(t) for t in rng.choice(pool, size=int(rng.integers(1, len(pool) + 1)), replace=False)]
        if broad:
            tags = [str(rng.choice(DEAL_TAGS[kind])), *tags[:3]]
        if not tags or rng.random() < 0.4:
            tags.append(str(rng.choice(GENERIC_TAGS)))
        tags = list(dict.fromkeys(tags))
        home = str(homes[i])
        share = rng.beta(5, 2)
        rest = [m for m in HOMES if m != home]
        spread = rng.dirichlet(np.ones(3)) * (1 - share) * rng.uniform(0.5, 1.0)
        mix = {home: round(float(share), 4)}
        for m, s in zip(rng.choice(rest, 3, replace=False), spread, strict=True):
            mix[str(m)] = round(float(s), 4)
        audience.append(mix)

        def maybe(value):
            return None if rng.random() < cfg.missing else value

        top = themes[int(np.argmax(weight[i]))]
        n_platforms = min(len(PLATFORMS[stage]), int(rng.integers(1, 3)))
        bio = maybe(f"{ALT_CATALOG[top[0]].themes[top[1]].phrases[0].capitalize()} - that's what I post about.")
        rows.append(
            {
                "creator_id": f"ac{i:06d}",
                "handle": maybe(f"@{str(rng.choice(BRANDS)).split()[0].lower()}fan{i}"),
                "creator_type": kind,
                "platforms": [str(p) for p in rng.choice(PLATFORMS[stage], size=n_platforms, replace=False)],
                "interest_tags": tags,
                "bio": bio,
                "followers": int(followers[i]),
                "avg_views": maybe(int(views[i] * np.exp(rng.normal(0, 0.4)))),
                "audience_marketplaces": maybe(mix),
                "audience_mobile_share": maybe(round(float(rng.uniform(0.3, 0.98)), 3)),
                "avg_dwell_seconds": maybe(round(float(18 * click_appeal[i] ** 0.5 * np.exp(rng.normal(0, 0.5))), 2)),
                "storefront_followers_30d": maybe(int(followers[i] * 0.005 * np.exp(rng.normal(0, 0.8)))),
                "storefront_return_rate": maybe(
                    round(float(np.clip(0.12 * conversion_skill[i] ** 0.5 * np.exp(rng.normal(0, 0.5)), 0, 1)), 4)
                ),
                "disclosure_violations": maybe(int(rng.poisson(0.08))),
                "accepts_campaigns": maybe(bool(rng.random() < 0.93)),
            }
        )
    creators = pd.DataFrame(rows)
    creators["accepts_campaigns"] = creators["accepts_campaigns"].astype(object)
    latent = _Latent(
        themes, weight, category_effect, affluence, audience, views, click_appeal, conversion_skill, activity
    )
    return creators, latent


def _campaigns(
    cfg: AltConfig, rng: np.random.Generator, count: int, past: bool, categories: list[str], lean: dict[str, float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, truth = [], []
    for k in range(count):
        category = str(rng.choice(categories))
        profile = ALT_CATALOG[category]
        theme = int(rng.integers(len(profile.themes)))
        z = rng.normal(0, 1)  # price within the category, in standard deviations
        cost = float(np.clip(rng.beta(2, 2) + 0.1 * z, 0, 1))  # decision cost: research, taste, risk
        non_standard = 0.8 * z + 2.5 * (cost - 0.5) + lean[category] + rng.normal(0, 0.4) > 0
        ptype = "non_standard" if non_standard else "standard"
        cue_kind = ptype if rng.random() < 0.3 else str(rng.choice(list(WEAK_CUES)))
        product = str(rng.choice(profile.products))
        brand = str(rng.choice(BRANDS))
        brief = str(rng.choice(BRAND_VOICES)).format(
            brand=brand,
            product=product,
            phrase=str(rng.choice(profile.themes[theme].phrases)),
            cue=str(rng.choice(WEAK_CUES[cue_kind])),
        )
        price = round(float(profile.price * np.exp(0.5 * z)), 2)
        rate = float(rng.choice([0.06, 0.1, 0.1, 0.12, 0.15, 0.15, 0.2, 0.3]))
        begin = (
            cfg.as_of - dt.timedelta(days=int(rng.integers(20, cfg.history_days)))
            if past
            else cfg.as_of + dt.timedelta(days=int(rng.integers(1, 45)))
        )
        markets = CAMPAIGN_MARKETS[rng.choice(len(CAMPAIGN_MARKETS), p=[p for _, p in CAMPAIGN_MARKETS])][0]
        campaign_id = f"{'ap' if past else 'an'}{k:05d}"
        rows.append(
            {
                "campaign_id": campaign_id,
                "brand": brand,
                "brief": brief,
                "category": category,
                "asins": ["B0" + "".join(rng.choice(list("0123456789ABCDEFGHKMNPRSTWXZ"), 8))],
                "price": price,
                "commission_rate": rate,
                "budget": round(float(price * rate * rng.uniform(30, 600)), 2),
                "start_date": begin,
                "end_date": begin + dt.timedelta(days=int(rng.integers(7, 90))),
                "marketplaces": list(markets),
                "product_type": ptype if rng.random() < 0.2 else "auto",
                "in_stock": True,
            }
        )
        truth.append(
            {
                "campaign_id": campaign_id,
                "product_type": ptype,
                "interest": " / ".join(profile.themes[theme].tags),
                "product": product,
                "theme": theme,
                "decision_cost": cost,
                "price_z": float(z),
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(truth)


def _pairs(
    campaigns: pd.DataFrame,
    campaign_truth: pd.DataFrame,
    creators: pd.DataFrame,
    latent: _Latent,
    camp_idx: np.ndarray,
    creator_idx: np.ndarray,
) -> pd.DataFrame:
    """Expected impressions, click-through, orders per click and sales of (campaign, creator) pairs."""
    c = campaigns.iloc[camp_idx].reset_index(drop=True)
    ct = campaign_truth.iloc[camp_idx].reset_index(drop=True)
    categories = list(ALT_CATALOG)
    cat = c["category"].map(categories.index).to_numpy()
    column = {key: j for j, key in enumerate(latent.themes)}
    theme_col = np.array([column[(a, int(t))] for a, t in zip(c["category"], ct["theme"], strict=True)])
    in_category = np.array([[a == name for a, _ in latent.themes] for name in categories])  # categories x themes
    theme_fit = latent.weight[creator_idx, theme_col]
    category_fit = (latent.weight[creator_idx] * in_category[cat]).sum(axis=1)
    market = np.array(
        [sum(latent.audience[i].get(m, 0.0) for m in ms) for i, ms in zip(creator_idx, c["marketplaces"], strict=True)]
    )
    stage = creators["creator_type"].iloc[creator_idx].map(FUNNEL_STAGE).to_numpy()
    cost = ct["decision_cost"].to_numpy()
    low = np.array([STAGE_CVR[s][0] for s in stage])
    high = np.array([STAGE_CVR[s][1] for s in stage])
    z = ct["price_z"].to_numpy()
    base_ctr = c["category"].map(lambda a: ALT_CATALOG[a].ctr).to_numpy()
    base_cvr = c["category"].map(lambda a: ALT_CATALOG[a].cvr).to_numpy()
    ctr = np.clip(
        base_ctr
        * latent.click_appeal[creator_idx]
        * (0.1 + 0.6 * np.sqrt(category_fit) + 1.2 * theme_fit)
        * market**0.7,
        0,
        0.35,
    )
    cvr = np.clip(
        base_cvr
        * latent.conversion_skill[creator_idx]
        * latent.category_effect[creator_idx, cat]
        * (low + (high - low) * cost)
        * np.exp((-0.35 + 0.3 * latent.affluence[creator_idx]) * z)
        * (0.3 + 0.7 * category_fit)
        * market,
        0,
        0.5,
    )
    violations = creators["disclosure_violations"].iloc[creator_idx].fillna(0).to_numpy(float)
    impressions = (
        latent.views[creator_idx]
        * latent.activity[creator_idx]
        * (c["commission_rate"].to_numpy() / 0.12) ** 0.5
        * np.where(violations > 0, 0.6, 1.0)
    )
    accepts = creators["accepts_campaigns"].iloc[creator_idx].map(lambda v: v is not False).to_numpy(bool)
    return pd.DataFrame(
        {
            "campaign_id": c["campaign_id"].to_numpy(),
            "creator_id": creators["creator_id"].iloc[creator_idx].to_numpy(),
            "expected_impressions": impressions,
            "ctr": ctr,
            "cvr": cvr,
            "expected_sales": impressions * ctr * cvr * c["price"].to_numpy() * UNITS_PER_ORDER,
            "eligible": accepts & (creators["creator_type"].iloc[creator_idx] != CASHBACK_TYPE).to_numpy(),
        }
    )


def _participants(
    cfg: AltConfig,
    rng: np.random.Generator,
    campaigns: pd.DataFrame,
    campaign_truth: pd.DataFrame,
    creators: pd.DataFrame,
    latent: _Latent,
) -> tuple[np.ndarray, np.ndarray]:
    """Who took part: invited by the seller's habits, then accepting when the campaign looked worth it."""
    n = len(creators)
    # Newcomers (a `new_creator_share` of creators) have never been part of a campaign.
    open_ = (
        creators["accepts_campaigns"].map(lambda v: v is not False).to_numpy(bool)
        & (creators["creator_type"] != CASHBACK_TYPE).to_numpy()
        & (rng.random(n) >= cfg.new_creator_share)
    )
    pool = np.flatnonzero(open_)
    log_followers = np.log1p(creators["followers"].to_numpy(float))
    rosters = {b: set(rng.choice(pool, size=min(len(pool), 40), replace=False).tolist()) for b in BRANDS}
    tag_sets = [set(t) for t in creators["interest_tags"]]
    camp_idx, creator_idx = [], []
    for k, campaign in enumerate(campaigns.itertuples(index=False)):
        category = ALT_CATALOG[campaign.category]
        words = {tag for theme in category.themes for tag in theme.tags}
        tagged = np.array([bool(tag_sets[i] & words) for i in pool])
        roster = np.array([i in rosters[campaign.brand] for i in pool])
        # The seller's hand: big accounts, its own roster, and tags it recognizes, with plenty of whim.
        pick = 0.6 * log_followers[pool] + 1.5 * roster + 1.0 * tagged + rng.gumbel(0, 1.5, len(pool))
        invited = pool[np.argsort(-pick)[: int(rng.integers(*cfg.invites))]]
        pairs = _pairs(
            campaigns,
            campaign_truth,
            creators,
            latent,
            np.full(len(invited), k),
            invited,
        )
        earning = np.log1p(pairs["expected_sales"].to_numpy() * campaign.commission_rate)
        accept = 1 / (1 + np.exp(-(earning - np.median(earning)) * 1.2 + 0.4))
        took_part = invited[rng.random(len(invited)) < accept]
        camp_idx += [k] * len(took_part)
        creator_idx += sorted(took_part.tolist())
    return np.array(camp_idx, dtype=np.int64), np.array(creator_idx, dtype=np.int64)


def simulate_alt(config: AltConfig | None = None, **overrides) -> World:
    """Generates the second world; the same config and seed give the same world (priced in local currencies as
    `simulation.world.simulate` prices the first)."""
    cfg = replace(config or AltConfig(), **overrides)
    local = wants_local_currencies(cfg.currencies)
    rng = np.random.default_rng(cfg.seed)
    creators, latent = _creators(cfg, rng)
    categories = list(ALT_CATALOG)
    lean = {c: float(rng.normal(0, 0.8)) for c in categories}  # each category's share of types, per seed
    cold = set(rng.choice(categories, size=min(cfg.cold_categories, len(categories) - 1), replace=False).tolist())
    warm = [c for c in categories if c not in cold]
    campaigns, past_truth = _campaigns(cfg, rng, cfg.n_campaigns, True, warm, lean)
    new_campaigns, new_truth = _campaigns(cfg, rng, cfg.new_campaigns, False, categories, lean)

    camp_idx, creator_idx = _participants(cfg, rng, campaigns, past_truth, creators, latent)
    pairs = _pairs(campaigns, past_truth, creators, latent, camp_idx, creator_idx)
    if local:  # after the truth, which stays in dollars; before the sales are drawn, which are the seller's
        campaigns = in_local_currency(campaigns)
    perf, touches, purchases = realize(cfg, rng, campaigns, creators, pairs, camp_idx)

    truth = eligible_truth(
        lambda camp, creator: _pairs(new_campaigns, new_truth, creators, latent, camp, creator),
        len(new_campaigns),
        len(creators),
        cfg.truth_top,
    )
    creator_truth = pd.DataFrame(
        {
            "creator_id": creators["creator_id"],
            "categories": [sorted({latent.themes[j][0] for j in np.flatnonzero(row > 0.15)}) for row in latent.weight],
            "true_views": latent.views,
            "click_appeal": latent.click_appeal,
            "conversion_skill": latent.conversion_skill,
            "activity": latent.activity,
        }
    )
    campaign_truth = pd.concat([past_truth, new_truth], ignore_index=True)[
        ["campaign_id", "product_type", "interest", "product", "decision_cost", "price_z"]
    ]
    if local:
        new_campaigns = in_local_currency(new_campaigns)
        campaign_truth = local_currency_truth(campaign_truth, pd.concat([campaigns, new_campaigns]))
    past_truth = pairs.drop(columns="eligible")
    return World(
        creators, campaigns, perf, new_campaigns, touches, purchases, truth, creator_truth, campaign_truth, past_truth
    )
