"""``POST /users``: open an account."""

from __future__ import annotations

from fastapi import APIRouter

from chassis.problems import ProblemError, problem_responses
from identity.domain.errors import EmailTaken, InvalidEmail, WeakPassword
from identity.entrypoints.deps import IdentityDep
from identity.entrypoints.schemas import UserCreate, UserPublic
from identity.service_layer import accounts

router = APIRouter(tags=["accounts"])


@router.post(
    "/users",
    status_code=201,
    response_model=UserPublic,
    # 503: more passwords are being hashed at once than identity takes (Retry-After).
    responses=problem_responses(409, 422, 503),
    summary="Open an account with an email address and a password",
)
async def register(body: UserCreate, identity: IdentityDep) -> UserPublic:
    try:
        user = await accounts.register(
            identity.uow(), identity.passwords, body.email, body.password, identity.clock()
        )
    except EmailTaken as error:
        raise ProblemError(409, "email-taken", "Email address taken", str(error)) from error
    except InvalidEmail as error:
        raise ProblemError(422, "invalid-email", "Not an email address", str(error)) from error
    except WeakPassword as error:
        raise ProblemError(422, "weak-password", "Password too weak", str(error)) from error
    return UserPublic(id=user.id, email=user.email)
