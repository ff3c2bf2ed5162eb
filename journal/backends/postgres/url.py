"""What may be shown of a PostgreSQL URL: the URL without its secrets, messages scrubbed of them.

libpq takes a password from the URL in three forms: ``user:password@`` before the host, and
``password=`` and ``sslpassword=`` (the client key's passphrase) in the query string, where
keys and values are percent-decoded and a key may repeat. ``shown_url`` masks each as
``***``; journal shows only that form (``Journal.root``, ``repr``, errors, logs). A key in
another letter case (which libpq refuses) is masked too: a refusal must not show the value.

Driver messages need more than the masked URL: libpq quotes pieces of a URL it cannot parse
(``invalid percent-encoded token: "..."``), and a password holding a raw ``@`` or ``?`` is
split where libpq, not the user, thinks it ends. ``scrub`` removes every secret value (raw and
decoded) and every quoted piece of the URL that the shown URL hides.

Never in messages: the contents of a ``passfile`` or ``service`` file. journal never opens
them (libpq does, and its errors about them name the file and line, not what they hold).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["scrub", "shown_url"]

MASK = "***"
_SECRET_KEYS = frozenset({"password", "sslpassword"})
# One query parameter: preceded by ? or &, up to the next & (libpq splits on & only).
_PARAM = re.compile(r"(?<=[?&])([^=&?]*)=([^&]*)")
_QUOTED = re.compile(r'"([^"]*)"')


def shown_url(url: str) -> str:
    """``url`` with every password masked (``user:***@``, ``password=***``, ``sslpassword=***``)."""
    shown, _ = _masked(url)
    return shown


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) without anything ``shown_url`` hides."""
    shown, secrets = _masked(url)

    def quoted(match: re.Match[str]) -> str:
        piece = match.group(1)
        # A piece of the URL itself (libpq quotes what it cannot parse) is shown only if the
        # shown URL shows it too.
        hidden = piece and piece in url and piece not in shown
        return f'"{MASK}"' if hidden else match.group(0)

    text = _QUOTED.sub(quoted, text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _masked(url: str) -> tuple[str, list[str]]:
    """The shown URL, and every secret value in ``url`` (raw and decoded, longest first)."""
    secrets: set[str] = set()
    start = url.find("://")
    if start < 0:
        return url, []
    start += 3
    # libpq ends the user information at the first "@" before any "/", urllib at the last "@"
    # before "/", "?" or "#": mask from the first ":" to the last "@" before "/" covers both.
    slash = url.find("/", start)
    end = len(url) if slash < 0 else slash
    at = url.rfind("@", start, end)
    colon = url.find(":", start, end)
    if at >= 0 and 0 <= colon < at:
        region = url[colon + 1 : at]
        secrets.update(_forms(region))
        first_at = region.find("@")
        if first_at >= 0:  # libpq's own reading of the password: up to the first "@"
            secrets.update(_forms(region[:first_at]))
        url = f"{url[: colon + 1]}{MASK}{url[at:]}"

    def param(match: re.Match[str]) -> str:
        key, value = match.group(1), match.group(2)
        if unquote(key).lower() not in _SECRET_KEYS:
            return match.group(0)
        secrets.update(_forms(value))
        return f"{key}={MASK}"

    shown = _PARAM.sub(param, url)
    return shown, sorted((s for s in secrets if s), key=len, reverse=True)


def _forms(value: str) -> tuple[str, str]:
    return value, unquote(value)
