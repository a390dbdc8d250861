"""The mesh's certificate authority: one root, short-lived X.509-SVIDs for every instance.

An SVID (SPIFFE Verifiable Identity Document) is an ordinary X.509 certificate whose one URI
SAN is the holder's SPIFFE ID, ``spiffe://souk.local/service/<name>``. Sidecars present it on
both sides of every connection, so the callee knows which *service* calls (the access token
still says for whom).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "souk.local"
ROOT_LIFETIME = dt.timedelta(days=365)
# Certificates are valid from a little before they are made, so a peer whose clock is a few
# seconds behind does not refuse a certificate that is "not yet valid".
BACKDATE = dt.timedelta(seconds=30)


def service_id(service: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The SPIFFE ID of every instance of ``service``."""
    return f"spiffe://{trust_domain}/service/{service}"


def host_id(host: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The SPIFFE ID of a host's bootstrap credential (multi-host: its sidecars present it to
    the control plane, which hands them only the identities of instances placed there)."""
    return f"spiffe://{trust_domain}/host/{host}"


def control_plane_id(trust_domain: str = TRUST_DOMAIN) -> str:
    """The SPIFFE ID of the control plane's xDS server certificate."""
    return f"spiffe://{trust_domain}/control-plane"


def spiffe_id_of(certificate_pem: bytes) -> str | None:
    """The one URI SAN of a certificate, or None."""
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return None
    uris = names.value.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if len(uris) == 1 else None


@dataclass(frozen=True)
class Svid:
    """A certificate and its private key, PEM-encoded, as Envoy's SDS secrets carry them."""

    spiffe_id: str
    certificate_pem: bytes
    private_key_pem: bytes
    not_after: dt.datetime

    def expires_in(self, now: dt.datetime | None = None) -> dt.timedelta:
        return self.not_after - (now or dt.datetime.now(dt.UTC))


class CertificateAuthority:
    """Holds the root key and signs SVIDs; the root certificate is the mesh's trust bundle."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.certificate = certificate

    @classmethod
    def create(cls, trust_domain: str = TRUST_DOMAIN) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Souk"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Souk mesh root ({trust_domain})"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + ROOT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """The root kept in ``directory``; FileNotFoundError if it is not there (several hosts:
        `souk secrets` makes it once and the operator copies it, never made at boot)."""
        key_path, cert_path = directory / "root.key", directory / "root.pem"
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{key_path} is not an EC private key")
        return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))

    def save(self, directory: Path) -> None:
        """Write the root's key (0600) and certificate into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        key_path = directory / "root.key"
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.private_key_pem())
        (directory / "root.pem").write_bytes(self.bundle_pem())

    @classmethod
    def load_or_create(
        cls, directory: Path, trust_domain: str = TRUST_DOMAIN
    ) -> CertificateAuthority:
        """The root kept in ``directory``, made on first use; a restarted control plane keeps it,
        so the sidecars' trust bundle stays valid while it is down."""
        key_path, cert_path = directory / "root.key", directory / "root.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise TypeError(f"{key_path} is not an EC private key")
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if certificate.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=1):
                return cls(key, certificate)
        authority = cls.create(trust_domain)
        authority.save(directory)
        return authority

    def bundle_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def issue(
        self,
        spiffe_id: str,
        lifetime: dt.timedelta,
        *,
        now: dt.datetime | None = None,
        addresses: Sequence[str] = (),
    ) -> Svid:
        """A fresh key pair and an X.509-SVID for ``spiffe_id`` valid for ``lifetime`` (never
        past the root's own end). ``addresses`` add IP SANs (a server's, for clients that
        check the address they dialled)."""
        key = ec.generate_private_key(ec.SECP256R1())
        issued_at = now or dt.datetime.now(dt.UTC)
        not_after = min(issued_at + lifetime, self.certificate.not_valid_after_utc)
        names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id)]
        names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Souk")]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(issued_at - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            # Exactly one URI SAN: SPIFFE validators refuse more than one.
            .add_extension(x509.SubjectAlternativeName(names), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return Svid(
            spiffe_id=spiffe_id,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            private_key_pem=key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            not_after=not_after,
        )
