"""Bytes to text: UTF-8 where the bytes are UTF-8, else the HTTP charset, the page's own declaration, then detection."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

# A <meta charset=...> or http-equiv content-type declaration, looked for near the top only.
_META_CHARSET = re.compile(rb"""<meta[^>]{0,300}?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]{1,40})""", re.I)
_SNIFF_BYTES = 4096
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _codec(name: str | None) -> str | None:
    """The Python codec for a declared charset name, or None when unknown."""
    if not name:
        return None
    try:
        found = codecs.lookup(name.strip().strip("'\"").lower()).name
    except LookupError:
        return None
    # Browsers read pages labelled latin-1 as windows-1252; so do we (it is a superset).
    return "cp1252" if found in ("latin-1", "iso8859-1", "ascii") else found


def declared_charset(data: bytes) -> str | None:
    """The charset the document declares in a <meta> tag, if any and if Python knows it."""
    match = _META_CHARSET.search(data, 0, _SNIFF_BYTES) or _META_CHARSET.search(data)
    return _codec(match.group(1).decode("ascii", "replace")) if match else None


def decode_html(data: bytes, charset: str | None = None) -> str:
    """Decode a page: BOM, then UTF-8 where the bytes are UTF-8, then the HTTP charset, the <meta>
    declaration, then detection; never raises on bad bytes.

    Bytes that decode as UTF-8 are taken as UTF-8 whatever the labels say: a UTF-8 page labelled
    latin-1 is a common mistake, while text in a legacy encoding that happens to be valid UTF-8
    is vanishingly rare (only a UTF-16 label, whose text would be full of NULs, is believed).
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(name, "replace")
    declared = [name for name in (_codec(charset), declared_charset(data)) if name]
    if not any(name.startswith(("utf-16", "utf-32")) for name in declared):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    for name in declared:
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            # A wrong declaration is common; keep it only if the damage is small.
            text = data.decode(name, "replace")
            if text.count("\ufffd") * 1000 <= len(text):
                return text
    best = from_bytes(data[:200_000]).best()
    name = best.encoding if best is not None else "utf-8"
    return data.decode(name, "replace")
