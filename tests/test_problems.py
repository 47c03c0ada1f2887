"""Problems keep their kind up to the page: a page decides how to show one by its kind,
never by matching its text, and the kind survives Streamlit's cache (pickling)."""

from __future__ import annotations

import pickle

import pytest

from core.errors import (
    Conflict,
    DataRejected,
    Problem,
    ProblemKind,
    ReplicateNotFound,
    ReplicateUnavailable,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ReplicateUnavailable("Could not download x (timeout)"), ProblemKind.REPLICATE_DOWN),
        (ReplicateNotFound("404"), ProblemKind.NOT_FOUND),
        (Conflict("the row changed"), ProblemKind.CONFLICT),
        (DataRejected("not owner/name"), ProblemKind.REJECTED),
    ],
)
def test_a_problem_is_its_errors_kind_whatever_the_text(
    error: Exception, kind: ProblemKind
) -> None:
    assert isinstance(error, ReplicateUnavailable | ReplicateNotFound | Conflict | DataRejected)
    problem = Problem.of(error)
    assert problem.kind is kind and problem == str(error)
    again = pickle.loads(pickle.dumps(problem))
    assert isinstance(again, Problem) and again.kind is kind and again == problem


def test_a_plain_message_has_no_kind_and_a_problem_stays_itself() -> None:
    assert Problem.said("something").kind is ProblemKind.OTHER
    conflict = Problem(ProblemKind.CONFLICT, "Replicate is unavailable (only words)")
    assert Problem.said(conflict) is conflict
