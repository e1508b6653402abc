"""Loading and validating partner TOML (partners.loader): catalog, bad files, JSON round trip."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.money import Rounding
from partners.config import (
    BurnRule,
    Channel,
    EarnRule,
    PartnerKind,
    QuantityEarn,
    RuleVersion,
    SettlementPrices,
)
from partners.loader import (
    CATALOG_DIR,
    PartnerConfigError,
    load_catalog,
    rule_version_from_dict,
    rule_version_from_mapping,
    rule_version_to_dict,
)

GOOD = """\
id = "{pid}"
name = "Test Shop"
kind = "merchant"
currency = "UAH"

[policy]
negative_balance_after_return = true

[[rules]]
version = 1
effective_from = "2026-01-01T00:00:00+02:00"

[rules.earn]
points = 1
per_amount_minor = 1000
channel_multipliers = {{ app = "2" }}
category_multipliers = {{ organic = "3/2" }}

[rules.burn]
point_value_minor = "10"
max_basket_share = "0.5"

[rules.settlement]
currency = "EUR"
price_per_point_issued_minor = "0.25"
price_per_point_redeemed_minor = "0.22"
"""


def write(tmp_path: Path, text: str, name: str = "shop") -> Path:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def good(pid: str = "shop") -> str:
    return GOOD.format(pid=pid)


def test_demo_catalog_loads() -> None:
    catalog = load_catalog(CATALOG_DIR)
    assert sorted(catalog) == ["charity", "electronics", "fuel", "grocery"]
    grocery = catalog["grocery"]
    assert grocery.currency == "UAH"
    assert grocery.policy.negative_balance_after_return is True
    assert [r.version for r in grocery.rules] == [1, 2]
    v1 = grocery.rules[0]
    assert v1.effective_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert v1.earn is not None and v1.burn is not None
    assert (v1.earn.points, v1.earn.per_amount_minor) == (1, 1000)
    assert v1.earn.channel_multipliers == {"app": Fraction(2)}
    assert v1.burn.point_value_minor == Fraction(10)
    assert v1.burn.max_basket_share == Fraction(1, 2)
    assert v1.settlement.price_per_point_issued_minor == Fraction(1, 4)
    assert catalog["fuel"].rules[0].earn is not None
    assert catalog["fuel"].rules[0].earn.quantity_earn == (QuantityEarn("fuel", 1, 1000),)
    charity = catalog["charity"]
    assert charity.kind is PartnerKind.CHARITY
    assert charity.rules[0].earn is None and charity.rules[0].burn is not None
    for definition in catalog.values():
        assert all(r.settlement.currency == "EUR" for r in definition.rules)
        assert definition.rules[0].effective_from <= datetime(2026, 1, 1, tzinfo=UTC)


def test_good_file_converts_offset_to_utc(tmp_path: Path) -> None:
    shop = load_catalog(write(tmp_path, good()))["shop"]
    assert shop.rules[0].effective_from == datetime(2025, 12, 31, 22, 0, tzinfo=UTC)
    assert shop.rules[0].effective_from.tzinfo is UTC
    assert shop.rules[0].earn is not None
    assert shop.rules[0].earn.category_multipliers == {"organic": Fraction(3, 2)}
    assert shop.policy.hold_ttl_seconds == 900  # default


def test_error_message_names_file_and_field(tmp_path: Path) -> None:
    write(tmp_path, good().replace("per_amount_minor = 1000", "per_amount_minor = 0"))
    with pytest.raises(PartnerConfigError) as exc:
        load_catalog(tmp_path)
    path = str(tmp_path / "shop.toml")
    assert str(exc.value) == (
        f"{path}: rules[0].earn.per_amount_minor: must be a positive integer, got 0"
    )
    assert (exc.value.path, exc.value.field) == (path, "rules[0].earn.per_amount_minor")


BAD_FILES: list[tuple[str, str, str, str]] = [
    # (description, (old, new) applied to GOOD, expected field, message fragment)
    ("unknown top key", 'kind = "merchant"', 'kind = "merchant"\ncolour = "red"', "colour"),
    ("unknown earn key", "points = 1\n", "points = 1\nbonus = 2\n", "rules[0].earn.bonus"),
    ("float ratio", 'max_basket_share = "0.5"', "max_basket_share = 0.5",
     "rules[0].burn.max_basket_share"),
    ("float multiplier", 'app = "2"', "app = 2.0", "rules[0].earn.channel_multipliers.app"),
    ("unknown channel", 'app = "2"', 'kiosk = "2"', "rules[0].earn.channel_multipliers.kiosk"),
    ("share above one", 'max_basket_share = "0.5"', 'max_basket_share = "3/2"',
     "rules[0].burn.max_basket_share"),
    ("zero denominator", 'max_basket_share = "0.5"', 'max_basket_share = "1/0"',
     "rules[0].burn.max_basket_share"),
    ("ratio text", 'point_value_minor = "10"', 'point_value_minor = "ten"',
     "rules[0].burn.point_value_minor"),
    ("string for int", "per_amount_minor = 1000", 'per_amount_minor = "1000"',
     "rules[0].earn.per_amount_minor"),
    ("float for int", "per_amount_minor = 1000", "per_amount_minor = 1000.0",
     "rules[0].earn.per_amount_minor"),
    ("bool for int", "points = 1\n", "points = true\n", "rules[0].earn.points"),
    ("bad currency", 'currency = "UAH"', 'currency = "uah"', "currency"),
    ("bad settlement currency", 'currency = "EUR"', 'currency = "EURO"',
     "rules[0].settlement.currency"),
    ("no offset", '"2026-01-01T00:00:00+02:00"', '"2026-01-01T00:00:00"',
     "rules[0].effective_from"),
    ("local toml datetime", '"2026-01-01T00:00:00+02:00"', "2026-01-01T00:00:00",
     "rules[0].effective_from"),
    ("date only", '"2026-01-01T00:00:00+02:00"', '"2026-01-01"', "rules[0].effective_from"),
    ("bad rounding", "points = 1\n", 'points = 1\nrounding = "bankers"\n',
     "rules[0].earn.rounding"),
    ("id not the file name", 'id = "shop"', 'id = "other"', "id"),
    ("merchant without earn", "[rules.earn]\npoints = 1\nper_amount_minor = 1000\n"
     'channel_multipliers = { app = "2" }\ncategory_multipliers = { organic = "3/2" }\n', "",
     "rules[0].earn"),
    ("charity with earn", 'kind = "merchant"', 'kind = "charity"', "rules[0].earn"),
    ("bad kind", 'kind = "merchant"', 'kind = "shop"', "kind"),
    ("misspelt settlement", "[rules.settlement]", "[rules.settlement_typo]",
     "rules[0].settlement_typo"),
    ("negative min spend", "points = 1\n", "points = 1\nmin_spend_minor = -1\n",
     "rules[0].earn.min_spend_minor"),
    ("policy type", "negative_balance_after_return = true", "negative_balance_after_return = 1",
     "policy.negative_balance_after_return"),
    ("negative backdating window", "negative_balance_after_return = true",
     "negative_balance_after_return = true\nmax_backdate_days = -1", "policy.max_backdate_days"),
    ("unit price range upside down", "negative_balance_after_return = true",
     "negative_balance_after_return = true\nunit_price_min_minor = 500\n"
     "unit_price_max_minor = 100", "policy.unit_price_max_minor"),
]  # fmt: skip


@pytest.mark.parametrize(("desc", "old", "new", "field"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_names_the_field(
    tmp_path: Path, desc: str, old: str, new: str, field: str
) -> None:
    text = good()
    assert old in text, desc
    write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(PartnerConfigError) as exc:
        load_catalog(tmp_path)
    assert exc.value.path == str(tmp_path / "shop.toml")
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{tmp_path / 'shop.toml'}: {field}: ")


def test_float_error_tells_user_to_quote(tmp_path: Path) -> None:
    write(tmp_path, good().replace('max_basket_share = "0.5"', "max_basket_share = 0.5"))
    with pytest.raises(PartnerConfigError, match=re.escape('quote it ("0.5")')):
        load_catalog(tmp_path)


@pytest.mark.parametrize("pid", ["A-shop", "x", "9shop", "shop_1", "s" * 64])
def test_bad_partner_ids(tmp_path: Path, pid: str) -> None:
    write(tmp_path, good(pid), name=pid)
    with pytest.raises(PartnerConfigError) as exc:
        load_catalog(tmp_path)
    assert exc.value.field == "id"


SECOND_VERSION = """
[[rules]]
version = {version}
effective_from = "{effective_from}"
[rules.earn]
points = 2
per_amount_minor = 1000
[rules.settlement]
currency = "EUR"
price_per_point_issued_minor = "0.25"
price_per_point_redeemed_minor = "0.22"
"""


@pytest.mark.parametrize(
    ("version", "effective_from", "field"),
    [
        (1, "2027-01-01T00:00:00Z", "rules[1].version"),
        (2, "2025-12-31T22:00:00Z", "rules[1].effective_from"),  # equal instant to v1's
        (2, "2025-06-01T00:00:00Z", "rules[1].effective_from"),
    ],
)
def test_versions_strictly_increase(
    tmp_path: Path, version: int, effective_from: str, field: str
) -> None:
    write(tmp_path, good() + SECOND_VERSION.format(version=version, effective_from=effective_from))
    with pytest.raises(PartnerConfigError) as exc:
        load_catalog(tmp_path)
    assert exc.value.field == field


def test_second_version_loads(tmp_path: Path) -> None:
    text = good() + SECOND_VERSION.format(version=5, effective_from="2027-01-01T00:00:00Z")
    shop = load_catalog(write(tmp_path, text))["shop"]
    assert [r.version for r in shop.rules] == [1, 5]


def test_invalid_toml_and_missing_dir(tmp_path: Path) -> None:
    write(tmp_path, 'id = "shop\n')
    with pytest.raises(PartnerConfigError, match="invalid TOML"):
        load_catalog(tmp_path)
    with pytest.raises(PartnerConfigError, match="not a directory"):
        load_catalog(tmp_path / "missing")


def test_rule_version_from_mapping_for_the_cli() -> None:
    data = {
        "version": 3,
        "effective_from": "2027-06-01T00:00:00Z",
        "burn": {"point_value_minor": "10"},
        "settlement": {
            "currency": "EUR",
            "price_per_point_issued_minor": "0",
            "price_per_point_redeemed_minor": "0.22",
        },
    }
    rv = rule_version_from_mapping("charity", data, where="--rule new.toml")
    assert rv == RuleVersion(
        "charity", 3, datetime(2027, 6, 1, tzinfo=UTC), None, BurnRule(Fraction(10)),
        SettlementPrices("EUR", Fraction(0), Fraction(22, 100)),
    )  # fmt: skip
    with pytest.raises(PartnerConfigError) as exc:
        rule_version_from_mapping("charity", {**data, "version": 0}, where="--rule new.toml")
    assert str(exc.value) == "--rule new.toml: version: must be a positive integer, got 0"


# -- canonical JSON round trip -----------------------------------------------------------------

positive = st.integers(min_value=1, max_value=10**9)
ratios_pos = st.fractions(min_value=Fraction(1, 10**6), max_value=10**6, max_denominator=10**6)
ratios_nonneg = st.fractions(min_value=0, max_value=10**6, max_denominator=10**6)
shares = st.fractions(min_value=Fraction(1, 10**6), max_value=1, max_denominator=10**6)
categories = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)

earn_rules = st.builds(
    EarnRule,
    points=positive,
    per_amount_minor=positive,
    rounding=st.sampled_from(list(Rounding)),
    min_spend_minor=st.integers(min_value=0, max_value=10**9),
    cap_per_transaction=st.none() | positive,
    cap_per_member_daily=st.none() | positive,
    channel_multipliers=st.dictionaries(st.sampled_from([c.value for c in Channel]), ratios_pos),
    category_multipliers=st.dictionaries(categories, ratios_nonneg, max_size=3),
    quantity_earn=st.lists(
        st.builds(QuantityEarn, category=categories, points=positive, per_quantity_milli=positive),
        max_size=3,
        unique_by=lambda q: q.category,
    ).map(tuple),
    expiry_days=positive,
    pending_days=st.integers(min_value=0, max_value=365),
)
burn_rules = st.builds(BurnRule, point_value_minor=ratios_pos, max_basket_share=shares,
                       min_points=positive)  # fmt: skip
settlements = st.builds(
    SettlementPrices,
    currency=st.from_regex(r"[A-Z]{3}", fullmatch=True),
    price_per_point_issued_minor=ratios_nonneg,
    price_per_point_redeemed_minor=ratios_nonneg,
    fee_share=st.fractions(min_value=0, max_value=1, max_denominator=10**6),
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
rule_versions = st.builds(
    RuleVersion,
    partner_id=st.from_regex(r"[a-z][a-z0-9-]{1,20}", fullmatch=True),
    version=positive,
    effective_from=st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=offsets
    ),
    earn=st.none() | earn_rules,
    burn=st.none() | burn_rules,
    settlement=settlements,
)


@given(rule_versions)
def test_rule_version_dict_round_trip_is_exact(rv: RuleVersion) -> None:
    encoded = rule_version_to_dict(rv)
    through_json = json.loads(json.dumps(encoded))
    decoded = rule_version_from_dict(through_json)
    assert decoded == rv
    assert decoded.effective_from.tzinfo is UTC
    assert rule_version_to_dict(decoded) == encoded


def test_rule_version_dict_form_is_readable() -> None:
    grocery_v1 = load_catalog(CATALOG_DIR)["grocery"].rules[0]
    d = rule_version_to_dict(grocery_v1)
    assert d["effective_from"] == "2026-01-01T00:00:00Z"
    assert d["burn"] == {"point_value_minor": "10", "max_basket_share": "1/2", "min_points": 50}
    assert d["earn"]["category_multipliers"] == {"organic": "3/2"}
    assert d["settlement"]["price_per_point_issued_minor"] == "1/4"


def test_every_version_needs_settlement() -> None:
    data = {"version": 1, "effective_from": "2026-01-01T00:00:00Z", "burn": {"min_points": 1}}
    with pytest.raises(PartnerConfigError) as exc:
        rule_version_from_mapping("charity", data, where="snippet.toml")
    assert (exc.value.field, exc.value.message) == ("burn.point_value_minor", "is required")
    del data["burn"]
    with pytest.raises(PartnerConfigError) as missing:
        rule_version_from_mapping("charity", data, where="snippet.toml")
    assert str(missing.value) == "snippet.toml: settlement: is required"
