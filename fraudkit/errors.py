"""The base of every error fraudkit raises about its user's input.

The CLI turns any :class:`FraudkitError` into a one-paragraph message and exit code 2;
anything else is a bug and keeps its traceback.
"""


class FraudkitError(ValueError):
    """Bad input: a batch, scenario, model, outcomes file or option value that cannot be used."""


class ModelError(FraudkitError):
    """A model file that cannot be trusted or used (missing, hash mismatch, wrong kind)."""
