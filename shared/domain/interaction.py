"""What kind of interaction closed, and how: the enums the event and the decision record share.

Apart from shared.domain.events so that a function that reads decisions (the admin API) does not
compile and build the event contract at its cold import (issue 12, goal 3); events re-exports them.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    PHONE = "phone"
    CHAT = "chat"
    EMAIL = "email"
    WEB = "web"
    SOCIAL = "social"
    IN_PERSON = "in_person"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"
    ESCALATED = "escalated"
    ABANDONED = "abandoned"
