"""Which format handles a file: by the requested name, or by looking at the file itself (EU DSS's
``DocumentValidator`` factory). Formats are registered once at start-up, most specific first, so
an ASiC container is recognised before the generic ZIP or XML checks of later formats."""

from __future__ import annotations

from typing import BinaryIO

from remotesign.formats.base import FormatError
from remotesign.formats.interface import SignatureFormat


class FormatRegistry:
    def __init__(self, formats: list[SignatureFormat] | None = None) -> None:
        self._formats: dict[str, SignatureFormat] = {}
        for fmt in formats or []:
            self.register(fmt)

    def register(self, fmt: SignatureFormat) -> None:
        if fmt.name in self._formats:
            raise ValueError(f"format {fmt.name!r} registered twice")
        self._formats[fmt.name] = fmt

    @property
    def names(self) -> list[str]:
        return list(self._formats)

    def get(self, name: str) -> SignatureFormat:
        try:
            return self._formats[name]
        except KeyError:
            raise FormatError("unsupported_format", f"no signature format named {name!r}") from None

    def detect(self, source: BinaryIO) -> SignatureFormat:
        """The first registered format that recognises ``source``; FormatError when none does."""
        for fmt in self._formats.values():
            source.seek(0)
            if fmt.recognizes(source):
                source.seek(0)
                return fmt
        source.seek(0)
        raise FormatError("unsupported_format", "the file is not a PDF, XML, CMS or ASiC document this service signs")
