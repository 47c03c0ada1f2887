"""The watch's table, ``ops.retrain_reviews``: defined with the ledger's tables
(``core.ledger.reviews``), since the user's facts read it too."""

from core.ledger.reviews import ALERT_STATUSES, REVIEW_STATUSES, VERDICTS, retrain_reviews

__all__ = ["ALERT_STATUSES", "REVIEW_STATUSES", "VERDICTS", "retrain_reviews"]
