"""Keeping the token out of sight: it travels in every URL, and some gateways echo it in their errors."""

from __future__ import annotations

import functools
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "scrub_secret", "secret_forms"]

REDACTED = "***"


@functools.lru_cache(maxsize=16)
def secret_forms(secret: str) -> tuple[str, ...]:
    """The secret as it may appear in text, raw or URL-encoded as it travels in a query string; longest first."""
    forms = {secret, quote(secret), quote(secret, safe=""), quote_plus(secret)} if secret else set()
    return tuple(sorted(forms, key=len, reverse=True))


def scrub_secret(text: str, secret: str) -> str:
    """Replace every form of the secret in ``text`` with ``***``."""
    for form in secret_forms(secret):
        text = text.replace(form, REDACTED)
    return text
