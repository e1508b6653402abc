"""The pure parts of webhooks: the back-off schedule's ceilings and jitter, the signature
against a known vector computed by hand, event-type filters and URL checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from gateway.core.errors import InvalidInput
from gateway.webhooks import signing, subscriptions
from gateway.worker import backoff


def test_the_ceilings_double_from_5_seconds_up_to_an_hour() -> None:
    assert [backoff.ceiling_s(n) for n in range(1, 13)] == [
        5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    assert backoff.ceiling_s(10_000) == 3600


def test_full_jitter_draws_anywhere_below_the_ceiling() -> None:
    rng = random.Random(7)
    draws = [backoff.delay(4, rng).total_seconds() for _ in range(2000)]
    assert 0 <= min(draws) < 2 and 38 < max(draws) <= 40  # the whole range [0, 40] is used
    assert 18 < sum(draws) / len(draws) < 22  # uniform: the mean is half the ceiling


def test_the_signature_is_hmac_sha256_of_id_timestamp_body_under_the_decoded_key() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"type":"points.earned"}'
    expected = base64.b64encode(hmac.new(key, b"evt_1.1700000000." + body,
                                         hashlib.sha256).digest()).decode()
    assert signing.sign(secret, "evt_1", 1_700_000_000, body) == f"v1,{expected}"
    header = signing.signature_header([secret, signing.new_secret()], "evt_1", 1_700_000_000,
                                      body)
    assert header.split(" ")[0] == f"v1,{expected}" and len(header.split(" ")) == 2


def test_a_new_secret_is_32_random_bytes_behind_whsec() -> None:
    one, two = signing.new_secret(), signing.new_secret()
    assert one != two and len(signing.key_of(one)) == 32


def test_event_type_filters() -> None:
    assert subscriptions.check_event_types(["points.*", "member.linked", "points.*"]) == (
        "member.linked", "points.*")
    assert subscriptions.matches(("points.*",), "points.earned")
    assert not subscriptions.matches(("points.*",), "member.linked")
    assert subscriptions.matches(("*",), "campaign.published")
    for bad in ([], ["points.earnt"], ["nothing.*"]):
        with pytest.raises(InvalidInput) as refused:
            subscriptions.check_event_types(bad)
        assert refused.value.field == "eventTypes"


@pytest.mark.parametrize(("url", "production"), [
    ("http://example.com/hook", False),  # http only to localhost
    ("http://localhost:8080/hook", True),  # and never in production
    ("https://127.0.0.1/hook", True),  # private addresses in production
    ("https://10.0.0.7/hook", True),
    ("https://user:pw@example.com/hook", False),
    ("ftp://example.com/hook", False),
    ("https:///nohost", False),
    ("https://example.com:99999/", False),
    ("https://example.com/" + "a" * 2048, False),
])
def test_refused_urls_name_the_field(url: str, production: bool) -> None:
    with pytest.raises(InvalidInput) as refused:
        subscriptions.check_url(url, production=production)
    assert refused.value.field == "url"


def test_accepted_urls() -> None:
    assert subscriptions.check_url("https://hooks.example.com/a?b=1", production=True)
    assert subscriptions.check_url("http://127.0.0.1:9000/hooks", production=False)
