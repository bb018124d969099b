"""
L{socksgate.tlsfiles}: the files of an C{ssl:} listener are checked when
the configuration loads, and a missing or wrong one is an error naming
the parameter, the file and what is wrong, before anything listens.
"""

from __future__ import annotations

import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL.crypto import FILETYPE_PEM
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import ConfigError, parseConfig
from socksgate.endpoints import endpointProblem

from .helpers import LoopbackTestCase
from .tls_helpers import testCertificate, writeCertificate

TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class Files:
    """
    A fresh directory of PEM files for one test: C{self.both} (the test
    certificate and its key), C{self.key} and C{self.certificate} apart,
    C{self.encrypted} (the key under a passphrase) and C{self.other} (a
    key of its own, for no certificate here).
    """

    def setUp(self) -> None:
        directory = os.path.abspath(self.mktemp())  # type: ignore[attr-defined]
        self.both = writeCertificate(directory)
        certificate = testCertificate()
        keyPEM = certificate.privateKey.dump(FILETYPE_PEM)
        self.key = self.write(directory, "key.pem", keyPEM)
        self.certificate = self.write(directory, "certificate.pem", certificate.dump(FILETYPE_PEM))
        key = serialization.load_pem_private_key(keyPEM, password=None)
        self.encrypted = self.write(
            directory,
            "encrypted.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
        )
        other = ec.generate_private_key(ec.SECP256R1())
        self.other = self.write(
            directory,
            "other.pem",
            other.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        self.missing = os.path.join(directory, "missing.pem")

    def write(self, directory: str, name: str, data: bytes) -> str:
        """
        Write C{data} to the file C{name} of C{directory}.

        @return: its path.
        """
        path = os.path.join(directory, name)
        with open(path, "wb") as stream:
            stream.write(data)
        return path


class EndpointProblemTests(Files, SynchronousTestCase):
    """
    L{endpointProblem} for C{ssl:} descriptions, in words.
    """

    def test_good(self) -> None:
        """
        A certificate and key in one file, or in two, and a chain of
        certificates, are accepted, behind C{haproxy:} too.
        """
        for description in (
            f"ssl:1080:privateKey={self.both}",
            f"ssl:1080:interface=127.0.0.1:privateKey={self.key}:certKey={self.certificate}",
            f"ssl:1080:privateKey={self.both}:extraCertChain={self.certificate}",
            f"haproxy:ssl:1080:privateKey={self.both}",
        ):
            self.assertIsNone(endpointProblem(description), description)

    def test_missing(self) -> None:
        """
        A file that is not there: the parameter, the absolute path and the
        reason.
        """
        self.assertEqual(
            endpointProblem(f"ssl:1080:privateKey={self.missing}"),
            f"'ssl:1080:privateKey={self.missing}': privateKey {self.missing}: no such file or directory",
        )
        description = f"ssl:1080:privateKey={self.key}:certKey={self.missing}"
        self.assertEqual(
            endpointProblem(description),
            f"{description!r}: certKey {self.missing}: no such file or directory",
        )
        description = f"ssl:1080:privateKey={self.both}:extraCertChain={self.missing}"
        self.assertEqual(
            endpointProblem(description),
            f"{description!r}: extraCertChain {self.missing}: no such file or directory",
        )

    def test_defaultFile(self) -> None:
        """
        Without C{privateKey}, Twisted's default C{server.pem} in the
        current directory is named.
        """
        self.assertEqual(
            endpointProblem("ssl:1080"),
            f"'ssl:1080': privateKey {os.path.abspath('server.pem')}: no such file or directory",
        )

    def test_wrongContents(self) -> None:
        """
        A key file without a key, a key without its certificate (C{certKey}
        defaults to the key's file), an encrypted key, and a certificate
        for another key are each said plainly.
        """
        self.assertEqual(
            endpointProblem(f"ssl:1080:privateKey={self.certificate}"),
            f"'ssl:1080:privateKey={self.certificate}': "
            f"privateKey {self.certificate}: holds no PEM private key",
        )
        self.assertEqual(
            endpointProblem(f"ssl:1080:privateKey={self.key}"),
            f"'ssl:1080:privateKey={self.key}': certKey {self.key}: holds no PEM certificate",
        )
        self.assertIn(
            f"privateKey {self.encrypted}: the key is encrypted "
            "(an ssl: listener cannot ask for a passphrase",
            endpointProblem(f"ssl:1080:privateKey={self.encrypted}:certKey={self.certificate}"),
        )
        self.assertIn(
            f"certKey {self.certificate}: the certificate is not for the key in privateKey {self.other}",
            endpointProblem(f"ssl:1080:privateKey={self.other}:certKey={self.certificate}"),
        )

    def test_escapedPath(self) -> None:
        """
        A path with a colon, escaped as Twisted's descriptions escape it,
        is read as that path.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "a:b.pem")
        os.link(self.both, path)
        escaped = path.replace(":", "\\:")
        self.assertIsNone(endpointProblem(f"ssl:1080:privateKey={escaped}"))


class ConfigTests(Files, SynchronousTestCase):
    """
    The configuration file refuses an C{ssl:} listener with a missing
    file, naming the file, line and key.
    """

    def test_listen(self) -> None:
        """
        A C{[server] listen} item whose certificate file is missing.
        """
        text = f'[server]\nlisten = ["tcp:1080", "ssl:1443:privateKey={self.missing}"]\n'
        problem = str(self.assertRaises(ConfigError, parseConfig, text, "/etc/socksgate.toml"))
        self.assertEqual(
            problem,
            f"/etc/socksgate.toml:2: [server] listen: 'ssl:1443:privateKey={self.missing}': "
            f"privateKey {self.missing}: no such file or directory",
        )


class TwistdTests(LoopbackTestCase):
    """
    C{twistd socksgate --listen ssl:...} with a missing file.
    """

    async def test_missingFile(self) -> None:
        """
        twistd stops with status 1 and one line naming the parameter and
        the file, without a traceback.
        """
        missing = os.path.abspath(os.path.join(self.mktemp(), "missing.pem"))
        out, err, code = await getProcessOutputAndValue(
            TWISTD[0],
            TWISTD[1:] + ["-n", "--pidfile=", "socksgate", "--listen", f"ssl:0:privateKey={missing}"],
            env=os.environ,
        )
        self.assertEqual(code, 1, out + err)
        self.assertIn(
            f"twistd socksgate: --listen: 'ssl:0:privateKey={missing}': privateKey {missing}: "
            "no such file or directory".encode(),
            out + err,
        )
        self.assertNotIn(b"Traceback", out + err)
