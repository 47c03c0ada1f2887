"""Retrain: photo checks, the dataset gate, parameters against the trainer, the claimed
submit, monitoring and the promotion gate."""
