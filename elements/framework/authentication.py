"""How an element proves itself to its vendor: one strategy per element, one hook.

An element names its strategy once (``Element(authentication=BasicAuthentication(...))``); the
vendor client of every call, credential check and bulk job adds the strategy's headers to each
vendor request, so handlers never build credentials. A strategy reads only the instance's
configuration (decrypted for the call) and never logs it.

- ``BasicAuthentication``: HTTP Basic from two configuration keys (Mixpanel).
- ``ApiKeyHeader``: one configuration key sent in a header of the vendor's choosing
  (``X-Api-Key: …``, ``Authorization: Bearer …`` with ``prefix="Bearer "``).
- OAuth2 (the seam, not built yet): a strategy whose ``type`` is ``"oauth2"`` (the catalog
  then says ``typeOauth: true``) and whose ``headers`` returns ``Authorization: Bearer`` with
  the configuration's access token. Refreshing an expired token needs two things this module
  does not have: the refresh token's exchange (a vendor call of the element's own, given the
  client id and secret as secret ``ConfigField``s) and a place to store the new tokens (an
  instance service writing the encrypted configuration). They would arrive as a
  ``refresh(configuration) -> dict`` hook on the strategy, which the vendor client calls once
  on a 401 before it retries.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass


def basic_auth(username: str, password: str = "") -> str:
    """The value of an HTTP Basic ``Authorization`` header."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class Authentication:
    """The strategy's interface: the catalog's ``authentication.type``, and the headers that
    authenticate one vendor request of an instance with this configuration."""

    type: str = "none"

    def headers(self, configuration: Mapping) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class BasicAuthentication(Authentication):
    """HTTP Basic: ``username_key`` and ``password_key`` name configuration keys; a missing or
    empty password is sent empty (Mixpanel's API secret alone is a username)."""

    username_key: str = "username"
    password_key: str = "password"
    type: str = "basic"

    def headers(self, configuration: Mapping) -> dict[str, str]:
        username = configuration.get(self.username_key) or ""
        password = configuration.get(self.password_key) or ""
        return {"Authorization": basic_auth(str(username), str(password))}


@dataclass(frozen=True)
class ApiKeyHeader(Authentication):
    """One configuration value in one header: ``header: prefix + configuration[key]``."""

    key: str
    header: str = "X-Api-Key"
    prefix: str = ""
    type: str = "apiKey"

    def headers(self, configuration: Mapping) -> dict[str, str]:
        value = configuration.get(self.key)
        return {self.header: f"{self.prefix}{value}"} if value else {}
