"""
Shared pieces of the tests of C{ssl:} listeners: a self-signed test
certificate made in the test (no key is committed), and a SOCKS client
over TLS (Twisted's C{wrapClientTLS}) that checks the gateway's
certificate.
"""

from __future__ import annotations

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
from twisted.python.failure import Failure

from .helpers import RawClient

_made: list[PrivateCertificate] = []


def testCertificate() -> PrivateCertificate:
    """
    A self-signed certificate for C{localhost} (its subjectAltName, which
    service_identity checks) with its 2048-bit RSA key, valid for a day
    either side of now, made once per test run.
    """
    if not _made:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _made.append(PrivateCertificate.loadPEM(pem))
    return _made[0]


def writeCertificate(directory: str) -> str:
    """
    Write L{testCertificate} as one PEM file (certificate, then key) into
    C{directory}, created if need be, readable by its owner only.

    @return: the file's absolute path, for C{privateKey=} of an C{ssl:}
        description.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.abspath(os.path.join(directory, "server.pem"))
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as stream:
        stream.write(testCertificate().dumpPEM())
    return path


def tlsListener(path: str) -> str:
    """
    The C{ssl:} description of a loopback listener on an ephemeral port
    with the certificate and key in C{path}.
    """
    return f"ssl:0:interface=127.0.0.1:privateKey={path}"


class TLSClient(RawClient):
    """
    A L{RawClient} over TLS that remembers why its connection ended.

    @ivar reason: the L{Failure} its connection was lost with, once lost.
    """

    reason: Failure | None = None

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.reason = reason
        super().connectionLost(reason)


async def connectTLS(port: int) -> TLSClient:
    """
    Connect a L{TLSClient} to C{127.0.0.1:port} over TLS, trusting only
    L{testCertificate} and checking that it names C{localhost}.
    """
    authority = Certificate.loadPEM(testCertificate().dumpPEM())
    endpoint = wrapClientTLS(
        optionsForClientTLS("localhost", trustRoot=authority),
        TCP4ClientEndpoint(reactor, "127.0.0.1", port),
    )
    return await connectProtocol(endpoint, TLSClient())
