"""The tokens a test registers, and the TokenReview answers given for them."""
from __future__ import annotations

import dataclasses
import uuid
from typing import Any


@dataclasses.dataclass(frozen=True)
class TokenUser:
    username: str
    uid: str
    groups: tuple[str, ...]
    audiences: tuple[str, ...]


class TokenTable:
    """Bearer tokens -> users. The tokens themselves are never logged or echoed in reviews."""

    def __init__(self) -> None:
        self._users: dict[str, TokenUser] = {}

    def register(self, token: str, username: str, groups: list[str] | tuple[str, ...] = (),
                 audiences: list[str] | tuple[str, ...] = (), uid: str | None = None) -> None:
        if not token or not username:
            raise ValueError("register_token needs a non-empty token and username")
        self._users[token] = TokenUser(username, uid or str(uuid.uuid4()), tuple(groups), tuple(audiences))

    def revoke(self, token: str) -> None:
        self._users.pop(token, None)

    def review(self, token: str, audiences: list[str]) -> dict[str, Any]:
        """A TokenReview ``status``: authenticated with the user, or not with an error."""
        user = self._users.get(token)
        if user is None:
            return {"authenticated": False, "error": "invalid bearer token, token lookup failed", "user": {}}
        accepted = list(user.audiences) if not audiences else [a for a in audiences
                                                                if not user.audiences or a in user.audiences]
        if audiences and not accepted:
            return {"authenticated": False, "error": "token audiences do not intersect the requested audiences",
                    "user": {}}
        return {"authenticated": True, "audiences": accepted or list(audiences),
                "user": {"username": user.username, "uid": user.uid, "groups": list(user.groups)}}
