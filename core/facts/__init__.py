"""Everything known about one user, in one home.

- ``read_stored_user`` (``core.facts.stored``): what the databases hold (the app's rows,
  the ledger's trainings with their dataset facts). Compare and Retrain start here.
- ``read_user_facts`` (``core.facts.user``): that plus Replicate's answers (the row's
  model and versions, the other models its trainings went to) and the decisions taken,
  as the drift engine's ``UserFacts``, with the training history's freshness
  (``History``). The User page's diagnosis and the repairs read this.
- ``gather_facts`` (``core.facts.gather``): the part the scan's batches call, on a
  ledger their plan has just synced.

Pages never list the fleet's trainings: they ask the workers
(``request_history_refresh``) and read the progress (``read_history``).
"""

from core.facts.gather import gather_facts, model_facts
from core.facts.history import History, ledger_gap, read_history, request_history_refresh
from core.facts.stored import StoredUser, read_stored_user
from core.facts.user import KnownUser, read_user_facts

__all__ = [
    "History",
    "KnownUser",
    "StoredUser",
    "gather_facts",
    "ledger_gap",
    "model_facts",
    "read_history",
    "read_stored_user",
    "read_user_facts",
    "request_history_refresh",
]
