"""Signed pagination tokens, one format for every API that pages (decisions, policy versions).

A token is base64url(version byte | issued-at | deflated JSON state | HMAC-SHA256). The MAC covers the
version, the issued-at time, the state, what kind of listing it pages and the fingerprint of the
query it was given for, so a caller can neither edit the state (a day a year away, a key of another
partition) nor replay a token against another query or another API. Tokens expire, are bounded in
size before anything is decoded, and every refusal is the same 400 naming `next_token`: a caller
learns nothing about why a forged token failed.

The key is the stack's own secret (template.yaml: SigningSecret, Secrets Manager), read once per
process on first use, never at import.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import struct
import threading
import time
import zlib
from collections.abc import Callable
from typing import Any

from shared.adapters import aws
from shared.domain.errors import ConfigurationError, InvalidInput

VERSION = 1
# A range page's token holds the day and the last position read (a customer page's, its index
# key): well under 1 KB. Far below API Gateway's 10 KB request line, and checked before anything
# is decoded.
MAX_TOKEN_CHARS = 4096
MAX_STATE_BYTES = 65536
TOKEN_TTL_SECONDS = 24 * 3600
_HEADER = struct.Struct(">BQ")  # version, issued-at (unix seconds)
_MAC_BYTES = hashlib.sha256().digest_size


def refused() -> InvalidInput:
    return InvalidInput(
        "next_token is not a token this query gave out in the last 24 hours; repeat the query without it",
        [{"field": "next_token", "message": "is invalid or expired"}],
    )


class SecretKey:
    """The signing key: the SecretString of a Secrets Manager secret, fetched once per process."""

    def __init__(self, secret_arn: str | None, client: Any = None) -> None:
        self.secret_arn = secret_arn
        self._client = client
        self._lock = threading.Lock()
        self._key: bytes | None = None

    def __call__(self) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._fetch()
        return self._key

    def _fetch(self) -> bytes:
        if not self.secret_arn:
            raise ConfigurationError("SIGNING_SECRET_ARN is not set: this function cannot page")
        secrets = self._client or aws.client("secretsmanager")
        value = secrets.get_secret_value(SecretId=self.secret_arn)["SecretString"]
        if len(value) < 32:
            raise ConfigurationError("the token signing secret is shorter than 32 characters")
        return str(value).encode()


class TokenSigner:
    def __init__(
        self,
        key: Callable[[], bytes],
        ttl_seconds: int = TOKEN_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    def encode(self, kind: str, fingerprint: str, state: dict[str, Any]) -> str:
        header = _HEADER.pack(VERSION, int(self.clock()))
        payload = zlib.compress(json.dumps(state, sort_keys=True, separators=(",", ":")).encode(), 9)
        token = base64.urlsafe_b64encode(header + payload + self._mac(kind, fingerprint, header + payload)).decode()
        if len(token) > MAX_TOKEN_CHARS:  # the API would then refuse its own token
            raise ValueError(f"a {kind} token of {len(token)} characters exceeds {MAX_TOKEN_CHARS}")
        return token.rstrip("=")

    def decode(self, kind: str, fingerprint: str, token: str) -> dict[str, Any]:
        """The state `encode` signed for this kind and query, or a 400 naming next_token."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise refused()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise refused() from None
        if len(raw) < _HEADER.size + _MAC_BYTES:
            raise refused()
        signed, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(kind, fingerprint, signed)):
            raise refused()
        version, issued = _HEADER.unpack_from(signed)
        if version != VERSION or not 0 <= self.clock() - issued <= self.ttl_seconds:
            raise refused()
        try:
            inflate = zlib.decompressobj()
            text = inflate.decompress(signed[_HEADER.size :], MAX_STATE_BYTES)
            if inflate.unconsumed_tail or not inflate.eof:
                raise ValueError("state too large or truncated")
            state = json.loads(text)
        except (ValueError, zlib.error):
            raise refused() from None
        if not isinstance(state, dict):
            raise refused()
        return state

    def _mac(self, kind: str, fingerprint: str, signed: bytes) -> bytes:
        # Length-prefixed, so no two (kind, fingerprint, body) triples sign the same bytes.
        context = f"{len(kind)}:{kind}|{len(fingerprint)}:{fingerprint}|".encode()
        return hmac.new(self.key(), context + signed, hashlib.sha256).digest()
