"""Path parameters as API Gateway delivers them: one place that decodes them.

API Gateway REST (Lambda proxy integration) puts the request path in the event as the client
sent it, still percent-encoded, and each `pathParameters` value decoded once. An id such as
`qa/c2` or `qa#c3` (the event contract allows / # : = + in ids) reaches us as `qa%2Fc2` inside
its own path segment. Powertools' resolver matches routes on that encoded `path` (a segment
never holds a raw "/", so routing stays right) but hands the route the segment as it matched,
still encoded; this resolver decodes each one exactly once, like `pathParameters`. A literal "+"
in a path is a plus (only query strings turn "+" into a space), so `unquote`, not `unquote_plus`;
bytes that are not UTF-8 become U+FFFD, which no id accepts: a 400, never a 500.
"""

from __future__ import annotations

from re import Match
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver


class DecodedPathResolver(APIGatewayRestResolver):
    """An APIGatewayRestResolver whose route functions get decoded path parameters."""

    def _convert_matches_into_route_keys(self, match: Match[str]) -> dict[str, str]:
        return {name: unquote(value) for name, value in match.groupdict().items()}
