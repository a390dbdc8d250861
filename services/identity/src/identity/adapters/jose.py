"""ES256 key pairs and JWT signatures, made by joserfc."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from identity.domain.model import KeyState, SigningKey

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

ALGORITHM = "ES256"
# RFC 9068: access tokens say what they are, so that no other JWT passes for one.
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret


class JoserfcSigner:
    """Implements the Signer port with P-256 keys and ES256 signatures."""

    def generate(self, kid: str, now: datetime) -> SigningKey:
        key = ECKey.generate_key(
            "P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
        )
        return SigningKey(
            kid=kid,
            alg=ALGORITHM,
            private_jwk=dict(key.as_dict(private=True)),
            state=KeyState.NEXT,
            created_at=now,
        )

    def sign(self, claims: dict[str, Any], key: SigningKey) -> str:
        header = {"alg": key.alg, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(header, claims, ECKey.import_key(key.private_jwk), algorithms=[key.alg])

    def signed_claims(self, token: str, keys: Sequence[SigningKey]) -> dict[str, Any] | None:
        # Only the signature and the kid matter here (who signed it, and for which grant);
        # a revocation request may name an expired token, so its times are not checked.
        try:
            kid = jws.extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        key = next((key for key in keys if key.kid == kid), None)
        if key is None:
            return None
        try:
            decoded = jwt.decode(token, ECKey.import_key(key.private_jwk), algorithms=[key.alg])
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            return None
        return dict(decoded.claims)

    def public_jwk(self, key: SigningKey) -> dict[str, Any]:
        public = ECKey.import_key(key.private_jwk).as_dict(private=False)
        return {**public, "kid": key.kid, "alg": key.alg, "use": "sig"}
