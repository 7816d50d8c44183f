"""Slate building: how many creators each campaign gets, and which, across a whole batch run.

Sizes come first, per campaign, from the policy: the product type's size, cut where the campaign's own best
candidates' expected commission would pass the budget, never below the minimum. Then one assignment over the
whole batch picks the members (`matcher.assignment`: exact, the default; `matcher.greedy`: one best-first pass,
kept for comparison), and each campaign gets a sentence on its slate's size and mix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.duplicate_evidence import DuplicateEvidence
from features.product_type import UNCERTAIN
from matcher.assignment import assign_exact, best_assignment
from matcher.greedy import assign_greedy
from matcher.programme import FLOOR_PRICE
from matcher.settings import ASSIGNMENTS, SlatePolicy
from matcher.slate_book import FUNNEL, SlateBook, campaign_order, campaign_scales

__all__ = [
    "ASSIGNMENTS",
    "SlatePolicy",
    "best_assignment",
    "build_slates",
    "default_slates",
    "objective",
    "plan_sizes",
]


def _size_uncertain_types(plan: dict[str, np.ndarray], probability: np.ndarray, policy: SlatePolicy) -> None:
    """Campaigns whose product type is uncertain (features.product_type.UNCERTAIN) are sized between the two
    kinds, in proportion to the probability of non-standard (`plan`'s columns, by campaign, changed in place;
    `uncertain` holds that probability for them, so that their summary can say why)."""
    p = np.asarray(probability, dtype=float)
    between = (p >= UNCERTAIN[0]) & (p <= UNCERTAIN[1])
    plan["uncertain"] = np.where(between, p, np.nan)
    for column, low, high in (
        ("limit", policy.standard_size, policy.non_standard_size),
        ("minimum", policy.min_size, policy.min_non_standard_size),
    ):
        plan[column] = np.where(between, np.rint(low + p * (high - low)), plan[column]).astype(np.int64)


def _first_valid(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each group's first value that is not missing (missing if none), for contiguous groups from `starts`."""
    at = np.where(pd.notna(values), np.arange(len(values)), len(values))
    first = np.minimum.reduceat(at, starts)
    found = first < len(values)
    out = pd.Series(values).iloc[np.where(found, first, 0)].to_numpy()
    return np.where(found, out, np.nan) if not found.all() else out


def plan_sizes(scored: pd.DataFrame, policy: SlatePolicy) -> pd.DataFrame:
    """Per campaign, what the policy allows before any creator is placed.

    Returns:
        Indexed by campaign_id: `standard`, `limit` (the product type's size), `minimum`, `uncertain` (the
        probability of non-standard where the type is uncertain and the slate sized between the two kinds, else
        NaN), `budget` (with the
        tolerated overrun), `unproven` (most creators without a record; the limit where there are enough
        comparable proven ones), `target` (the slate size: the limit, cut by the budget on the campaign's own
        best candidates, never below the minimum nor above what is eligible), `floor` (the fewest members the
        slate should have when capacity is scarce: the minimum, or the target if smaller), `budget_bound`,
        `worth_bound` (the target was cut by `min_member_value`), `best` score.
    """
    return _plan_in_order(scored.iloc[campaign_order(scored)], policy)


def _plan_in_order(s: pd.DataFrame, policy: SlatePolicy) -> pd.DataFrame:
    """`plan_sizes` of scored pairs already in the canonical order (`campaign_order`)."""
    # Per-group arithmetic on the canonical order, where each campaign's rows are contiguous and best first:
    # pandas' grouped operations cost about a millisecond each on a service's few hundred rows, numpy's little.
    code, ids = pd.factorize(s["campaign_id"], sort=True)
    n_rows, n_campaigns = len(s), len(ids)
    starts = np.flatnonzero(np.diff(code, prepend=-1))
    n = np.diff(np.append(starts, n_rows))
    position = np.arange(n_rows) - starts[code]
    score = s["score"].to_numpy(float)
    proven = s["hist_campaigns"].to_numpy(float) > 0
    # The plan's columns by campaign, made a frame once at the end: a column set on a frame costs ~0.3 ms.
    plan: dict[str, np.ndarray] = {}
    standard = _first_valid(s["product_type"].to_numpy(), starts) != "non_standard"
    plan["standard"] = standard
    plan["limit"] = np.where(standard, policy.standard_size, policy.non_standard_size)
    plan["minimum"] = np.where(standard, policy.min_size, policy.min_non_standard_size)
    plan["uncertain"] = np.full(n_campaigns, np.nan)
    if "product_type_probability" in s.columns:
        _size_uncertain_types(plan, _first_valid(s["product_type_probability"].to_numpy(float), starts), policy)
    # A budget the overrun takes past the largest float is no limit: infinite (no budget row), not numpy's warning.
    with np.errstate(over="ignore"):
        budget = _first_valid(s["budget"].to_numpy(float), starts).astype(float) * (1 + policy.budget_overrun)
    plan["budget"] = budget
    plan["best"] = np.fmax.reduceat(score, starts)
    limit = plan["limit"]
    # The score the slate's last place would have with no unproven limit: what "comparable" is measured against.
    last = np.minimum(limit, n) - 1
    at_last = position == last[code]
    reference = np.full(n_campaigns, np.nan)
    reference[code[at_last]] = score[at_last]
    comparable = proven & (score >= policy.comparable_value * reference[code])
    n_comparable = np.bincount(code[comparable], minlength=n_campaigns)
    unproven = np.maximum(policy.max_unproven_standard, limit - n_comparable)
    plan["unproven"] = np.where(standard, unproven, np.iinfo(np.int64).max)
    # Walk each campaign's best candidates that the unproven limit lets in, adding up their expected commission.
    fresh = (~proven).astype(np.int64)
    running = np.cumsum(fresh)
    unproven_rank = running - (running - fresh)[starts][code]
    unproven_rank -= fresh
    allowed = proven | (unproven_rank < plan["unproven"][code])
    cost = np.where(allowed, s["expected_commission"].to_numpy(float) * policy.participation_rate, 0.0)
    # pandas' grouped sum is compensated (Kahan): kept, so a budget is crossed at exactly the same candidate.
    spent = pd.Series(cost).groupby(code).cumsum().to_numpy()
    within = allowed & (spent <= budget[code])
    available = np.bincount(code[allowed], minlength=n_campaigns)
    # The walk stops at the first candidate past the budget: cheaper, weaker ones after it do not sneak in.
    past = allowed & ~within
    first_past = np.minimum.reduceat(np.where(past, position, np.iinfo(np.int64).max), starts)
    affordable = np.bincount(code[allowed & (position < first_past[code])], minlength=n_campaigns)
    cap = np.minimum(limit, available)
    # Places past the minimum go only to candidates worth `min_member_value` of the best: each campaign's are the
    # first of its allowed ones (best first), and the minimum is kept from the others if they are too few.
    worthy = allowed & (score >= policy.min_member_value * plan["best"][code])
    worth_cap = np.maximum(np.bincount(code[worthy], minlength=n_campaigns), np.minimum(plan["minimum"], available))
    sized = np.minimum(cap, np.maximum(plan["minimum"], affordable))
    plan["target"] = np.minimum(sized, worth_cap)
    plan["floor"] = np.minimum(plan["minimum"], plan["target"])
    plan["budget_bound"] = affordable < cap
    plan["worth_bound"] = plan["target"] < sized
    return pd.DataFrame(plan, index=pd.Index(ids, name="campaign_id"))


def build_slates(
    scored: pd.DataFrame, policy: SlatePolicy, evidence: DuplicateEvidence | np.ndarray
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Picks every campaign's slate from the batch's scored candidates, all campaigns at once.

    Args:
        scored: one row per eligible candidate pair: campaign_id, creator_id, creator_row (row in `evidence`),
            score, expected_commission, product_type, budget, funnel_stage, hist_campaigns.
        policy: the sizing and composition rules, and which assignment to run.
        evidence: what the near-duplicate rule compares, by creator_row: profile vectors and which creators hold
            a bio (`Matcher.duplicate_evidence`); bare vectors are compared all (`DuplicateEvidence.of_vectors`).

    Returns:
        The chosen rows ranked 1..k per campaign by score, and per campaign a sentence on its size and mix (for a
        campaign with no member, only when capacity placed its candidates on other campaigns of the run).
    """
    # One canonical row order, whatever the input's: the solver then settles ties the same way every run. Rows
    # already in it are not copied: at a million creators the batch's copy is a quarter of a gigabyte.
    order = campaign_order(scored)
    order = order[scored["score"].to_numpy(float)[order] > 0]
    if len(order) < len(scored) or (order != np.arange(len(order))).any():
        scored = scored.iloc[order]
    scored = scored.reset_index(drop=True)
    if scored.empty:
        return scored.assign(rank=pd.Series(dtype="int64")), {}
    plan = _plan_in_order(scored, policy)
    if not isinstance(evidence, DuplicateEvidence):
        evidence = DuplicateEvidence.of_vectors(evidence)
    slates = SlateBook(scored, policy, evidence, plan)
    if policy.assignment == "greedy":
        assign_greedy(scored, slates)
    else:
        assign_exact(scored, slates, plan)
        _top_up(scored, slates)
    _count_taken(scored, slates, plan["target"].to_numpy())
    stage = scored["funnel_stage"].to_numpy()
    # `scored` is in the canonical order (campaign, then best score, then creator_id): its chosen rows in row
    # order are each campaign's members best first, contiguous, and rank counts within each run of a campaign.
    chosen_rows = np.sort(np.array([i for members in slates.members.values() for i in members], dtype=np.int64))
    chosen = scored.iloc[chosen_rows].reset_index(drop=True)
    campaign = chosen["campaign_id"].to_numpy()
    first = np.ones(len(campaign), dtype=bool)
    first[1:] = campaign[1:] != campaign[:-1]
    chosen["rank"] = np.arange(len(campaign), dtype=np.int64) - np.flatnonzero(first)[np.cumsum(first) - 1] + 1
    # An empty slate has a sentence only when capacity emptied it: any other campaign with no member is a summary's
    # "no eligible creator", which needs none.
    added = slates.added
    why = {c: _why(c, slates, added.get(c, []), stage) for c, m in slates.members.items() if m or slates.taken[c][0]}
    return chosen, why


def _count_taken(scored: pd.DataFrame, slates: SlateBook, target: np.ndarray) -> None:
    """Sets `SlateBook.taken`: per campaign, its candidates off its slate whose persons capacity placed on other
    campaigns of the run (under any of their creator ids), among its best `target` (by plan position), or among all
    of them when its slate is empty; and `SlateBook.taken_as_one`, those of them off it only through another id.

    `scored` is in the canonical order, so a row's position in its campaign's run is its rank by score.
    """
    slates.taken = {c: (0, 0) for c in slates.members}
    capacity = slates.policy.capacity
    if capacity is None:
        return
    chosen = np.zeros(len(scored), dtype=bool)
    chosen[[i for members in slates.members.values() for i in members]] = True
    load = slates.loads_elsewhere(chosen)
    full = ~chosen & (load >= capacity)
    code = pd.factorize(scored["campaign_id"])[0]  # contiguous, in the order of `plan`'s index
    starts = np.searchsorted(code, np.arange(len(target)))
    position = np.arange(len(scored)) - starts[code]
    empty = np.bincount(code[chosen], minlength=len(target)) == 0
    among = np.where(empty, np.bincount(code, minlength=len(target)), target)
    counted = full & (position < among[code])
    counts = np.bincount(code[counted], minlength=len(target))
    slates.taken.update(zip(slates.members, zip(counts.tolist(), among.tolist(), strict=True), strict=True))
    own = np.bincount(slates.creator[chosen], minlength=int(slates.creator.max()) + 1)[slates.creator]
    for i in np.flatnonzero(counted & (own < capacity)):  # full only with the campaigns of the person's other ids
        slates.taken_as_one.setdefault(slates.campaign[i], []).append(int(load[i] - own[i]))


def _top_up(scored: pd.DataFrame, slates: SlateBook) -> None:
    """Lets the slates that capacity kept under their budget (`SlateBook.budget_left`) grow past their planned size.

    Their size was cut by the budget on their own best candidates' commission; capacity then gave those to other
    campaigns, and the cheaper creators in their place left most of the budget unspent (a new-user trial's slate of
    3 spent 8% of it while 167 candidates had room). Each such slate, in campaign order, takes its best candidates
    that are free to join it (`SlateBook.why_not`: capacity left, no near-duplicate, the unproven limit), up to the
    product type's size, until the next one would pass the budget or is worth less than `min_member_value` of the
    slate's best member, as the planned walk stops. The programme's slates are kept whole: only creators with
    capacity to spare are added, so no other slate changes.
    """
    if not slates.budget_left:
        return
    code, ids = pd.factorize(scored["campaign_id"])  # contiguous, in the canonical order
    bounds = np.searchsorted(code, np.arange(len(ids) + 1))
    where = {c: k for k, c in enumerate(ids)}
    score = scored["score"].to_numpy(float)
    for c in sorted(slates.budget_left, key=where.get):
        slates.target[c] = slates.size[c]
        taken = set(slates.members[c])
        # Worth is measured against the best creator the slate holds: capacity may have placed its best candidates,
        # on which its size was planned, elsewhere.
        worth = slates.policy.min_member_value * max((score[m] for m in slates.members[c]), default=slates.best[c])
        for i in range(bounds[where[c]], bounds[where[c] + 1]):
            if score[i] < worth:  # best first: every candidate after it is worth less too
                break
            if i in taken:
                continue
            why = slates.why_not(i)
            if why is None:
                slates.add(i)
            elif why in ("size", "budget"):
                break
        if c in slates.closed:  # its budget is reached now, not left unspent
            slates.budget_left.discard(c)


def objective(scored: pd.DataFrame, chosen: pd.DataFrame, policy: SlatePolicy) -> float:
    """What the exact assignment maximises, to compare assignments of the same scored batch on it.

    The chosen pairs' predicted sales, less twice a campaign's best score for each funnel stage of a non-standard
    slate that has a candidate worth `min_stage_value` of the best but no such member, and, under a capacity,
    FLOOR_PRICE times the batch's best score for each seat a slate is short of its floor (its minimum, or its size
    if smaller): rules kept unless keeping them is impossible, so an assignment that skips them does not count the
    sales it bought that way. Every figure on one scale across currencies (`common_scale`).
    """
    scale = campaign_scales(scored)
    total = float((chosen["score"] / scale.reindex(chosen["campaign_id"]).to_numpy()).sum())
    scored = scored[scored["score"] > 0]
    if scored.empty:
        return total
    plan = plan_sizes(scored, policy)
    scale = scale.reindex(plan.index)
    if policy.capacity is not None:
        floor = plan["floor"]
        members = chosen.groupby("campaign_id").size().reindex(plan.index, fill_value=0)
        best = float((plan["best"] / scale).max())
        total -= FLOOR_PRICE * best * float((floor - members).clip(lower=0).sum())
    if not policy.funnel_coverage:
        return total
    best = plan["best"].reindex(scored["campaign_id"]).to_numpy()
    wide = ~plan["standard"].reindex(scored["campaign_id"]).to_numpy(bool)
    worthy = scored[wide & (scored["score"] >= policy.min_stage_value * best) & scored["funnel_stage"].isin(FUNNEL)]
    wanted = set(zip(worthy["campaign_id"], worthy["funnel_stage"], strict=True))
    on_slates = chosen[
        chosen["score"] >= policy.min_stage_value * plan["best"].reindex(chosen["campaign_id"]).to_numpy()
    ]
    missing = wanted - set(zip(on_slates["campaign_id"], on_slates["funnel_stage"], strict=True))
    return total - sum(2.0 * plan.at[c, "best"] / scale[c] for c, _ in missing)


def default_slates(scored: pd.DataFrame, evidence: DuplicateEvidence) -> pd.DataFrame:
    """The default policy's slates: what `training.train` reviews on held-out campaigns as `slate_builder`.

    Training may not import the matcher, so whoever calls it (the `train` command, the demo) passes this in.
    """
    return build_slates(scored, SlatePolicy(), evidence)[0]


def _campaigns(capacity: int | None) -> str:
    return f"{capacity} campaign{'' if capacity == 1 else 's'}"


def _capacity(slates: SlateBook) -> str:
    """The capacity rule as a size reason names it."""
    return f"capacity ({_campaigns(slates.policy.capacity)} per creator)"


# Why better candidates stayed off a slate, as a size reason says it (capacity's, when how many it took is not known).
_STOPS = {
    "capacity": "the better ones were already proposed to {campaigns} each",
    "duplicate": "near-duplicates of creators already on it (nearly the same profile, or the same handle on a "
    "platform both list) were left out",
    "unproven": "creators with no record are limited where proven ones are comparable",
}


def _taken(campaign: str, slates: SlateBook) -> str:
    """How many of the campaign's candidates capacity placed on other campaigns, as a size reason says it."""
    taken, among = slates.taken[campaign]
    if slates.members[campaign]:
        best = "its best candidate" if among == 1 else f"its best {among} candidates"
        which = best if taken == among else f"{taken} of {best}"
    elif taken == among:
        which = f"its {'only' if taken == 1 else taken} eligible candidate{'s' if taken > 1 else ''}"
    else:
        which = f"{taken} of its {among} eligible candidates"
    return f"{_capacity(slates)} placed {which} on other campaigns of this run{_as_one(campaign, slates)}"


def _as_one(campaign: str, slates: SlateBook) -> str:
    """What a size reason adds of the campaign's candidates that capacity took only through another creator id of
    the same person (`SlateBook.taken_as_one`): a seller sees an id that was proposed nowhere else."""
    elsewhere = slates.taken_as_one.get(campaign, [])
    if not elsewhere:
        return ""
    same = "(the same handle on a platform both list)"
    if len(elsewhere) > 1:
        return (
            f": {len(elsewhere)} of them are each the same person as another creator id {same}, already proposed to "
            "campaigns under that id, and one person's ids share the capacity"
        )
    who = "it is" if slates.taken[campaign][0] == 1 else "1 of them is"
    return (
        f": {who} the same person as another creator id {same}, already proposed to {_campaigns(elsewhere[0])} "
        "under that id, and one person's ids share the capacity"
    )


def _why(campaign: str, slates: SlateBook, added: list[str], stage: np.ndarray) -> str:
    members = slates.members[campaign]
    if not members:  # only capacity leaves a slate with candidates empty (`build_slates`)
        return f"0: {_taken(campaign, slates)}"
    size, limit = len(members), slates.size[campaign]
    kind = "standard" if slates.standard[campaign] else "non-standard"
    uncertain = slates.uncertain[campaign]
    skipped = slates.skipped[campaign]
    take_up = slates.policy.participation_rate
    lost = _taken(campaign, slates) if slates.taken[campaign][0] else ""
    # The budget as set, without the tolerated overrun: what a spend is shown against.
    budget = slates.budget[campaign] / (1 + slates.policy.budget_overrun)
    if size >= limit and not np.isnan(uncertain):
        policy = slates.policy
        text = (
            f"{size}: between the standard ({policy.standard_size}) and non-standard ({policy.non_standard_size}) "
            f"sizes, the product type being uncertain (probability of non-standard {uncertain:.2f})"
        )
    elif size >= limit:
        text = f"{size}: the {kind} slate size"
    elif campaign in slates.budget_left and {"budget", "capacity"} <= skipped:
        # A slate can be "left room" (within the overrun) and still spend a little over the budget as set, which
        # the figure shows instead of a claim that budget is unused.
        gave = lost or f"{_capacity(slates)} gave some of them to other campaigns"
        text = (
            f"{size}: sized to the budget on its best candidates' expected commission; {gave}, and those in their "
            f"place are expected to spend {slates.spend[campaign] / budget:.0%} of the budget at {take_up:.0%} take-up"
        )
        lost = ""
    elif "worth" in skipped:
        text = (
            f"{size}: its other candidates are each expected to sell under {slates.policy.min_member_value:.0%} of "
            f"what its best one is (its expected sales {slates.best[campaign]:,.1f}, in the campaign's currency)"
        )
    elif "budget" in slates.skipped[campaign]:
        text = f"{size}: budget reached (expected commission x {take_up:.0%} take-up)"
        if slates.spend[campaign] > slates.budget[campaign]:
            text += (
                f"; kept at the minimum of {slates.minimum[campaign]} creators, whose expected commission at "
                f"{take_up:.0%} take-up is {slates.spend[campaign] / budget:.1f}x the budget: it may run out "
                "before the end date"
            )
    elif skipped & set(_STOPS):
        stops = [
            lost if rule == "capacity" and lost else _STOPS[rule].format(campaigns=_campaigns(slates.policy.capacity))
            for rule in sorted(skipped & set(_STOPS))
        ]
        lost = "" if "capacity" in skipped else lost
        text = f"{size}: no further eligible candidate ({'; '.join(stops)})"
    else:
        text = f"{size}: all eligible candidates with positive expected sales"
    if lost:  # whatever sized the slate, better candidates went to other campaigns: said, with how many
        text += f"; {lost}"
    if "budget" not in skipped and take_up < 1 and slates.spend[campaign] > budget * take_up:
        # A summary's expected commission assumes every creator takes part; beside a lower budget, with a reason
        # that never named the budget, a seller read it as a slate sized past the budget.
        text += (
            f"; {slates.spend[campaign] / take_up / budget:.1f}x the budget in expected commission if every creator "
            f"takes part, {slates.spend[campaign] / budget:.0%} of it at the {take_up:.0%} take-up slates are sized "
            "for (pay-per-sale never spends past the budget)"
        )
    stages = pd.Series([stage[m] for m in members]).value_counts()
    text += "; " + ", ".join(f"{n} {s}" for s, n in stages.items())
    if added:
        text += f" (added so that each stage of the shopper's path has a creator: {', '.join(added)})"
    return text
