"""The blind-review statistics against hand-computed values and simulated votes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from fractions import Fraction

import numpy as np
import pytest

from core.review.stats import (
    EARLIER,
    LATER,
    MAX_EXTRA_VOTES,
    Choice,
    Vote,
    both_bad_rate,
    bradley_terry,
    by_age,
    head_to_head,
    headline,
    summarise,
    summarise_per_user,
    wilson_interval,
)

pytestmark = pytest.mark.timeout(60)

Z = 1.959963984540054


def record(first: str, second: str, first_wins: int, second_wins: int) -> list[Vote]:
    """Decisive votes with sides alternating, so both "left" and "right" get counted."""
    votes: list[Vote] = []
    for number in range(first_wins):
        if number % 2:
            votes.append(Vote(first, second, "left"))
        else:
            votes.append(Vote(second, first, "right"))
    for number in range(second_wins):
        if number % 2:
            votes.append(Vote(second, first, "left"))
        else:
            votes.append(Vote(first, second, "right"))
    return votes


def simulated_votes(
    win_chance: dict[tuple[str, str], float], per_pair: int, seed: int
) -> list[Vote]:
    """``per_pair`` votes per pair; the pair's first version wins with the given chance."""
    rng = np.random.default_rng(seed)
    votes: list[Vote] = []
    for (stronger, weaker), chance in win_chance.items():
        for _ in range(per_pair):
            stronger_won = bool(rng.random() < chance)
            # Random sides, as the page shows them, so the choice is relative to versions.
            if rng.random() < 0.5:
                left, right = stronger, weaker
                choice: Choice = "left" if stronger_won else "right"
            else:
                left, right = weaker, stronger
                choice = "right" if stronger_won else "left"
            votes.append(Vote(left, right, choice))
    return votes


THREE_VERSIONS = {("A", "B"): 0.8, ("B", "C"): 0.8, ("A", "C"): 0.9}


# --- Wilson interval -------------------------------------------------------------------


def test_wilson_interval_seven_of_ten() -> None:
    low, high = wilson_interval(7, 10)
    assert (round(low, 4), round(high, 4)) == (0.3968, 0.8922)


def test_wilson_interval_none_of_ten_starts_at_zero() -> None:
    # With no successes the upper end reduces to z² / (n + z²).
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(Z * Z / (10 + Z * Z))
    assert round(wilson_interval(0, 10)[1], 4) == 0.2775


def test_wilson_interval_all_of_ten_ends_at_exactly_one() -> None:
    # The mirror image: the lower end is n / (n + z²).
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(10 / (10 + Z * Z))
    assert high == 1.0
    assert round(wilson_interval(10, 10)[0], 4) == 0.7225


def test_wilson_interval_without_trials_is_the_whole_range() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(11, 10)


# --- head to head ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wins", "decisive", "expected"),
    [
        # 2 * (C(10,8) + C(10,9) + C(10,10)) / 2**10 = 2 * 56 / 1024
        (8, 10, 0.109375),
        # 2 * (10 + 1) / 1024
        (9, 10, 0.021484375),
        # 2 * sum(C(20,k), k=14..20) / 2**20 = 2 * 60460 / 1048576
        (14, 20, 0.11531829833984375),
        # Symmetric: losing 2 of 10 is as far from 50% as winning 8.
        (2, 10, 0.109375),
    ],
)
def test_head_to_head_p_value_is_the_exact_two_sided_binomial(
    wins: int, decisive: int, expected: float
) -> None:
    by_hand = 2 * sum(
        math.comb(decisive, k) for k in range(max(wins, decisive - wins), decisive + 1)
    )
    assert by_hand / 2**decisive == expected
    result = head_to_head(record("v2", "v1", wins, decisive - wins), "v2", "v1")
    assert result.p_value == pytest.approx(expected, abs=1e-12)


def test_head_to_head_counts_ties_and_both_bad_apart_from_wins() -> None:
    votes = [
        *record("v2", "v1", 14, 6),
        Vote("v1", "v2", "tie"),
        Vote("v2", "v1", "tie"),
        Vote("v1", "v2", "tie"),
        Vote("v2", "v1", "both_bad"),
        Vote("v1", "v2", "both_bad"),
        # Another pair in the same round: not part of v2 against v1.
        Vote("v2", "v3", "left"),
        Vote("v3", "v1", "both_bad"),
    ]
    result = head_to_head(votes, "v2", "v1")
    assert (result.first_wins, result.second_wins, result.ties, result.both_bad) == (14, 6, 3, 2)
    assert result.decisive == 20
    assert result.total == 25
    assert result.win_rate == 0.7
    assert result.interval == pytest.approx(wilson_interval(14, 20))


def test_head_to_head_verdict_wording_when_not_settled() -> None:
    result = head_to_head(record("v2", "v1", 14, 6), "v2", "v1")
    assert not result.settled
    assert result.verdict == (
        "v2 wins 14 of 20 decisive votes (70%, 95% CI 48–85%); p = 0.115: not settled"
    )


def test_head_to_head_verdict_says_settled_below_five_percent() -> None:
    result = head_to_head(record("v2", "v1", 9, 1), "v2", "v1")
    assert result.settled
    assert result.verdict.startswith("v2 wins 9 of 10 decisive votes (90%, 95% CI 60–98%)")
    assert result.verdict.endswith("p = 0.021: settled")


def test_head_to_head_verdict_names_the_leader_whichever_is_first() -> None:
    as_loser = head_to_head(record("v2", "v1", 6, 14), "v2", "v1")
    as_winner = head_to_head(record("v1", "v2", 14, 6), "v1", "v2")
    assert as_loser.win_rate == 0.3
    assert as_loser.verdict == as_winner.verdict
    assert as_loser.verdict.startswith("v1 wins 14 of 20")


def test_head_to_head_without_decisive_votes() -> None:
    result = head_to_head([Vote("v1", "v2", "tie"), Vote("v2", "v1", "both_bad")], "v1", "v2")
    assert result.decisive == 0
    assert result.win_rate is None
    assert result.interval == (0.0, 1.0)
    assert result.p_value == 1.0
    assert result.votes_to_settle is None
    assert result.verdict == "No decisive votes between v1 and v2 yet: not settled"


def test_head_to_head_rejects_a_version_against_itself() -> None:
    with pytest.raises(ValueError, match="two different versions"):
        head_to_head([], "v1", "v1")


# --- votes to settle -------------------------------------------------------------------


def _p_after(wins: int, decisive: int, extra: int) -> float:
    """The exact test's p after ``extra`` more votes split at the observed rate in whole
    votes (a half vote going to the even-split side)."""
    rate = Fraction(wins, decisive)
    extra_wins = math.ceil(rate * extra - Fraction(1, 2)) if rate > Fraction(1, 2) else None
    assert extra_wins is not None
    return head_to_head(
        record("v2", "v1", wins + extra_wins, decisive - wins + extra - extra_wins), "v2", "v1"
    ).p_value


@pytest.mark.parametrize(("wins", "losses"), [(7, 3), (14, 6), (2, 1)])
def test_votes_to_settle_is_the_first_count_the_exact_test_settles(wins: int, losses: int) -> None:
    duel = head_to_head(record("v2", "v1", wins, losses), "v2", "v1")
    needed = duel.votes_to_settle
    assert needed is not None and needed > 0 and not duel.settled
    decisive = wins + losses
    assert _p_after(wins, decisive, needed) < 0.05  # the test the verdict reports
    assert all(_p_after(wins, decisive, fewer) >= 0.05 for fewer in range(needed))


def test_fourteen_of_twenty_needs_more_than_one_vote() -> None:
    # The Wilson interval said 1 more vote; 15 of 21 still has p = 0.078 by the exact test.
    duel = head_to_head(record("v2", "v1", 14, 6), "v2", "v1")
    assert duel.votes_to_settle is not None and duel.votes_to_settle >= 5


def test_votes_to_settle_does_not_depend_on_which_version_is_first() -> None:
    votes = record("v2", "v1", 7, 3)
    assert (
        head_to_head(votes, "v2", "v1").votes_to_settle
        == head_to_head(votes, "v1", "v2").votes_to_settle
    )


def test_votes_to_settle_at_an_even_split_is_none() -> None:
    assert head_to_head(record("v2", "v1", 5, 5), "v2", "v1").votes_to_settle is None


def test_votes_to_settle_when_already_excluded_is_zero() -> None:
    assert head_to_head(record("v2", "v1", 20, 0), "v2", "v1").votes_to_settle == 0


def test_votes_to_settle_gives_up_beyond_the_limit() -> None:
    # Excluding 50% at a rate r takes about z² / (4 (r - 0.5)²) decisive votes in all:
    # some 38,000 at 50.5% (beyond 10,000 more), some 9,600 at 51% (within).
    assert MAX_EXTRA_VOTES == 10_000
    assert head_to_head(record("v2", "v1", 101, 99), "v2", "v1").votes_to_settle is None
    near_limit = head_to_head(record("v2", "v1", 51, 49), "v2", "v1").votes_to_settle
    assert near_limit is not None and 9_000 < near_limit <= MAX_EXTRA_VOTES


# --- both bad rate ---------------------------------------------------------------------


def test_both_bad_rate_is_per_version_share_of_its_votes() -> None:
    votes = [
        Vote("a", "b", "both_bad"),
        Vote("b", "a", "left"),
        Vote("a", "c", "both_bad"),
        Vote("c", "b", "tie"),
    ]
    assert both_bad_rate(votes) == {
        "a": pytest.approx(2 / 3),
        "b": pytest.approx(1 / 3),
        "c": pytest.approx(1 / 2),
    }
    assert both_bad_rate([]) == {}


# --- Bradley–Terry ---------------------------------------------------------------------


def test_bradley_terry_recovers_the_order_of_three_versions() -> None:
    votes = simulated_votes(THREE_VERSIONS, per_pair=60, seed=7)
    strengths = bradley_terry(votes, bootstrap=200, seed=0)
    assert [item.version for item in strengths] == ["A", "B", "C"]
    first, _, last = strengths
    assert first.low is not None and last.high is not None
    assert first.low > last.high
    assert sum(item.strength for item in strengths) == pytest.approx(0.0, abs=1e-9)
    # Each version met two opponents 60 times each.
    assert [item.votes for item in strengths] == [120, 120, 120]
    for item in strengths:
        assert item.low is not None and item.high is not None
        assert item.low <= item.strength <= item.high


def test_bradley_terry_drops_ties_and_both_bad() -> None:
    decisive = simulated_votes(THREE_VERSIONS, per_pair=30, seed=3)
    noise = [Vote("C", "A", "tie"), Vote("A", "B", "both_bad"), Vote("B", "C", "tie")] * 10
    assert bradley_terry(decisive + noise, bootstrap=20) == bradley_terry(decisive, bootstrap=20)


def test_bradley_terry_is_reproducible_with_the_same_seed() -> None:
    votes = simulated_votes(THREE_VERSIONS, per_pair=20, seed=1)
    again = bradley_terry(votes, bootstrap=50, seed=11)
    assert bradley_terry(votes, bootstrap=50, seed=11) == again
    other_seed = bradley_terry(votes, bootstrap=50, seed=12)
    assert [item.strength for item in other_seed] == [item.strength for item in again]
    assert [(item.low, item.high) for item in other_seed] != [
        (item.low, item.high) for item in again
    ]


def test_bradley_terry_keeps_a_version_that_never_lost_finite() -> None:
    votes = record("A", "B", 10, 0) + record("A", "C", 10, 0) + record("B", "C", 7, 3)
    strengths = bradley_terry(votes, bootstrap=30)
    assert strengths[0].version == "A"
    for item in strengths:
        assert math.isfinite(item.strength)
        assert item.low is not None and math.isfinite(item.low)
        assert item.high is not None and math.isfinite(item.high)


def test_bradley_terry_lists_a_version_without_decisive_votes_last() -> None:
    votes = [*record("A", "B", 8, 2), *record("B", "C", 6, 4), Vote("D", "A", "tie")]
    strengths = bradley_terry(votes, bootstrap=20)
    assert [item.version for item in strengths][-1] == "D"
    unrated = strengths[-1]
    assert (unrated.strength, unrated.low, unrated.high, unrated.votes) == (0.0, None, None, 0)


def test_bradley_terry_without_bootstrap_has_no_intervals() -> None:
    strengths = bradley_terry(record("A", "B", 8, 2) + record("B", "C", 6, 4), bootstrap=0)
    assert all(item.low is None and item.high is None for item in strengths)


def test_bradley_terry_needs_two_versions() -> None:
    with pytest.raises(ValueError, match="at least two versions"):
        bradley_terry([])


def test_vote_refuses_one_version_twice_and_unknown_choices() -> None:
    with pytest.raises(ValueError, match="two different versions"):
        Vote("A", "A", "left")
    with pytest.raises(ValueError, match="vote choice"):
        Vote("A", "B", "a")  # type: ignore[arg-type]


# --- summarise -------------------------------------------------------------------------


def test_summarise_two_versions_is_a_head_to_head() -> None:
    votes = [*record("v2", "v1", 14, 6), Vote("v1", "v2", "tie"), Vote("v2", "v1", "both_bad")]
    summary = summarise(votes)
    assert summary.method == "head_to_head"
    assert summary.versions == ("v1", "v2")
    assert summary.head_to_head is not None
    # The first version in sorted order is "first".
    assert (summary.head_to_head.first, summary.head_to_head.first_wins) == ("v1", 6)
    assert summary.strengths == ()
    assert (summary.total_votes, summary.decisive_votes, summary.ties, summary.both_bad) == (
        22,
        20,
        1,
        1,
    )
    assert summary.both_bad_rate == {"v1": pytest.approx(1 / 22), "v2": pytest.approx(1 / 22)}


def test_summarise_three_versions_is_bradley_terry() -> None:
    votes = simulated_votes(THREE_VERSIONS, per_pair=20, seed=5)
    summary = summarise(votes, bootstrap=30, seed=2)
    assert summary.method == "bradley_terry"
    assert summary.head_to_head is None
    assert summary.strengths == tuple(bradley_terry(votes, bootstrap=30, seed=2))
    assert summary.versions == ("A", "B", "C")
    assert summary.total_votes == 60


def test_summarise_without_votes() -> None:
    summary = summarise([])
    assert summary.method == "none"
    assert (summary.total_votes, summary.head_to_head, summary.strengths) == (0, None, ())


# --- across users: earlier against later --------------------------------------------------


def _day(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


def test_by_age_pools_every_users_votes_as_earlier_against_later() -> None:
    # Ann: her later version (a2) wins 3 of 4; Bob: his earlier version (b1) wins 5 of 6.
    # Pooled: the earlier version wins 1 + 5 = 6 of 10, whichever side it was shown on.
    votes_of = {
        "ann": record("a2", "a1", 3, 1),
        "bob": [*record("b1", "b2", 5, 1), Vote("b1", "b2", "tie")],
    }
    trained = {"a1": _day(1), "a2": _day(9), "b1": _day(2), "b2": _day(3)}
    pooled, unknown = by_age(votes_of, trained)
    assert unknown == 0
    result = head_to_head(pooled, EARLIER, LATER)
    assert (result.first_wins, result.second_wins, result.ties) == (6, 4, 1)
    assert result.verdict.startswith("the earlier version wins 6 of 10 decisive votes (60%")


def test_by_age_leaves_out_and_counts_votes_on_a_version_of_unknown_age() -> None:
    votes_of = {"ann": record("a1", "a2", 2, 0), "cid": record("c1", "c2", 1, 1)}
    pooled, unknown = by_age(votes_of, {"a1": _day(1), "a2": _day(2), "c1": _day(5)})
    assert unknown == 2
    assert [vote.winner for vote in pooled] == [EARLIER, EARLIER]


def test_per_user_summaries_and_their_one_line_results() -> None:
    summaries = summarise_per_user(
        {
            "bob": record("b1", "b2", 9, 1),
            "ann": simulated_votes(THREE_VERSIONS, per_pair=30, seed=3),
        }
    )
    assert list(summaries) == ["ann", "bob"]
    assert headline(summaries["bob"], str.upper) == (
        "B1 wins 9 of 10 decisive votes (90%, 95% CI 60–98%); p = 0.021: settled"
    )
    ann = summaries["ann"]
    assert ann.method == "bradley_terry"
    assert all(item.low is None for item in ann.strengths)  # no bootstrap in a table
    assert headline(ann).startswith("A strongest of 3 versions (Bradley–Terry +")
    assert headline(summarise([])) == "no votes yet"
