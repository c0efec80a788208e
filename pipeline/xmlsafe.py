"""XML 1.0 that is always well-formed, whatever the store holds.

ElementTree escapes ``&``, ``<``, ``>`` and quotes, but writes every other character as
it is, and XML 1.0 allows only ``#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
[#x10000-#x10FFFF]``: one ``\\x0b`` (vertical tab), ``\\x1b`` (escape), lone surrogate or
``U+FFFE`` in a title would make a whole feed or CAP alert unreadable. Every XML Loa emits
(the podcast feeds, CAP export) is serialised by :func:`tostring`, which drops those
characters from every text, tail and attribute (names are Loa's own) before writing.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

#: What XML 1.0 does not allow in a document (section 2.2, "Char"), as one character class.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 does not allow (escaping is the serialiser's)."""
    return _NOT_XML.sub("", value)


def clean(root: ET.Element) -> ET.Element:
    """Drop what XML 1.0 does not allow from every text, tail and attribute value, in place."""
    for el in root.iter():
        if el.text:
            el.text = xml_text(el.text)
        if el.tail:
            el.tail = xml_text(el.tail)
        for name, value in el.attrib.items():
            el.attrib[name] = xml_text(value)
    return root


def tostring(root: ET.Element) -> bytes:
    """``<?xml …?>`` then ``root`` in UTF-8: escaped by ElementTree, cleaned here first."""
    body: bytes = ET.tostring(clean(root), encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"
