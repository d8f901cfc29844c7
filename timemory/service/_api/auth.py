"""Who is calling: API keys (``Authorization: Bearer``), admins, and the user a request acts for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from timemory._facade import TiMem
from timemory.errors import InvalidInputError, NotFoundError
from timemory.store import ApiKey


class ApiError(Exception):
    """An error the API itself raises (authentication, permissions)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


@dataclass(frozen=True)
class Caller:
    """Who is calling: an admin (any user), or one user's key."""

    key: ApiKey | None
    admin: bool

    def user(self, asked: str | None) -> str:
        """The user this request acts for. A user key acts for its own user whatever it asks for (another user's
        id reads as not found); an admin must say which user."""
        if not self.admin:
            assert self.key is not None and self.key.user_id is not None
            if asked is not None and asked != self.key.user_id:
                raise NotFoundError(f"No user '{asked}'.")
            return self.key.user_id
        if not asked:
            raise InvalidInputError("Say which user: add ?user_id=… (an admin key acts for any user).")
        return asked


# Declared so the OpenAPI document has the scheme (the docs' Authorize button, generated clients); read below.
BEARER = HTTPBearer(auto_error=False, description="An API key: python -m timemory keys create --user U | --admin")


KEYS_EXIST = "keys_exist"  # request.state: whether any key is active, when the middleware had to ask


def bearer_key(tm: TiMem, header: str) -> ApiKey | None:
    """The active key an ``Authorization`` header carries, or None."""
    scheme, _, token = header.partition(" ")
    return tm.keys.verify(token) if header and scheme.lower() == "bearer" else None


def caller(request: Request,
           bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None) -> Caller:
    """The calling key (from ``Authorization: Bearer``), or an open admin when no key exists at all."""
    tm: TiMem = request.app.state.tm
    header = request.headers.get("authorization", "")
    if not header:
        keys_exist = getattr(request.state, KEYS_EXIST, None)  # asked already by the middleware, for /v1
        if not (tm.keys.any_active() if keys_exist is None else keys_exist):
            return Caller(key=None, admin=True)
        raise ApiError(401, "unauthorized", "Send an API key: Authorization: Bearer <key>.")
    key = bearer_key(tm, header)
    if key is None:
        raise ApiError(401, "unauthorized", "That API key is not valid (unknown, revoked or mistyped).")
    return Caller(key=key, admin=key.admin)


# The dependencies that only read what ``caller`` found are ``async``: FastAPI runs a plain ``def`` dependency on the
# thread pool, a hop per dependency on every request.
async def admin(who: Annotated[Caller, Depends(caller)]) -> Caller:
    if not who.admin:
        raise ApiError(403, "forbidden", "This needs an admin key.")
    return who


async def acting_user(who: Annotated[Caller, Depends(caller)],
                user_id: Annotated[str | None, Query(max_length=128)] = None) -> str:
    """The user a request acts for (see :meth:`Caller.user`)."""
    return who.user(user_id)


async def tm_of(request: Request) -> TiMem:
    return request.app.state.tm  # type: ignore[no-any-return]
