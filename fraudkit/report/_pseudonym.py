"""Salted pseudonyms for patient ids: what the report shows instead of the raw id."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable


class Pseudonymiser:
    """Map patient ids to short salted pseudonyms, ``P-`` + 8 hex digits of HMAC-SHA256.

    The same id gives the same pseudonym within one report (so an inspector sees that two
    claims share a patient), and nobody without the salt can go back from a pseudonym to
    the id. With no salt a random one is drawn and forgotten: the report then cannot be
    linked to patients at all, except through its claim ids.

    Parameters
    ----------
    salt : str or bytes, optional
        Key of the HMAC. Give one to get the same pseudonyms (and the same report) again.
    patient_ids : iterable of str, optional
        Every patient id of the batch; :meth:`scrub` replaces these where they appear
        inside free text.

    Examples
    --------
    >>> p = Pseudonymiser(salt="inspection-2026-11", patient_ids=["PAT0001", "PAT0002"])
    >>> p("PAT0001")
    'P-ac996bc5'
    >>> p("PAT0001") == p("PAT0001") != p("PAT0002")
    True
    >>> p.scrub("shares patients PAT0001 and PAT0002.")
    'shares patients P-ac996bc5 and P-90ea42e2.'
    """

    prefix = "P-"
    digits = 8

    def __init__(self, salt: str | bytes | None = None, patient_ids: Iterable[str] | None = None):
        if salt is None:
            salt = secrets.token_bytes(32)
        self._key = salt.encode("utf-8") if isinstance(salt, str) else bytes(salt)
        self._known = {str(i) for i in patient_ids} if patient_ids is not None else set()
        self._cache: dict[str, str] = {}

    def __call__(self, patient_id) -> str:
        key = str(patient_id)
        out = self._cache.get(key)
        if out is None:
            digest = hmac.new(self._key, key.encode("utf-8"), hashlib.sha256).hexdigest()
            out = self._cache[key] = self.prefix + digest[: self.digits]
        return out

    # Ids are runs of letters, digits and a few joiners; reasons are written by detectors
    # and may quote an id, so free text is scanned token by token.
    _token = re.compile(r"[\w.\-:/]+")

    def scrub(self, text: str) -> str:
        """``text`` with every known patient id (as a whole token) replaced by its pseudonym."""
        if not self._known or not text:
            return text
        return self._token.sub(self._replace, text)

    def _replace(self, match: re.Match) -> str:
        token = match.group()
        if token in self._known:
            return self(token)
        core = token.strip(".:/-")  # "PAT0002." at the end of a sentence
        if core and core in self._known:
            start = token.index(core)
            return token[:start] + self(core) + token[start + len(core):]
        return token
