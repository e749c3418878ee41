"""Admin login throttling with django-axes (settings: AXES_*, from ADMIN_LOGIN_* in conf.py).

Failures are counted per username and client address together: an attacker at one address is
locked out of that account, while the account's owner elsewhere can still log in (locking by
username alone would let anyone lock an operator out). ``python manage.py axes_reset_username``
and friends unlock (README, "Admin login lockout").
"""

from __future__ import annotations

import ipaddress

from axes.helpers import get_cool_off
from django.shortcuts import render

from platform_core.conf import platform_settings


def client_ip(request) -> str | None:
    """The address failures are counted against (``AXES_CLIENT_IP_CALLABLE``).

    The connection's address unless ``ADMIN_LOGIN_TRUSTED_PROXIES`` says how many reverse
    proxies in front each append the address they received from to ``X-Forwarded-For``; then
    the entry the outermost of them wrote. Entries to the left of it are whatever the client
    sent, so they are never read: a forged header cannot choose the address."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = platform_settings.ADMIN_LOGIN_TRUSTED_PROXIES
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-proxies]))
    except ValueError:
        return remote


def lockout_response(request, original_response=None, credentials=None):
    """A 429 page (``AXES_LOCKOUT_CALLABLE``) that says when to try again and names neither the
    account nor the address."""
    cool_off = get_cool_off(request)
    response = render(
        request,
        "admin/login_locked_out.html",
        {
            "title": "Login locked",
            "cool_off_minutes": int(cool_off.total_seconds() // 60) if cool_off else None,
        },
        status=429,
    )
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
