"""The SSELFIE app's own contract: what the app sends Replicate (its trainer, its training
and generation inputs, its names), as the app does it (``docs/app-facts.md``).

The domain (comparisons rebuild the app's input; retrains start from the app's trainer and
parameters) and the demo world (made the way the app made its users' histories) both
read it here; it imports nothing of either.
"""
