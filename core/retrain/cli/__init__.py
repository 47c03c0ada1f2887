"""``python -m core.retrain``'s subcommands, one module each (the parser and the command
reference are in ``core/retrain/__main__.py``). Each takes the started runtime and the
acting admin, reads through ``core.retrain.views`` and acts through the same core as the
Retrain page, and hands back an ``Outcome``: the JSON result and the plain-text lines."""
