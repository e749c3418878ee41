"""Callback URLs on IPv6 addresses that embed an IPv4 one (issue: 6to4 addresses were accepted).

Each form is tried as a literal address, as a host name whose DNS answer is that address (the
answer is the only thing replaced: the check runs as in production), and through the bulk API.
"""

import ipaddress
import socket
from urllib.parse import quote

import pytest

from bulk import callbacks
from bulk.models import BulkJob

# (form, address embedding 127.0.0.1, address embedding 169.254.169.254)
EMBEDDED_FORMS = [
    ("ipv4-mapped", "::ffff:127.0.0.1", "::ffff:169.254.169.254"),
    ("ipv4-compatible", "::127.0.0.1", "::169.254.169.254"),
    ("6to4", "2002:7f00:1::", "2002:a9fe:a9fe::1"),
    # Teredo: server 65.54.227.120, client obfuscated (each bit flipped) in the last 32 bits.
    ("teredo", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:0:4136:e378:8000:63bf:5601:5601"),
    ("nat64", "64:ff9b::127.0.0.1", "64:ff9b::169.254.169.254"),
    # Local-use NAT64 with RFC 6052's /48 layout: bits 48-63, the zero "u" octet, bits 72-87.
    ("nat64-local", "64:ff9b:1:7f00:0:100::", "64:ff9b:1:a9fe:a9:fe00::"),
]
LITERALS = [(form, a) for form, *addresses in EMBEDDED_FORMS for a in addresses]


def literal_url(address: str) -> str:
    return f"http://[{address}]:8080/hook"


@pytest.mark.parametrize(("form", "address"), LITERALS)
def test_the_embedded_ipv4_address_is_found(form, address):
    embedded = callbacks.embedded_ipv4(ipaddress.IPv6Address(address))
    assert {str(ip) for ip in embedded} & {"127.0.0.1", "169.254.169.254"}, (form, embedded)


@pytest.mark.parametrize(("form", "address"), LITERALS)
def test_literal_addresses_embedding_a_private_ipv4_are_refused(form, address):
    with pytest.raises(callbacks.CallbackRefused, match="embeds|not globally reachable"):
        callbacks.check_callback_url(literal_url(address), allow_private=False)


def resolving_to(monkeypatch, address: str) -> None:
    """The DNS answer for every name is ``address`` (port and socket type as asked)."""

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]

    monkeypatch.setattr(callbacks.socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(("form", "address"), LITERALS)
def test_a_host_name_resolving_to_such_an_address_is_refused(monkeypatch, form, address):
    resolving_to(monkeypatch, address)
    with pytest.raises(callbacks.CallbackRefused, match="hooks.example.com resolves to"):
        callbacks.check_callback_url("https://hooks.example.com/bulk", allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "2002:808:808::",  # 6to4 of a public address: relays are deprecated, not global (IANA)
        "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo of a public client: not global either
        "64:ff9b:1:808:8:800::",  # local-use NAT64: the operator's layout is unknown
        "::8.8.8.8",  # IPv4-compatible: deprecated, reserved
    ],
)
def test_transition_ranges_that_are_not_globally_reachable_are_refused(address):
    with pytest.raises(callbacks.CallbackRefused, match="not globally reachable"):
        callbacks.check_callback_url(literal_url(address), allow_private=False)


@pytest.mark.parametrize(
    "address",
    [
        "2606:4700:4700::1111",  # a plain global IPv6 address
        "::ffff:8.8.8.8",  # IPv4-mapped: the IPv4 address is where it goes
        "64:ff9b::8.8.8.8",  # DNS64/NAT64 synthesizes these for IPv4-only hosts
    ],
)
def test_globally_reachable_addresses_are_accepted(address):
    target = callbacks.check_callback_url(literal_url(address), allow_private=False)
    assert ipaddress.ip_address(target.address) == ipaddress.ip_address(address)


@pytest.mark.parametrize(("form", "address"), LITERALS)
def test_the_setting_still_allows_private_networks(form, address):
    target = callbacks.check_callback_url(literal_url(address), allow_private=True)
    assert target.port == 8080


# --- through the API -------------------------------------------------------------------------


@pytest.fixture
def api_client(tenant, sa_instance, bulk_in_test_thread):
    return tenant.element_client(sa_instance["token"])


def submit(client, callback_url: str):
    return client.post(
        f"/elements/api-v2/bulk/query?q={quote('select * from users')}",
        HTTP_ELEMENTS_ASYNC_CALLBACK_URL=callback_url,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("form", "address"), [(f, a) for f, a, _ in EMBEDDED_FORMS])
def test_the_bulk_api_refuses_each_form(api_client, settings, form, address):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": False}
    response = submit(api_client, literal_url(address))
    assert response.status_code == 400, response.content
    body = response.json()
    assert [e["field"] for e in body["errors"]] == ["Elements-Async-Callback-Url"]
    assert not BulkJob.objects.exists()


@pytest.mark.django_db
def test_the_bulk_api_refuses_a_name_resolving_to_6to4_metadata(api_client, settings, monkeypatch):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": False}
    resolving_to(monkeypatch, "2002:a9fe:a9fe::1")
    response = submit(api_client, "https://hooks.example.com/bulk")
    assert response.status_code == 400, response.content
    assert "169.254.169.254" in response.json()["errors"][0]["message"]


@pytest.mark.django_db
def test_the_bulk_api_accepts_them_when_private_networks_are_allowed(api_client, settings):
    settings.PLATFORM = {**settings.PLATFORM, "CALLBACK_ALLOW_PRIVATE_NETWORKS": True}
    response = submit(api_client, literal_url("2002:7f00:1::"))
    assert response.status_code == 200, response.content
    assert BulkJob.objects.get().callback_url == literal_url("2002:7f00:1::")
