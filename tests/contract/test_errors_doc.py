"""docs/errors.md is generated from the code and kept equal to it (issue 9 item 5)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from gateway.api import errors_doc
from gateway.api.schema import build_schema
from gateway.api.view import _HTTP_CODES
from gateway.auth.tokens import InvalidToken
from gateway.core.errors import ErrorCode

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "errors.md"


def test_errors_doc_is_the_generated_one() -> None:
    expected = errors_doc.render()
    found = DOC.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(found.splitlines(True), expected.splitlines(True),
                                        "docs/errors.md", "generated"))
    assert found == expected, f"regenerate: gateway errors-doc > docs/errors.md\n{diff}"


def test_every_code_says_when_it_happens() -> None:
    assert set(errors_doc.WHEN) == {code.value for code in ErrorCode}


def test_every_error_type_of_every_union_has_its_codes() -> None:
    schema = build_schema()._schema
    error = schema.get_type("Error")
    codes = errors_doc.codes_by_type()
    for type_name, graphql_type in schema.type_map.items():
        if getattr(graphql_type, "interfaces", None) and error in graphql_type.interfaces:
            assert codes.get(type_name), type_name


def test_every_transport_code_the_gateway_sends_is_documented() -> None:
    view = (ROOT / "gateway" / "api" / "view.py").read_text(encoding="utf-8")
    sent = set(re.findall(r'_error\(\s*\d+,\s*"([A-Z_]+)"', view))
    sent |= set(_HTTP_CODES.values())
    sent.add(InvalidToken.code)
    documented = {code for _, code, _ in errors_doc.TRANSPORT}
    assert sent <= documented, sent - documented


def test_the_doc_names_a_case_the_black_box_client_met() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert ("| mutation `captureRedemption` | `CaptureExceedsHoldError` | "
            "`CAPTURE_EXCEEDS_HOLD` |") in doc
    assert "| 401 | `UNAUTHENTICATED` |" in doc
    assert "| 429 | `RATE_LIMITED` |" in doc
    assert "IdempotencyKeyReusedError` | `IDEMPOTENCY_KEY_REUSED` |" not in "\n".join(
        line for line in doc.splitlines() if "`previewEarn`" in line)
