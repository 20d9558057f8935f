"""What an API error says, in one line: a Status body, a proxy's HTML page, a missing type."""

from __future__ import annotations

import json

import pytest
from kubernetes.client.exceptions import ApiException

from prs_operator.kube import RAW_BODY_CHARS, api_reason
from prs_operator.step_inspection import not_found_name


def error(status: int, reason: str, body: str | None) -> ApiException:
    failure = ApiException(status=status, reason=reason)
    failure.body = body
    return failure


NOT_FOUND_STEP = json.dumps({"kind": "Status", "reason": "NotFound", "message":
                             'parallelrunsteps.parallelrun.io "foo" not found',
                             "details": {"name": "foo", "group": "parallelrun.io"}})
NO_SUCH_TYPE = json.dumps({"kind": "Status", "reason": "NotFound",
                           "message": "the server could not find the requested resource",
                           "details": {}})


@pytest.mark.parametrize(("body", "expected"), [
    (NOT_FOUND_STEP, ("NotFound", 'parallelrunsteps.parallelrun.io "foo" not found')),
    ("<html>\n<body>" + "x" * 30000 + "</body></html>", ("Bad Gateway", "<html>")),
    ("y" * 500, ("Bad Gateway", "y" * RAW_BODY_CHARS)),
    ('["a", "list"]', ("Bad Gateway", '["a", "list"]')),
    ("", ("Bad Gateway", "Bad Gateway")),
    (None, ("Bad Gateway", "Bad Gateway")),
])
def test_api_reason_is_one_short_line(body: str | None, expected: tuple[str, str]) -> None:
    assert api_reason(error(502, "Bad Gateway", body)) == expected


@pytest.mark.parametrize(("body", "expected"), [
    (NOT_FOUND_STEP, "foo"), (NO_SUCH_TYPE, None), ("not json", None), ('["x"]', None),
    (json.dumps({"details": "odd"}), None), (None, None),
])
def test_a_missing_object_names_itself_a_missing_type_does_not(body: str | None,
                                                               expected: str | None) -> None:
    assert not_found_name(error(404, "Not Found", body)) == expected
