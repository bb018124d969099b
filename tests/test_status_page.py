"""
Tests for L{socksgate.status._page}: the status page built from its package
data, and the Content-Security-Policy that lets its inline style and script
(and nothing else) run.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from importlib.resources import files

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from socksgate.status import StatusPageResource
from socksgate.status._page import PAGE, PAGE_POLICY, _inline


class InlineSources(HTMLParser):
    """
    Collects the text of every C{<style>} and C{<script>} element.

    @ivar sources: C{(tag, text)} pairs in document order.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.sources: list[tuple[str, str]] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._open = tag
            self.sources.append((tag, ""))

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            tag, text = self.sources[-1]
            self.sources[-1] = (tag, text + data)


def sourceHash(text: str) -> bytes:
    """
    The CSP hash source of an inline element's text, computed here from
    the CSP specification rather than by the code under test.
    """
    return b"'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()) + b"'"


class PageTests(SynchronousTestCase):
    """
    The page's inline elements and its policy.
    """

    def test_policyAllowsTheInlineElements(self) -> None:
        """
        The page has one inline style and one inline script, and the
        policy's C{style-src} and C{script-src} name exactly their hashes.
        """
        parser = InlineSources()
        parser.feed(PAGE.decode("utf-8"))
        [(styleTag, style), (scriptTag, script)] = parser.sources
        self.assertEqual((styleTag, scriptTag), ("style", "script"))
        directives = dict(part.strip().split(b" ", 1) for part in PAGE_POLICY.split(b";"))
        self.assertEqual(directives[b"style-src"], sourceHash(style))
        self.assertEqual(directives[b"script-src"], sourceHash(script))

    def test_assetsFromPackageData(self) -> None:
        """
        The served page is C{page/index.html} with C{page/status.css} and
        C{page/status.js} inline, as the package data holds them.
        """
        page = files("socksgate.status").joinpath("page")
        style = page.joinpath("status.css").read_text(encoding="utf-8")
        script = page.joinpath("status.js").read_text(encoding="utf-8")
        self.assertIn(f"<style>{style}</style>".encode(), PAGE)
        self.assertIn(f"<script>{script}</script>".encode(), PAGE)
        self.assertIn(b'fetch("status.json"', PAGE)
        self.assertTrue(PAGE.startswith(b"<!DOCTYPE html>"))
        request = DummyRequest([b""])
        self.assertEqual(StatusPageResource().render_GET(request), PAGE)
        self.assertEqual(request.responseHeaders.getRawHeaders(b"content-security-policy"), [PAGE_POLICY])

    def test_inlineRefusesBadTemplates(self) -> None:
        """
        A template without exactly one empty element for the source, or a
        source that would close its element early, is refused.
        """
        self.assertRaises(ValueError, _inline, "<p></p>", "style", "a {}")
        self.assertRaises(ValueError, _inline, "<style></style><style></style>", "style", "a {}")
        self.assertRaises(ValueError, _inline, "<script></script>", "script", "x = '</SCRIPT>'")
        self.assertEqual(_inline("<b><style></style></b>", "style", "a {}"), "<b><style>a {}</style></b>")
