"""
Checking the files of an C{ssl:} listener description (C{privateKey},
C{certKey}, C{extraCertChain}) before anything listens, so that a missing
or wrong file is an error that names the parameter, the file and what is
wrong with it, not OpenSSL's error codes or a traceback.
"""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["tlsFilesProblem"]

#: Twisted's default C{privateKey} (and so C{certKey}) of C{ssl:}.
DEFAULT_PRIVATE_KEY = "server.pem"

_PUBLIC = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _keywords(description: str) -> dict[str, str]:
    """
    The C{key=value} arguments of an endpoint description, with Twisted's
    escaping (a backslash quotes the next character, C{:} separates).
    """
    fields, current, escaped = [], [], False
    for character in description:
        if escaped:
            current.append(character)
            escaped = False
        elif character == "\\":
            escaped = True
        elif character == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(character)
    fields.append("".join(current))
    return dict(field.split("=", 1) for field in fields[1:] if "=" in field)


def _read(parameter: str, path: str) -> bytes | str:
    """
    The contents of C{path}, or the problem reading it, in words.
    """
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as problem:
        return f"{parameter} {os.path.abspath(path)}: {problem.strerror.lower()}"


def tlsFilesProblem(description: str) -> str | None:
    """
    What is wrong with the files of the C{ssl:} description
    C{description}, in words (C{"privateKey /etc/socksgate/key.pem: no
    such file or directory"}), or L{None} when each can be read and holds
    what it should: C{privateKey} an unencrypted PEM private key,
    C{certKey} (by default the same file) a PEM certificate for that key,
    C{extraCertChain} PEM certificates.  Relative paths are taken from the
    directory twistd runs in, as Twisted takes them.
    """
    keywords = _keywords(description)
    keyPath = keywords.get("privateKey", DEFAULT_PRIVATE_KEY)
    certificatePath = keywords.get("certKey", keyPath)
    keyData = _read("privateKey", keyPath)
    if isinstance(keyData, str):
        return keyData
    try:
        key = serialization.load_pem_private_key(keyData, password=None)
    except TypeError:
        return (
            f"privateKey {os.path.abspath(keyPath)}: the key is encrypted "
            "(an ssl: listener cannot ask for a passphrase: give it an unencrypted key, "
            "readable by root only)"
        )
    except ValueError:
        return f"privateKey {os.path.abspath(keyPath)}: holds no PEM private key"
    certificateData = _read("certKey", certificatePath)
    if isinstance(certificateData, str):
        return certificateData
    try:
        certificate = x509.load_pem_x509_certificate(certificateData)
    except ValueError:
        return f"certKey {os.path.abspath(certificatePath)}: holds no PEM certificate"
    if certificate.public_key().public_bytes(*_PUBLIC) != key.public_key().public_bytes(*_PUBLIC):
        return (
            f"certKey {os.path.abspath(certificatePath)}: the certificate is not for the key in "
            f"privateKey {os.path.abspath(keyPath)}"
        )
    chainPath = keywords.get("extraCertChain")
    if chainPath is not None:
        chainData = _read("extraCertChain", chainPath)
        if isinstance(chainData, str):
            return chainData
        try:
            x509.load_pem_x509_certificates(chainData)
        except ValueError:
            return f"extraCertChain {os.path.abspath(chainPath)}: holds no PEM certificate"
    return None
