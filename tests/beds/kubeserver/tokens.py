"""The tokens a test registers, and the TokenReview answers given for them, with audiences checked
as a real API server does."""
from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

API_AUDIENCE = "https://kubernetes.default.svc"
"""The API server's own audience (``--api-audiences``): a review without ``spec.audiences`` uses it,
and a token registered without audiences carries it (a legacy ServiceAccount token)."""


@dataclasses.dataclass(frozen=True)
class TokenUser:
    username: str
    uid: str
    groups: tuple[str, ...]
    audiences: tuple[str, ...]


class TokenTable:
    """Bearer tokens -> users. The tokens themselves are never logged or echoed in reviews."""

    def __init__(self, api_audiences: tuple[str, ...] = (API_AUDIENCE,)) -> None:
        self._users: dict[str, TokenUser] = {}
        self.api_audiences = api_audiences
        self.audience_aware = True
        """False: answer like an authenticator that ignores audiences (an old webhook): every known
        token is authenticated and ``status.audiences`` is empty, which clients must not trust."""

    def register(self, token: str, username: str, groups: list[str] | tuple[str, ...] = (),
                 audiences: list[str] | tuple[str, ...] = (), uid: str | None = None) -> None:
        """``token`` authenticates as ``username`` for ``audiences`` (default: the API server's own)."""
        if not token or not username:
            raise ValueError("register_token needs a non-empty token and username")
        if isinstance(audiences, str) or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("register_token audiences must be a list of non-empty strings")
        self._users[token] = TokenUser(username, uid or str(uuid.uuid4()), tuple(groups),
                                       tuple(audiences) or self.api_audiences)

    def revoke(self, token: str) -> None:
        self._users.pop(token, None)

    def review(self, token: str, audiences: list[str]) -> dict[str, Any]:
        """A TokenReview ``status``: authenticated when the token is known and one of its audiences is
        requested (``audiences``, or the API server's own when empty); ``audiences`` then holds the
        intersection, as kube-apiserver answers."""
        user = self._users.get(token)
        if user is None:
            return {"authenticated": False, "error": "[invalid bearer token, token lookup failed]", "user": {}}
        found = {"username": user.username, "uid": user.uid, "groups": list(user.groups)}
        if not self.audience_aware:
            return {"authenticated": True, "audiences": [], "user": found}
        wanted = list(audiences) or list(self.api_audiences)
        accepted = [a for a in wanted if a in user.audiences]
        if not accepted:
            return {"authenticated": False, "user": {},
                    "error": f"[invalid bearer token, token audiences {json.dumps(list(user.audiences))} "
                             f"is invalid for the target audiences {json.dumps(wanted)}]"}
        return {"authenticated": True, "audiences": accepted, "user": found}
