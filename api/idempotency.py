"""`Idempotency-Key` on submissions: the same key with the same body gets the first answer and
the same resource, however often and however concurrently it is sent."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from api.dependencies import StorageDep
from common.storage import IdempotencyClaim

HEADER = "Idempotency-Key"

KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=256,
        description="Send the same key when retrying a submission: it answers as the first "
        "try did, and never makes a second job, run or experiment (kept 24 h)",
    ),
]


def _digest(body: bytes) -> str:
    """The body's hash, insensitive to key order and spacing."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


class Idempotency:
    """The request's Idempotency-Key, if it has one, and what it claimed."""

    def __init__(self, request: Request, storage: StorageDep, key: KeyHeader = None) -> None:
        self._request = request
        self._storage = storage
        self.key = key
        self.claim: IdempotencyClaim | None = None

    async def begin(self, scope: str, resource_id: str) -> IdempotencyClaim | None:
        """Claim the key for this request, or find what it claimed before; None without a key.

        `resource_id` is the id the request would give what it makes; a repeat gets the first
        request's id. The same key with another body or on another endpoint is a 422.
        """
        if self.key is None:
            return None
        digest = _digest(await self._request.body())
        wanted = IdempotencyClaim(
            key=self.key, scope=scope, body_hash=digest, resource_id=resource_id
        )
        self.claim = await self._storage.claim_idempotency_key(wanted)
        if (self.claim.scope, self.claim.body_hash) != (scope, digest):
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("header", HEADER),
                        "msg": f"{HEADER} {self.key!r} was sent before with another request; "
                        "use a new key for a new submission",
                        "input": self.key,
                    }
                ]
            )
        return self.claim

    @property
    def first_answer(self) -> dict[str, Any] | None:
        return self.claim.response if self.claim is not None else None

    async def answered(self, answer: BaseModel) -> None:
        """Keep the answer, so a repeat of the request gets it."""
        if self.claim is not None and self.claim.response is None:
            await self._storage.complete_idempotency_key(
                self.claim.key, answer.model_dump(mode="json")
            )

    async def forget(self) -> None:
        """The request made nothing that will ever run: a repeat may try afresh."""
        if self.claim is not None and self.claim.response is None:
            await self._storage.forget_idempotency_key(self.claim.key)


IdempotencyDep = Annotated[Idempotency, Depends(Idempotency)]
