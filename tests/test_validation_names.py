"""names.same_name: asn1crypto's RFC 5280 name equality, remembered by the names' DER."""

from __future__ import annotations

import pytest
from asn1crypto import x509

from remotesign.names import same_name


def _name(value: str, string_type: str) -> x509.Name:
    return x509.Name.build({"common_name": value, "country_name": "LV"}, use_printable=string_type == "printable")


@pytest.mark.parametrize("a, b", [
    (("Test CA", "utf8"), ("Test CA", "utf8")),
    (("Test CA", "utf8"), ("Test CA", "printable")),     # same name, other DER: equal by RFC 4518
    (("Test CA", "utf8"), ("test  ca", "utf8")),         # case and inner spaces fold
    (("Test CA", "utf8"), ("Other CA", "utf8")),
    (("Test CA", "printable"), ("Test CB", "printable")),
])
def test_same_name_is_asn1crypto_equality_every_time(a: tuple[str, str], b: tuple[str, str]) -> None:
    first, second = _name(*a), _name(*b)
    expected = first == second
    for _ in range(3):  # the remembered answer is the computed one, both ways round
        assert same_name(first, second) is expected
        assert same_name(x509.Name.load(second.dump()), x509.Name.load(first.dump())) is expected


def test_different_names_with_the_same_der_prefix_stay_different() -> None:
    short, long = _name("CA", "utf8"), _name("CA 2", "utf8")
    assert same_name(short, long) is False
    assert same_name(short, _name("CA", "utf8")) is True
