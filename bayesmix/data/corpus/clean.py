"""Text cleaning shared by every corpus source.

The functions here are deterministic and versioned: any change to what they return must bump
:data:`CLEANING_VERSION`, which is part of the embedded corpus manifest and of every cache key.
"""

from __future__ import annotations

import html
import re
import unicodedata

CLEANING_VERSION = 1
"""Version of the cleaning rules; bump it whenever the output of any function here changes."""

_TAG = re.compile(r"<[^>]+>")
_BLOCK_TAG = re.compile(r"</?(p|br|li|ul|ol|div|h[1-6]|tr|table|pre)\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\f\v]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalise(text: str) -> str:
    r"""Normalise newlines, Unicode form and blank lines.

    Parameters
    ----------
    text
        Raw text.

    Returns
    -------
    str
        NFC text with ``\\n`` line ends, no trailing spaces, at most one blank line in a row, and
        no leading or trailing blank lines.
    """
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip("\n")


def strip_html(text: str) -> str:
    """Remove HTML tags and entities, keeping block tags as line breaks.

    Parameters
    ----------
    text
        Text that may hold HTML markup.

    Returns
    -------
    str
        Plain text; entities are unescaped twice (some sources double-escape them).
    """
    text = _BLOCK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(html.unescape(text))
    text = text.replace("\xa0", " ")
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return normalise(text)


_WIKI_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_WIKI_REF = re.compile(r"<ref[^>/]*/>|<ref[^>]*>.*?</ref>", re.DOTALL | re.IGNORECASE)
_WIKI_TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
_WIKI_TABLE = re.compile(r"\{\|.*?\|\}", re.DOTALL)
_WIKI_FILE = re.compile(
    r"\[\[(?:File|Image|Category):[^\[\]]*(?:\[\[[^\[\]]*\]\][^\[\]]*)*\]\]", re.IGNORECASE
)
_WIKI_LINK = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]]*)\]\]")
_WIKI_EXT_LINK = re.compile(r"\[https?://[^\s\]]+\s*([^\]]*)\]")
_WIKI_BOLD = re.compile(r"'{2,}")
_WIKI_HEADING = re.compile(r"^=+\s*(.*?)\s*=+$", re.MULTILINE)


def strip_wikitext(text: str) -> str:
    """Turn MediaWiki markup into plain prose with regular expressions.

    Parameters
    ----------
    text
        Wikitext of one article.

    Returns
    -------
    str
        Plain text: templates, tables, references, files and categories removed, links replaced
        by their label, headings kept as lines.
    """
    text = html.unescape(html.unescape(text))
    text = _WIKI_COMMENT.sub("", text)
    text = _WIKI_REF.sub("", text)
    for _ in range(5):  # nested templates, innermost first
        text, n = _WIKI_TEMPLATE.subn("", text)
        if n == 0:
            break
    text = _WIKI_TABLE.sub("", text)
    text = _WIKI_FILE.sub("", text)
    text = _WIKI_LINK.sub(r"\1", text)
    text = _WIKI_EXT_LINK.sub(r"\1", text)
    text = _WIKI_BOLD.sub("", text)
    text = _WIKI_HEADING.sub(r"\1", text)
    text = _TAG.sub("", text)
    return strip_html(text)
