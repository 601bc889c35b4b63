"""GET /customers/{id}/contact-state for an id the governor has never seen says so (`known`, `note`)."""

from __future__ import annotations

from typing import Any

from tests.conftest import detail, drain, put_events
from tests.integration.test_admin_api import admin_environment, call

__all__ = ["admin_environment"]  # the autouse fixture, imported for its side effect on this module


def test_a_customer_never_seen_gets_the_empty_state_with_a_note_saying_so() -> None:
    # Given a governor that has never heard of cust-nobody
    # When an admin asks for their contact state
    status, _, state = call("GET", "/customers/cust-nobody/contact-state")
    # Then the answer is still 200 with the empty state, but says the id was never seen
    assert status == 200
    assert state["known"] is False
    assert state["note"] == "the governor has never seen customer cust-nobody: no decision, no admin action"
    assert state["last_entries"] == []


def test_a_customer_with_a_decision_or_an_opt_out_is_known(aws: Any) -> None:
    # Given one customer with a decision and another only opted out (before any interaction)
    put_events(aws, [detail(event_id="e-known", interaction_id="i-known", customer_id="cust-decided")])
    drain(aws)
    call("PUT", "/customers/cust-opted/preferences", {"all": True, "source": "complaint 9"})
    # When an admin asks for their contact states
    decided = call("GET", "/customers/cust-decided/contact-state")[2]
    opted = call("GET", "/customers/cust-opted/contact-state")[2]
    # Then both are known, with no note
    assert (decided["known"], decided["note"]) == (True, None)
    assert (opted["known"], opted["note"]) == (True, None)
