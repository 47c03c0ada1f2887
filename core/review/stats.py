"""Statistics for blind pairwise review: staff see two images made from the same prompt and
seed by two model versions, and vote which is better (or a tie, or both bad).

Pure: functions over plain values (``Vote`` in, frozen dataclasses out), no streamlit,
database, network or clock. The choices, and why:

- A ``Vote`` names versions, not screen sides: the page shows the pair in a random order
  and turns "the left image" back into a version before it builds the ``Vote``, so
  position bias never reaches these numbers.
- Only decisive votes (one version preferred) measure which version is better. Ties and
  "both bad" are counted and reported beside them, never folded in as half-wins: "both
  bad" says the prompt or both versions failed, which is a different question
  (``both_bad_rate``).
- Two versions: ``head_to_head`` reports the win rate with a Wilson 95% interval (it stays
  inside 0–1 and behaves at 0 or all wins and at small counts, where the normal
  approximation does not) and a two-sided exact binomial test against 50% (scipy), since
  review rounds are small and exact is cheap. "Settled" means p < 0.05.
- ``votes_to_settle`` answers "how much longer should we keep voting?": the fewest extra
  decisive votes, split at the observed rate in whole votes (a half vote goes to the
  even-split side), after which the same exact test the verdict reports gives p < 0.05.
  (It once used the Wilson interval, which is a little less strict: it said 14 of 20
  needed 1 more vote, yet 15 of 21 has p = 0.078, still "not settled".)
  Read it as an estimate of the remaining effort, not a promise of the verdict.
- Three or more versions: ``bradley_terry`` fits log-strengths with choix's I-LSR. A small
  regularisation (``BT_ALPHA``) keeps a version that never lost finite instead of running
  to infinity. The intervals are percentile bootstrap intervals over the decisive votes,
  resampled with a seeded ``numpy.random.default_rng`` so the same votes and seed always
  give the same numbers. Strengths compare only within one fit: a version's strength is
  relative to the others in the same call, and versions that never met (directly or through
  a chain of opponents) are only tied together by the regularisation.

Why one long module: pure statistics whose derivations are written next to the code (exact
tests, Bradley-Terry, the votes still needed); split, the reasoning behind each number would
be read apart from it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

Choice = Literal["left", "right", "tie", "both_bad"]
_CHOICES: frozenset[str] = frozenset(get_args(Choice))

# The 97.5th percentile of the standard normal: a two-sided 95% interval.
Z_95 = 1.959963984540054
# "Settled" is the conventional 5% two-sided level; staff read it as a plain yes or no.
SETTLED_P = 0.05
# votes_to_settle stops looking here: beyond this many more votes the difference is too
# small to be worth a review round, and "None" says so.
MAX_EXTRA_VOTES = 10_000
# How far below the halving's answer votes_to_settle looks for a count that settles too
# (the exact test's p-value wobbles by a vote or two as whole votes are added).
SETTLE_WINDOW = 8
# choix's I-LSR regularisation: a pseudo-count on every pair of versions. Small enough not
# to pull well-measured strengths, large enough that a version that never lost (or never
# won) gets a finite strength, in the fit and in every bootstrap resample.
BT_ALPHA = 0.01
# I-LSR usually converges in a few dozen iterations; a lopsided resample can take more.
_BT_MAX_ITER = 1_000
_BOOTSTRAP_PERCENTILES = (2.5, 97.5)


@dataclass(frozen=True)
class Vote:
    """One reviewer's verdict on one pair, already translated from screen sides to versions.

    ``choice`` is "left" when ``left_version`` was preferred, "right" when
    ``right_version`` was, "tie" when neither, and "both_bad" when both images failed.
    """

    left_version: str
    right_version: str
    choice: Choice

    def __post_init__(self) -> None:
        # Literal types are not checked at run time, and a vote read from a form or a
        # database row could hold anything: refuse it here rather than miscount it later.
        if self.choice not in _CHOICES:
            raise ValueError(f"vote choice must be one of {sorted(_CHOICES)}, got {self.choice!r}")
        if self.left_version == self.right_version:
            raise ValueError(
                f"a vote compares two different versions, got {self.left_version!r} twice"
            )

    @property
    def is_decisive(self) -> bool:
        return self.choice in ("left", "right")

    @property
    def winner(self) -> str | None:
        """The preferred version, or None for a tie or both bad."""
        if self.choice == "left":
            return self.left_version
        if self.choice == "right":
            return self.right_version
        return None

    @property
    def loser(self) -> str | None:
        """The version not preferred, or None for a tie or both bad."""
        if self.choice == "left":
            return self.right_version
        if self.choice == "right":
            return self.left_version
        return None

    def involves(self, version: str) -> bool:
        return version in (self.left_version, self.right_version)


@dataclass(frozen=True)
class HeadToHead:
    """Two versions' record against each other, from ``first``'s point of view."""

    first: str
    second: str
    first_wins: int
    second_wins: int
    ties: int
    both_bad: int
    # first_wins + second_wins: the only votes that say which version is better.
    decisive: int
    # first_wins / decisive; None when there is no decisive vote (no rate to report).
    win_rate: float | None
    # Wilson 95% interval on win_rate; (0.0, 1.0) when there is no decisive vote.
    interval: tuple[float, float]
    # Two-sided exact binomial test of first_wins against 50%; 1.0 with no decisive vote.
    p_value: float
    # p_value < SETTLED_P.
    settled: bool
    # The fewest more decisive votes, splitting at the observed rate, after which the exact
    # test gives p < SETTLED_P: 0 when it already does; None at exactly 50%, with no
    # decisive vote, or when more than MAX_EXTRA_VOTES would be needed.
    votes_to_settle: int | None
    # One line for staff, e.g. "v2 wins 14 of 20 decisive votes (70%, 95% CI 48–85%);
    # p = 0.115: not settled".
    verdict: str

    @property
    def total(self) -> int:
        return self.decisive + self.ties + self.both_bad


@dataclass(frozen=True)
class Strength:
    """One version's Bradley–Terry log-strength, relative to the other versions in the fit.

    A difference of d between two versions means the stronger one is expected to win a
    decisive vote with probability 1 / (1 + exp(-d)).
    """

    version: str
    # Centred so the versions with decisive votes average 0.
    strength: float
    # Bootstrap 2.5th and 97.5th percentiles; None when the version has no decisive vote
    # (there is nothing to resample) or when no bootstrap was asked for.
    low: float | None
    high: float | None
    # Decisive votes the version took part in.
    votes: int


@dataclass(frozen=True)
class ReviewSummary:
    """Everything a review page shows for a set of votes."""

    # "head_to_head" for exactly two versions, "bradley_terry" for three or more, "none"
    # when there are no votes.
    method: Literal["head_to_head", "bradley_terry", "none"]
    versions: tuple[str, ...]
    total_votes: int
    decisive_votes: int
    ties: int
    both_bad: int
    # Per version: share of the votes it appeared in that were "both_bad". A dict is not
    # hashable, so it is left out of the dataclass hash (it still takes part in ==).
    both_bad_rate: Mapping[str, float] = field(hash=False)
    # Set when method == "head_to_head": the first version in sorted order is ``first``.
    head_to_head: HeadToHead | None = None
    # Set when method == "bradley_terry": strongest first.
    strengths: tuple[Strength, ...] = ()


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for ``successes`` out of ``trials`` (95% by default).

    No trials means no information: the whole range (0.0, 1.0).
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(
            f"need 0 <= successes <= trials, got {successes} successes of {trials} trials"
        )
    if trials == 0:
        return (0.0, 1.0)
    rate = successes / trials
    z_squared = z * z
    denominator = 1.0 + z_squared / trials
    centre = (rate + z_squared / (2 * trials)) / denominator
    half_width = (
        z * math.sqrt(rate * (1 - rate) / trials + z_squared / (4 * trials * trials))
    ) / denominator
    # At 0 or all successes one end is exactly 0 or 1 in theory; floating point lands a
    # hair off (0.9999999999999999), so say it exactly.
    low = 0.0 if successes == 0 else max(0.0, centre - half_width)
    high = 1.0 if successes == trials else min(1.0, centre + half_width)
    return (low, high)


def _excludes_half(interval: tuple[float, float]) -> bool:
    low, high = interval
    return low > 0.5 or high < 0.5


def _binomial_p_value(successes: int, trials: int) -> float:
    # scipy and choix are imported where they are used: importing scipy.stats costs about
    # half a second, and every worker imports this module (for Vote) without needing it.
    from scipy.stats import binomtest

    if trials == 0:
        return 1.0
    # scipy may return a value a rounding error above 1 for an even split.
    return min(1.0, float(binomtest(successes, trials, p=0.5, alternative="two-sided").pvalue))


def _projected_wins(wins: int, decisive: int, extra: int) -> int:
    """``first``'s wins among ``extra`` more votes at the observed rate, in whole votes.

    Rounded to the nearest vote, halves toward an even split (the cautious side). Rounding
    toward the even split also makes the projection the same whichever version is called
    ``first``, so ``votes_to_settle`` does not depend on the argument order.
    """
    exact = Fraction(wins, decisive) * extra
    floor = exact.numerator // exact.denominator
    remainder = exact - floor
    if remainder > Fraction(1, 2):
        return floor + 1
    if remainder < Fraction(1, 2):
        return floor
    # Exactly halfway: round toward extra / 2.
    return floor if exact > Fraction(extra, 2) else floor + 1


def _votes_to_settle(wins: int, decisive: int) -> int | None:
    if decisive == 0 or 2 * wins == decisive:
        # No rate, or a rate of exactly 50%: no number of votes at that rate settles it.
        return None

    def settles(extra: int) -> bool:
        projected = wins + _projected_wins(wins, decisive, extra)
        return _binomial_p_value(projected, decisive + extra) < SETTLED_P

    if settles(0):
        return 0
    if not settles(MAX_EXTRA_VOTES):
        return None
    # The p-value falls as votes at a steady rate accumulate, but not strictly (whole
    # votes, a discrete test): find a count that settles by halving, then walk back while
    # fewer still settle, so the answer is the first count the page's own test accepts.
    low, high = 0, MAX_EXTRA_VOTES  # settles(low) is False, settles(high) is True
    while high - low > 1:
        middle = (low + high) // 2
        if settles(middle):
            high = middle
        else:
            low = middle
    for fewer in range(max(1, high - SETTLE_WINDOW), high):
        if settles(fewer):
            return fewer
    return high


def _percent(value: float) -> str:
    return f"{value * 100:.0f}"


def _format_p(p_value: float) -> str:
    return "p < 0.001" if p_value < 0.001 else f"p = {p_value:.3f}"


def _verdict(
    first: str,
    second: str,
    first_wins: int,
    second_wins: int,
    interval: tuple[float, float],
    p_value: float,
) -> str:
    decisive = first_wins + second_wins
    if decisive == 0:
        return f"No decisive votes between {first} and {second} yet: not settled"
    # Speak about whichever version is ahead: "v1 wins 6 of 20" reads as good news for v1.
    if second_wins > first_wins:
        leader, leader_wins = second, second_wins
        low, high = 1.0 - interval[1], 1.0 - interval[0]
    else:
        leader, leader_wins = first, first_wins
        low, high = interval
    outcome = "settled" if p_value < SETTLED_P else "not settled"
    return (
        f"{leader} wins {leader_wins} of {decisive} decisive votes "
        f"({_percent(leader_wins / decisive)}%, 95% CI {_percent(low)}–{_percent(high)}%); "
        f"{_format_p(p_value)}: {outcome}"
    )


def head_to_head(votes: Iterable[Vote], first: str, second: str) -> HeadToHead:
    """``first`` against ``second``, from the votes on exactly that pair (either side).

    Votes on other pairs are ignored, so the full vote list of a round can be passed.
    """
    if first == second:
        raise ValueError(f"head_to_head compares two different versions, got {first!r} twice")
    counts: Counter[str] = Counter()
    for vote in votes:
        if not (vote.involves(first) and vote.involves(second)):
            continue
        winner = vote.winner
        if winner == first:
            counts["first"] += 1
        elif winner == second:
            counts["second"] += 1
        else:
            counts[vote.choice] += 1
    first_wins, second_wins = counts["first"], counts["second"]
    decisive = first_wins + second_wins
    interval = wilson_interval(first_wins, decisive)
    p_value = _binomial_p_value(first_wins, decisive)
    return HeadToHead(
        first=first,
        second=second,
        first_wins=first_wins,
        second_wins=second_wins,
        ties=counts["tie"],
        both_bad=counts["both_bad"],
        decisive=decisive,
        win_rate=first_wins / decisive if decisive else None,
        interval=interval,
        p_value=p_value,
        settled=p_value < SETTLED_P,
        votes_to_settle=_votes_to_settle(first_wins, decisive),
        verdict=_verdict(first, second, first_wins, second_wins, interval, p_value),
    )


def both_bad_rate(votes: Iterable[Vote]) -> dict[str, float]:
    """Per version (sorted by id), the share of the votes it appeared in that were "both_bad".

    A version's high rate says its images often fail outright, whatever it was paired with;
    read it beside the opponent's rate, since one bad version drags its pairs' rate up.
    """
    appearances: Counter[str] = Counter()
    both_bad: Counter[str] = Counter()
    for vote in votes:
        for version in (vote.left_version, vote.right_version):
            appearances[version] += 1
            if vote.choice == "both_bad":
                both_bad[version] += 1
    return {version: both_bad[version] / appearances[version] for version in sorted(appearances)}


def _versions(votes: Sequence[Vote]) -> tuple[str, ...]:
    return tuple(sorted({v for vote in votes for v in (vote.left_version, vote.right_version)}))


def _fit_strengths(n_versions: int, pairs: Sequence[tuple[int, int]]) -> NDArray[np.float64]:
    import choix  # see _binomial_p_value

    params = choix.ilsr_pairwise(n_versions, pairs, alpha=BT_ALPHA, max_iter=_BT_MAX_ITER)
    # choix already centres its output; centring here makes "mean 0" this module's promise
    # rather than a detail of the library version.
    centred: NDArray[np.float64] = np.asarray(params, dtype=float) - float(np.mean(params))
    return centred


def bradley_terry(votes: Iterable[Vote], *, bootstrap: int = 200, seed: int = 0) -> list[Strength]:
    """Bradley–Terry log-strengths from the decisive votes, strongest first.

    Ties and both-bad votes are dropped. ``bootstrap`` resamples of the decisive votes (with
    replacement, from ``numpy.random.default_rng(seed)``) give each version's 95%
    percentile interval; ``bootstrap=0`` skips them (low and high are None).

    A version that appears only in ties or both-bad votes is still listed, after every
    version with decisive votes, with strength 0.0 and low/high None: no interval is
    honest when there is nothing to resample, and 0.0 (the average) is the regularised
    fit's own answer for a version it knows nothing about.

    Meant for three or more versions; two work too (``head_to_head`` says more for two).
    Raises ValueError when the votes name fewer than two versions or ``bootstrap`` < 0.
    """
    vote_list = tuple(votes)
    versions = _versions(vote_list)
    if len(versions) < 2:
        raise ValueError(
            "Bradley–Terry needs votes on at least two versions; "
            f"got {len(versions)}: {list(versions)}"
        )
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be 0 or more resamples, got {bootstrap}")

    decisive = [vote for vote in vote_list if vote.is_decisive]
    decisive_counts: Counter[str] = Counter()
    for vote in decisive:
        decisive_counts[vote.left_version] += 1
        decisive_counts[vote.right_version] += 1
    # Only versions with decisive votes enter the fit, so one with none cannot shift the
    # others' centring.
    rated = tuple(version for version in versions if decisive_counts[version] > 0)
    unrated = [
        Strength(version=version, strength=0.0, low=None, high=None, votes=0)
        for version in versions
        if decisive_counts[version] == 0
    ]
    if not rated:
        return unrated

    index = {version: position for position, version in enumerate(rated)}
    # choix's pairwise data: (winner, loser) index pairs.
    pairs = [
        (index[vote.left_version], index[vote.right_version])
        if vote.choice == "left"
        else (index[vote.right_version], index[vote.left_version])
        for vote in decisive
    ]
    strengths = _fit_strengths(len(rated), pairs)

    lows: list[float | None] = [None] * len(rated)
    highs: list[float | None] = [None] * len(rated)
    if bootstrap > 0:
        rng = np.random.default_rng(seed)
        samples = np.empty((bootstrap, len(rated)))
        for row in range(bootstrap):
            picks = rng.integers(0, len(pairs), size=len(pairs))
            samples[row] = _fit_strengths(len(rated), [pairs[int(pick)] for pick in picks])
        percentiles = np.percentile(samples, _BOOTSTRAP_PERCENTILES, axis=0)
        lows = [float(value) for value in percentiles[0]]
        highs = [float(value) for value in percentiles[1]]

    fitted = [
        Strength(
            version=version,
            strength=float(strengths[position]),
            low=lows[position],
            high=highs[position],
            votes=decisive_counts[version],
        )
        for version, position in index.items()
    ]
    # Version id breaks exact ties so the order never depends on input order.
    fitted.sort(key=lambda item: (-item.strength, item.version))
    return fitted + unrated


def summarise(votes: Iterable[Vote], *, bootstrap: int = 200, seed: int = 0) -> ReviewSummary:
    """The right summary for the votes: ``head_to_head`` for two versions (the first in
    sorted order as ``first``), ``bradley_terry`` for three or more, plus both-bad rates
    and counts. No votes gives method "none" rather than an error, so an empty round can
    still be shown.
    """
    vote_list = tuple(votes)
    versions = _versions(vote_list)
    choices = Counter(vote.choice for vote in vote_list)
    method: Literal["head_to_head", "bradley_terry", "none"]
    pair: HeadToHead | None = None
    strengths: tuple[Strength, ...] = ()
    if len(versions) == 2:
        method = "head_to_head"
        pair = head_to_head(vote_list, versions[0], versions[1])
    elif len(versions) >= 3:
        method = "bradley_terry"
        strengths = tuple(bradley_terry(vote_list, bootstrap=bootstrap, seed=seed))
    else:
        # A Vote always names two different versions, so this is the no-votes case.
        method = "none"
    return ReviewSummary(
        method=method,
        versions=versions,
        total_votes=len(vote_list),
        decisive_votes=choices["left"] + choices["right"],
        ties=choices["tie"],
        both_bad=choices["both_bad"],
        both_bad_rate=both_bad_rate(vote_list),
        head_to_head=pair,
        strengths=strengths,
    )


def headline(summary: ReviewSummary, name: Callable[[str], str] = str) -> str:
    """One line for a results table: the head-to-head's verdict, the strongest of three or
    more versions, or that there is nothing yet (versions named by ``name``)."""
    if summary.head_to_head is not None:
        duel = summary.head_to_head
        return _verdict(
            name(duel.first),
            name(duel.second),
            duel.first_wins,
            duel.second_wins,
            duel.interval,
            duel.p_value,
        )
    if summary.strengths:
        best = summary.strengths[0]
        return (
            f"{name(best.version)} strongest of {len(summary.versions)} versions "
            f"(Bradley–Terry {best.strength:+.2f}, {summary.decisive_votes} decisive votes)"
        )
    return "no votes yet"


def summarise_per_user(
    votes_of: Mapping[str, Sequence[Vote]], *, bootstrap: int = 0
) -> dict[str, ReviewSummary]:
    """Each user's summary (their versions only ever meet each other). No bootstrap by
    default: a table of many users shows the strengths; one user's view shows intervals."""
    return {
        user_id: summarise(user_votes, bootstrap=bootstrap)
        for user_id, user_votes in sorted(votes_of.items())
    }


EARLIER = "the earlier version"
LATER = "the later version"


def by_age(
    votes_of: Mapping[str, Sequence[Vote]], trained_at: Mapping[str, datetime]
) -> tuple[list[Vote], int]:
    """Every user's votes pooled as the earlier of the two versions against the later one
    (by when each was trained): the one question that means the same for every user, "do
    retrains make the images better?". Votes on a version of unknown age are left out; how
    many is the second item."""
    pooled: list[Vote] = []
    unknown = 0
    for user_votes in votes_of.values():
        for vote in user_votes:
            left_at = trained_at.get(vote.left_version)
            right_at = trained_at.get(vote.right_version)
            if left_at is None or right_at is None or left_at == right_at:
                unknown += 1
                continue
            left, right = (EARLIER, LATER) if left_at < right_at else (LATER, EARLIER)
            pooled.append(Vote(left, right, vote.choice))
    return pooled, unknown
