"""The tunables of a match run, in one place: `MatchSettings` (eligibility, retrieval) and its `SlatePolicy`.

The command line's options are made from these fields (`matcher.commands.tunables`): each field is an option of
the same name, dashes for underscores, with the default and the description written here. Nothing here imports
more than the standard library (`features.parameters` imports no more), so `creator-match --help` can read
them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from features.parameters import check_kinds, refuse

__all__ = ["ASSIGNMENTS", "CHOICES", "VIOLATIONS", "MatchSettings", "SlatePolicy"]

ASSIGNMENTS = ("exact", "greedy")
VIOLATIONS = ("demote", "exclude")
# The fields that take one of a few words, and those words.
CHOICES = {"assignment": ASSIGNMENTS, "violations": VIOLATIONS}


@dataclass(frozen=True)
class SlatePolicy:
    """How slates are sized and composed.

    Args:
        standard_size: most creators for a standard (commodity) product: a few sure converters suffice.
        non_standard_size: most creators for a non-standard product, where creator content converts best
            and several angles (awareness, reviews, deals) each add sales.
        participation_rate: share of invited creators who usually take part; the slate's expected
            commission, discounted by it, should not run past the budget by more than `budget_overrun`.
        budget_overrun: tolerated overrun of the budget, as a share of it.
        min_size: creators kept on a standard slate even when the first ones already exhaust the budget:
            sellers are advised to spread a budget over several creators rather than bet on one, and not
            every invitee takes part. Commission is paid per sale, so inviting more never spends past the
            budget; it can only use it up sooner, which the run summary flags.
        min_non_standard_size: the same for non-standard slates, 6 by default (the default `standard_size`) so
            that they stay wider than standard ones when budgets bind, with room for two of each funnel stage. Each
            non-standard figure must be at least its standard counterpart.
        capacity: most campaigns one creator is proposed to in a run (None, or 0 on the command line: no
            limit), the creator ids of one person (the same handle on a platform both list) counted together.
            Creators go where their expected sales are highest across the run, not to whichever
            campaign comes first, once every slate that capacity would leave below its minimum has it.
        duplicate_similarity: a creator whose profile is at least this close (cosine) to one already on the
            slate is a near-duplicate and is skipped; in (-1, 1], where 1 turns the rule off. Only profiles with a
            bio are compared: without one, two creators alike are alike in interests, not copies.
        funnel_coverage: non-standard slates get the best awareness, consideration and conversion creator
            when one is eligible and worth at least `min_stage_value` of the campaign's best candidate.
        min_stage_value: see `funnel_coverage`.
        max_unproven_standard: standard slates lean on proven converters: at most this many creators with
            no track record, where proven alternatives of comparable value exist to fill the rest.
        comparable_value: a proven creator is a comparable alternative when its score is at least this share
            of the score the slate's last place would have without the limit. A catalogue where nobody has a
            record therefore gets full slates.
        assignment: "exact" (one programme over the batch, optimal for the scores under every rule above) or
            "greedy" (one best-first pass over all pairs under the same rules, kept to measure what the exact
            assignment gains).
        min_member_value: a place beyond the slate's minimum is planned only for a candidate expected to sell at
            least this share of the campaign's best candidate (of its best member, when a slate that capacity
            kept under its budget grows): a slate stops short of its size rather than fill up with creators worth
            next to nothing to it (0 turns the rule off).
    """

    standard_size: int = 6
    non_standard_size: int = 15
    participation_rate: float = 0.5
    budget_overrun: float = 0.1
    min_size: int = 3
    min_non_standard_size: int = 6
    capacity: int | None = 5
    duplicate_similarity: float = 0.95
    funnel_coverage: bool = True
    min_stage_value: float = 0.05
    max_unproven_standard: int = 1
    comparable_value: float = 0.5
    assignment: str = "exact"
    min_member_value: float = 0.05

    def __post_init__(self) -> None:
        check_kinds(self)
        for name in ("standard_size", "non_standard_size", "min_size", "min_non_standard_size"):
            if getattr(self, name) < 1:
                raise refuse(name, getattr(self, name), "at least 1")
        # Non-standard products are where creator content sells best and each stage of the funnel adds sales: their
        # slates are the wider ones, and a policy that made them narrower would invert what the sizes mean. The sizes
        # are compared first: `--standard-size 10 --non-standard-size 5` was refused as min_non_standard_size=6.
        wider = ": non-standard slates are the wider ones"
        self._in_order("standard_size", "non_standard_size", wider, name_larger=True)
        # A minimum above its slate's size was never kept: the size caps the slate, and the summary then spoke of a
        # minimum that no slate had.
        self._in_order("min_size", "standard_size")
        self._in_order("min_non_standard_size", "non_standard_size")
        self._in_order("min_size", "min_non_standard_size", wider, name_larger=True)
        if not 0 < self.participation_rate <= 1:
            raise refuse("participation_rate", self.participation_rate, "a value in (0, 1]")
        if self.budget_overrun < 0:
            raise refuse("budget_overrun", self.budget_overrun, "a share of the budget of at least 0")
        if self.capacity is not None and self.capacity < 1:
            raise refuse("capacity", self.capacity, "at least 1 or None")
        # A cosine: at -1 every creator would be a copy of every other, and no cosine passes 1, which is what turns
        # the rule off (as the assignment reads it).
        if not -1 < self.duplicate_similarity <= 1:
            raise refuse(
                "duplicate_similarity", self.duplicate_similarity, "a cosine in (-1, 1] (1 turns the rule off)"
            )
        for name in ("min_stage_value", "comparable_value", "min_member_value"):
            if not 0 <= getattr(self, name) <= 1:
                raise refuse(name, getattr(self, name), "a share in [0, 1]")
        # Below 0 a standard slate's unproven row could ask for fewer than no creators, which no slate meets.
        if self.max_unproven_standard < 0:
            raise refuse("max_unproven_standard", self.max_unproven_standard, "at least 0")
        if self.assignment not in ASSIGNMENTS:
            raise refuse("assignment", self.assignment, f"one of {', '.join(ASSIGNMENTS)}")

    def _in_order(self, smaller: str, larger: str, why: str = "", name_larger: bool = False) -> None:
        """Refuses `smaller` above `larger`, naming `larger` if `name_larger` else `smaller`; but never a field at
        its default beside one that is not: that is the one the caller set (`--non-standard-size 5` is refused as
        non_standard_size=5, not as min_non_standard_size=6, an option the user never gave)."""
        low, high = getattr(self, smaller), getattr(self, larger)
        if low <= high:
            return
        defaults = {f.name: f.default for f in fields(self)}
        left_alone = {name: getattr(self, name) == defaults[name] for name in (smaller, larger)}
        named = larger if name_larger else smaller
        other = smaller if named == larger else larger
        if left_alone[named] and not left_alone[other]:
            named, other = other, named
        default = ", its default" if left_alone[other] else ""
        bound = "at least" if named == larger else "at most"
        raise refuse(named, getattr(self, named), f"{bound} {other} ({getattr(self, other)}{default}){why}")

    def size_for(self, product_type: str) -> int:
        return self.non_standard_size if product_type == "non_standard" else self.standard_size

    def minimum_for(self, product_type: str) -> int:
        return self.min_non_standard_size if product_type == "non_standard" else self.min_size


@dataclass(frozen=True)
class MatchSettings:
    """Eligibility and candidate-retrieval settings.

    Args:
        candidates: creators retrieved from the index per campaign by embedding similarity.
        proven_candidates: creators added per campaign for their proven value in its category.
        allow_cashback: propose cashback sites (the marketplace's creator programme does not support them).
        min_market_share: least share of a creator's audience in the campaign's marketplaces; creators who
            give no audience split are not excluded by it.
        violations: `demote` halves the score of creators with disclosure violations; `exclude` drops them.
        related_first: among creators with no record, those whose interests relate to the campaign rank before
            the others, whatever their reach: a tag fits the brief or its category by meaning (cosine at least
            0.40, the value measured to separate related from unrelated tags on real titles), or the seller's
            history shows that creators with one of its tags join the category's campaigns more often than
            chance. Deal, coupon, cashback and loyalty sites, which sell across categories, are not held to
            it. Off, the ranker's scores alone order them.
        slate: how slates are sized.
    """

    candidates: int = 200
    proven_candidates: int = 200
    allow_cashback: bool = False
    min_market_share: float = 0.05
    violations: str = "demote"
    related_first: bool = True
    slate: SlatePolicy = field(default_factory=SlatePolicy)

    def __post_init__(self) -> None:
        check_kinds(self)
        if not isinstance(self.slate, SlatePolicy):
            raise refuse("slate", self.slate, "a SlatePolicy")
        if self.violations not in VIOLATIONS:
            raise refuse("violations", self.violations, "'demote' or 'exclude'")
        if not 0 <= self.min_market_share <= 1:
            raise refuse("min_market_share", self.min_market_share, "a value in [0, 1]")
        if self.candidates < 1:
            raise refuse("candidates", self.candidates, "at least 1")
        if self.proven_candidates < 0:
            raise refuse("proven_candidates", self.proven_candidates, "at least 0")
