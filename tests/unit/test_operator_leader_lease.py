"""Who may hold the Lease: table-driven over the Lease as another operator left it."""

from __future__ import annotations

from typing import Any

import pytest

from prs_operator.leader_lease import claim

NOW = "2027-01-15T08:00:00.000000Z"
THEIRS = {"holderIdentity": "other", "leaseDurationSeconds": 15,
          "acquireTime": "2027-01-15T07:00:00.000000Z",
          "renewTime": "2027-01-15T07:59:59.000000Z", "leaseTransitions": 2}
MINE = {**THEIRS, "holderIdentity": "me"}


@pytest.mark.parametrize(("spec", "unchanged_for", "expected"), [
    pytest.param(None, 0.0, {"holderIdentity": "me", "leaseDurationSeconds": 15,
                             "acquireTime": NOW, "renewTime": NOW, "leaseTransitions": 0},
                 id="no lease yet"),
    pytest.param(THEIRS, 14.9, None, id="theirs, still running"),
    pytest.param(THEIRS, 15.0, {"holderIdentity": "me", "leaseDurationSeconds": 15,
                                "acquireTime": NOW, "renewTime": NOW, "leaseTransitions": 3},
                 id="theirs, run out: taken over"),
    pytest.param({**THEIRS, "leaseDurationSeconds": 60}, 30.0, None,
                 id="their own longer duration counts"),
    pytest.param(MINE, 100.0, {"holderIdentity": "me", "leaseDurationSeconds": 15,
                               "acquireTime": MINE["acquireTime"], "renewTime": NOW,
                               "leaseTransitions": 2}, id="mine: renewed"),
    pytest.param({**THEIRS, "holderIdentity": ""}, 0.0,
                 {"holderIdentity": "me", "leaseDurationSeconds": 15, "acquireTime": NOW,
                  "renewTime": NOW, "leaseTransitions": 2}, id="released: taken at once"),
])
def test_claim(spec: dict[str, Any] | None, unchanged_for: float,
               expected: dict[str, Any] | None) -> None:
    assert claim(spec, "me", unchanged_for, NOW) == expected
