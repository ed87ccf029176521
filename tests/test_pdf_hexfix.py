"""The hex-string fast path answers exactly as pyHanko's own reader: same value, same stream
position afterwards, same error class, on well-formed and hostile strings."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic

from remotesign import pdf_hexfix

ORIGINAL = generic._remotesign_original_hex_reader  # type: ignore[attr-defined]

CASES = [
    b"<>", b"<00>", b"<0>", b"<abc>", b"<ABCdef01>", b"< 0 1\n2\r3\t4\f5\x006 >",
    b"<" + b"00" * 70000 + b">", b"<" + b"3F" * 40000 + b"\n" * 3 + b"a>",
    b"<4142>rest of the file", b"<41 % comment\n 42>", b"<41%c>\n42>", b"<4G>", b"<41", b"<" + b"0" * 70000,
    b"<41)>", b"<41<42>", b"<\x80>", b"<4 1>>", b"<" + b"0" * 65535 + b">", b"<" + b"0" * 65536 + b">x",
]


def _outcome(reader, data: bytes):  # type: ignore[no-untyped-def]
    stream = io.BytesIO(b"prefix" + data)
    stream.seek(6)
    try:
        value = reader(stream)
    except Exception as exc:  # noqa: BLE001 - the error class is what is compared
        return ("error", type(exc).__name__)
    return (type(value).__name__, bytes(value.original_bytes if hasattr(value, "original_bytes") else value),
            stream.tell())


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_fast_path_is_pyhankos_reader(data: bytes) -> None:
    assert _outcome(lambda s: pdf_hexfix.read_hex_string(s, ORIGINAL), data) == _outcome(ORIGINAL, data)


def test_installed() -> None:
    import remotesign  # noqa: F401 - installs

    assert generic.read_hex_string_from_stream is pdf_hexfix.read_hex_string
