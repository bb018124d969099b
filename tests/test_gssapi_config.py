"""
Tests for the C{[auth]} GSS-API settings: C{gssapi-keytab},
C{gssapi-service} and C{gssapi-protection}, and the error when the
C{gssapi} package is missing.
"""

from __future__ import annotations

import sys

from twisted.trial.unittest import SynchronousTestCase

from socksgate.config import ConfigError, parseConfig


class GSSAPIConfigTests(SynchronousTestCase):
    """
    What C{[auth]} accepts and refuses for GSS-API.
    """

    def test_missingPackage(self) -> None:
        """
        C{methods = ["gssapi"]} without the C{gssapi} package installed is
        a configuration error that says what to install.
        """
        saved = sys.modules.get("gssapi")
        sys.modules["gssapi"] = None  # type: ignore[assignment]
        self.addCleanup(
            lambda: sys.modules.pop("gssapi") if saved is None else sys.modules.update(gssapi=saved)
        )
        error = self.assertRaises(ConfigError, parseConfig, '[auth]\nmethods = ["gssapi"]\n', "gw.toml")
        self.assertIn("gw.toml:2: [auth] methods: gssapi: the gssapi package is not installed", str(error))
        self.assertIn("pip install 'socksgate[gssapi]'", str(error))

    def test_unknownLevel(self) -> None:
        """
        A level other than none, integrity and confidentiality is refused.
        """
        text = '[auth]\ngssapi-protection = ["selective"]\n'
        error = self.assertRaises(ConfigError, parseConfig, text, "gw.toml")
        self.assertIn(
            "[auth] gssapi-protection: 'selective' is not one of none, integrity, confidentiality", str(error)
        )

    def test_noLevel(self) -> None:
        """
        An empty list of levels is refused.
        """
        error = self.assertRaises(ConfigError, parseConfig, "[auth]\ngssapi-protection = []\n", "gw.toml")
        self.assertIn("[auth] gssapi-protection: must name at least one level", str(error))

    def test_unusedSettings(self) -> None:
        """
        Without C{gssapi} in C{methods} the settings are checked but no
        keytab is read.
        """
        text = (
            '[auth]\ngssapi-keytab = "/nonexistent"\ngssapi-service = "socks"\ngssapi-protection = ["none"]\n'
        )
        self.assertIsNone(parseConfig(text, "gw.toml").auth.gssapi)
