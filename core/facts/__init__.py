"""Everything known about one user, in one home.

``read_user_facts`` (``core.facts.user``) is the entry point the User page, Compare and
Retrain call: the app row's model and versions, the user's ledger trainings with their
dataset facts, the decisions taken, and the training history's freshness (``History``).
``gather_facts`` (``core.facts.gather``) is the part the scan's batches call, on a ledger
their plan has just synced. Pages never list the fleet's trainings: they ask the workers
(``request_history_refresh``) and read the progress (``read_history``).
"""

from core.facts.gather import gather_facts, model_facts
from core.facts.history import History, ledger_gap, read_history, request_history_refresh
from core.facts.user import KnownUser, read_user_facts

__all__ = [
    "History",
    "KnownUser",
    "gather_facts",
    "ledger_gap",
    "model_facts",
    "read_history",
    "read_user_facts",
    "request_history_refresh",
]
