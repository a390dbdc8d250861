from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec

from mesh.authority import CertificateAuthority, service_id


def test_an_svid_carries_exactly_one_uri_san_the_spiffe_id_and_lives_as_long_as_asked() -> None:
    authority = CertificateAuthority.create()
    now = dt.datetime.now(dt.UTC)
    svid = authority.issue(service_id("orders"), dt.timedelta(seconds=90), now=now)
    certificate = x509.load_pem_x509_certificate(svid.certificate_pem)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://souk.local/service/orders"
    ]
    assert len(list(names)) == 1
    expected = now + dt.timedelta(seconds=90)
    assert abs((certificate.not_valid_after_utc - expected).total_seconds()) < 1
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_an_svid_is_signed_by_the_root_and_not_by_another() -> None:
    authority, stranger = CertificateAuthority.create(), CertificateAuthority.create()
    svid = authority.issue(service_id("billing"), dt.timedelta(minutes=5))
    certificate = x509.load_pem_x509_certificate(svid.certificate_pem)
    certificate.verify_directly_issued_by(authority.certificate)
    with pytest.raises(InvalidSignature):
        certificate.verify_directly_issued_by(stranger.certificate)


def test_each_svid_has_a_key_of_its_own() -> None:
    authority = CertificateAuthority.create()
    first = authority.issue(service_id("catalog"), dt.timedelta(minutes=5))
    second = authority.issue(service_id("catalog"), dt.timedelta(minutes=5))
    assert first.private_key_pem != second.private_key_pem


def test_the_root_survives_a_restart_of_the_control_plane(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path)
    second = CertificateAuthority.load_or_create(tmp_path)
    assert first.bundle_pem() == second.bundle_pem()
    assert (tmp_path / "root.key").stat().st_mode & 0o077 == 0
    assert isinstance(first.certificate.public_key(), ec.EllipticCurvePublicKey)
