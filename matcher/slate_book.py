"""The batch's slates while they are filled: members, spend and load, and the canonical order of candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import COVERED_STAGES
from features.duplicate_evidence import DuplicateEvidence
from matcher.settings import SlatePolicy

__all__ = ["FUNNEL", "SlateBook", "campaign_order", "campaign_scales", "common_scale"]

FUNNEL = COVERED_STAGES


def campaign_order(scored: pd.DataFrame) -> np.ndarray:
    """Row order within each campaign, best first; ties go to the smaller creator_id (stable)."""
    # Sorting integer codes, not the strings themselves: 4M pairs sort in a second rather than in ten.
    campaign = pd.factorize(scored["campaign_id"].to_numpy(), sort=True)[0]
    creator = pd.factorize(scored["creator_id"].to_numpy(), sort=True)[0]
    return np.lexsort((creator, -scored["score"].to_numpy(float), campaign))


def common_scale(scored: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray:
    """Per row of `scored` (those at positions `rows`, if given), what its predicted sales are divided by before
    they are added across campaigns.

    A campaign's price, budget and sales are in its marketplaces' currency, which the contract does not name: added
    as they are, a yen campaign's sales (prices ~150x dollars) outbid every dollar campaign for a creator both could
    take. `currency_log_scale` (`features.product_type.resolve_product_types`) says how much dearer a campaign's
    currency reads than the batch's main one; 1 where that is not known (no column, NaN: no price zones) and for
    every campaign read in the main currency, whose sales are added as they are, bit
    for bit. A per-campaign factor leaves each slate's own order and thresholds as they were.
    """
    if "currency_log_scale" not in scored.columns:
        return np.ones(len(scored) if rows is None else len(rows))
    scale = scored["currency_log_scale"].to_numpy(float)
    scale = scale if rows is None else scale[rows]
    return np.exp(np.where(np.isfinite(scale), scale, 0.0))


def campaign_scales(scored: pd.DataFrame) -> pd.Series:
    """`common_scale` by campaign_id: the factor each campaign of `scored` divides its predicted sales by."""
    return pd.Series(common_scale(scored)).groupby(scored["campaign_id"].to_numpy()).first()


class SlateBook:
    """The batch's slates: members, spend and load per person, and why a campaign stopped growing.

    Capacity counts per person (`person`), not per creator id: two ids of one person (`DuplicateEvidence.person`)
    share one capacity, so a person registered twice is proposed to no more campaigns than one registered once.
    """

    def __init__(
        self, scored: pd.DataFrame, policy: SlatePolicy, evidence: DuplicateEvidence, plan: pd.DataFrame
    ) -> None:
        self.policy = policy
        self.evidence = evidence
        # Each row's campaign id, one string object per campaign (not one per row: 1.85M rows' own copies took
        # 0.1 GiB in the 1M benchmark's assignment).
        codes, ids = pd.factorize(scored["campaign_id"])
        self.campaign = np.asarray(ids, dtype=object)[codes]
        self.creator = scored["creator_row"].to_numpy()
        # Per row, the person whose capacity it uses: the one place capacity reads ids as people (the programme,
        # its pruning, the greedy pass and the reasons all count `person`). Without one person under two ids, the
        # rows' own creators, not a copy (4M rows at 1M creators).
        self.person = evidence.person[self.creator] if evidence.people else self.creator
        self.commission = scored["expected_commission"].to_numpy(float) * policy.participation_rate
        self.proven = scored["hist_campaigns"].to_numpy(float) > 0
        self.size = plan["limit"].to_dict()
        self.target = plan["target"].to_dict()
        self.minimum = plan["minimum"].to_dict()
        self.floor = plan["floor"].to_dict()
        self.standard = plan["standard"].to_dict()
        # The probability of non-standard where an uncertain type sized the slate between the two kinds, else NaN.
        self.uncertain = plan["uncertain"].to_dict()
        self.budget = plan["budget"].to_dict()
        self.best = plan["best"].to_dict()
        self.max_unproven = plan["unproven"].to_dict()
        self.members: dict[str, list[int]] = {c: [] for c in plan.index}
        self.spend = dict.fromkeys(plan.index, 0.0)
        self.unproven = dict.fromkeys(plan.index, 0)
        self.load: dict[int, int] = {}  # campaigns per person (`person`)
        # A slate sized below its limit by the budget on its best candidates, or by what its other candidates are
        # worth, says so, whichever assignment fills it.
        self.skipped: dict[str, set[str]] = {
            c: {"worth"} if worth else {"budget"} if budget else set()
            for c, budget, worth in zip(plan.index, plan["budget_bound"], plan["worth_bound"], strict=True)
        }
        self.closed: set[str] = set()
        # Slates the budget sized ("budget" skipped) whose members, once assigned, leave room in it for another free
        # candidate.
        self.budget_left: set[str] = set()
        self.added: dict[str, list[str]] = {}
        # Per campaign, how many of the candidates it would otherwise have had (its best `target` as planned, or every
        # one when its slate is empty) are off it because capacity placed their creators on other campaigns of the
        # run, and among how many (that `target`, or all its candidates).
        self.taken: dict[str, tuple[int, int]] = {}
        # Per campaign, for each of those `taken` whose own creator id has room but whose person's other ids used
        # their capacity, how many campaigns those other ids are proposed to (the size reason says so).
        self.taken_as_one: dict[str, list[int]] = {}
        # Each slate's member vectors, gathered once per change of members rather than on every candidate
        # checked against them (the vectors are read from the index on demand).
        self._member_vectors: dict[str, np.ndarray] = {}

    def why_not(self, i: int, swap: bool = False) -> str | None:
        """None if row i can join its campaign's slate, else the rule that stops it.

        With `swap`, size and budget are not checked: the row takes the place of a member of similar cost.
        """
        c, p = self.campaign[i], self.policy
        members = self.members[c]
        if not swap and len(members) >= self.target[c]:
            return "size"
        if not swap and c in self.closed:
            return "budget"
        if p.capacity is not None and self._load_elsewhere(i) >= p.capacity:
            return "capacity"
        if not swap and self.over_budget(c, len(members) + 1, self.spend[c] + self.commission[i]):
            # The slate closes at its budget: filling up with ever weaker, cheaper creators is not a plan.
            self.closed.add(c)
            return "budget"
        if self.standard[c] and not self.proven[i] and self.unproven[c] >= self.max_unproven[c]:
            return "unproven"
        if (
            members
            and self.evidence.has_other_ids[self.creator[i]]
            and self.evidence.same_person(self.creator[members], self.creator[[i]]).any()
        ):
            return "duplicate"
        if members and p.duplicate_similarity < 1 and self.evidence.has_bio[self.creator[i]]:
            if c not in self._member_vectors:
                rows = self.creator[members]
                self._member_vectors[c] = self.evidence.vectors[rows[self.evidence.has_bio[rows]]]
            compared = self._member_vectors[c]
            if (
                len(compared)
                and float(np.max(compared @ self.evidence.vectors[self.creator[i]])) >= p.duplicate_similarity
            ):
                return "duplicate"
        return None

    def _load_elsewhere(self, i: int) -> int:
        """How many campaigns other than row i's own its person is proposed to (under any of their ids)."""
        load = self.load.get(self.person[i], 0)
        if self.evidence.has_other_ids[self.creator[i]]:  # another id of theirs on this slate: the duplicate rule's
            load -= int((self.person[self.members[self.campaign[i]]] == self.person[i]).any())
        return load

    def loads_elsewhere(self, chosen: np.ndarray) -> np.ndarray:
        """Per row, how many campaigns other than its own its person is proposed to under any of their ids, once
        the rows `chosen` (a mask) are on their slates: a row off its slate with capacity's worth is off for capacity.
        """
        load = np.bincount(self.person[chosen], minlength=int(self.person.max()) + 1)[self.person]
        # Another id of the person on the row's own slate keeps it off by the duplicate rule, not by capacity.
        if self.evidence.people:
            code = pd.factorize(self.campaign)[0]
            key = code * (int(self.person.max()) + 1) + self.person
            load -= np.isin(key, key[chosen])
        return load

    def over_budget(self, c: str, size: int, spend: float) -> bool:
        """Whether a slate of `size` members spending `spend` breaks campaign c's budget (beyond its minimum)."""
        return size > self.minimum[c] and spend > self.budget[c]

    def add(self, i: int) -> None:
        c = self.campaign[i]
        self.members[c].append(i)
        self._member_vectors.pop(c, None)
        self.spend[c] += self.commission[i]
        self.unproven[c] += int(self.standard[c] and not self.proven[i])
        self.load[self.person[i]] = self.load.get(self.person[i], 0) + 1

    def remove(self, i: int) -> None:
        c = self.campaign[i]
        self.members[c].remove(i)
        self._member_vectors.pop(c, None)
        self.spend[c] -= self.commission[i]
        self.unproven[c] -= int(self.standard[c] and not self.proven[i])
        self.load[self.person[i]] -= 1
