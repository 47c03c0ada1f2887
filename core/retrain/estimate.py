"""How long a retrain's training usually takes, in words, from the account's recent
trainings on the same trainer version (``core.retrain.follow.recent_durations``).

An estimate is only as good as what it is made of: with no finished training to go by it
says so, and it never rounds a real duration down to "0 s" (a training that took under a
minute reads "under a minute")."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

MINUTE = 60
HOUR = 60 * MINUTE

NOT_KNOWN = (
    "how long it takes is not known yet (no finished training on this trainer in the "
    "history to go by)"
)


def duration_words(seconds: float) -> str:
    """``under a minute``, ``about 22 min``, ``about 2 h 10 min`` (never ``0 s``)."""
    if seconds < MINUTE:
        return "under a minute"
    if seconds < HOUR:
        return f"about {max(1, round(seconds / MINUTE))} min"
    hours, rest = divmod(round(seconds / MINUTE), 60)
    return f"about {hours} h" + (f" {rest} min" if rest else "")


def usual_duration(durations: Sequence[float]) -> str:
    """The usual length of a training in one phrase, from the recent trainings' durations
    in seconds (the median, and how many it is the median of)."""
    known = [seconds for seconds in durations if seconds >= 0]
    if not known:
        return NOT_KNOWN
    count = len(known)
    basis = (
        "the account's one finished training on this trainer"
        if count == 1
        else f"the median of the account's {count} latest finished trainings on this trainer"
    )
    words = duration_words(statistics.median(known))
    verb = "took" if count == 1 else "usually"
    return f"{verb} {words} in all ({basis})"
