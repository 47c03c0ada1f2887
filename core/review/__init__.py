"""Blind pairwise review of generated images: the statistics (see ``core.review.stats``)."""
