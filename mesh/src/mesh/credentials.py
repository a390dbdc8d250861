"""The mesh's credentials for several hosts, made once before anything starts.

On one host the control plane makes its CA on first start and its sidecars reach it on a
Unix socket only their user may open. On several, sidecars on other machines reach it over
TCP, so both ends must be authenticated before a private key travels:

- the **root** (``ca/root.pem``, ``ca/root.key``): every host needs the certificate (its
  sidecars check the control plane's server certificate against it); only the control
  plane's host needs the key;
- one **host credential** per host (``hosts/<name>/credential.pem`` and ``.key``), an
  X.509 certificate whose one URI SAN is ``spiffe://<trust domain>/host/<name>``: that
  host's sidecars present it to the control plane, which then hands them the identities of
  the instances placed on that host and of no other.

``python -m mesh.credentials --dir DIR [--trust-domain TD] HOST...`` makes whatever is
missing (the root first) and prints every file's path; `souk secrets` runs it. Existing
files are kept, so copies already on the hosts stay valid.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mesh.authority import TRUST_DOMAIN, CertificateAuthority, host_id

# A host credential lives as long as the root it comes from (it is only a bootstrap
# credential: the SVIDs the sidecars then get live an hour).
HOST_CREDENTIAL_LIFETIME = dt.timedelta(days=365)


def ca_dir(mesh_dir: Path) -> Path:
    return mesh_dir / "ca"


@dataclass(frozen=True)
class HostCredential:
    """Where one host's bootstrap credential is kept."""

    certificate: Path
    key: Path

    @classmethod
    def of(cls, mesh_dir: Path, host: str) -> HostCredential:
        directory = mesh_dir / "hosts" / host
        return cls(directory / "credential.pem", directory / "credential.key")


def ensure(mesh_dir: Path, hosts: Sequence[str], trust_domain: str = TRUST_DOMAIN) -> list[Path]:
    """Make the root (if missing) and each host's credential (if missing); every file's path."""
    root = ca_dir(mesh_dir)
    if (root / "root.key").exists() and (root / "root.pem").exists():
        authority = CertificateAuthority.load(root)
    else:
        authority = CertificateAuthority.create(trust_domain)
        authority.save(root)
    made = [root / "root.pem", root / "root.key"]
    for host in hosts:
        credential = HostCredential.of(mesh_dir, host)
        if not (credential.certificate.exists() and credential.key.exists()):
            issued = authority.issue(host_id(host, trust_domain), HOST_CREDENTIAL_LIFETIME)
            credential.key.parent.mkdir(parents=True, exist_ok=True)
            _write_private(credential.key, issued.private_key_pem)
            credential.certificate.write_bytes(issued.certificate_pem)
        made += [credential.certificate, credential.key]
    return made


def _write_private(path: Path, content: bytes) -> None:
    # Created 0600 before a byte is written: never readable by others.
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mesh.credentials", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="the mesh's data directory")
    parser.add_argument("--trust-domain", default=TRUST_DOMAIN)
    parser.add_argument("hosts", nargs="+", help="the topology's host names")
    arguments = parser.parse_args(argv)
    for path in ensure(arguments.dir.resolve(), arguments.hosts, arguments.trust_domain):
        print(path)


if __name__ == "__main__":
    main()
