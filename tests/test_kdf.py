"""Hashing of passwords and PINs (keystore/kdf.py): the cost is stored with each hash, the default
is scrypt N=2^16 and the configuration cannot go below 2^14 (the suite runs at that floor, see
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remotesign.config import Settings, load_settings
from remotesign.keystore.kdf import DEFAULT_LOG2_N, hash_secret, verify_secret


def test_the_default_cost_is_2_to_the_16_and_the_floor_2_to_the_14(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_LOG2_N == 16 and Settings.kdf_log2_n == 16
    monkeypatch.delenv("REMOTESIGN_KDF_LOG2_N", raising=False)
    assert load_settings(tmp_path).kdf_log2_n == 16
    monkeypatch.setenv("REMOTESIGN_KDF_LOG2_N", "10")
    assert load_settings(tmp_path).kdf_log2_n == 14  # a weaker setting is raised to the floor


def test_a_hash_keeps_its_cost_and_checks_only_its_secret() -> None:
    stored = hash_secret("1234", DEFAULT_LOG2_N)
    assert stored.startswith("scrypt$16$8$1$")
    assert verify_secret("1234", stored) and not verify_secret("1235", stored)
    cheaper = hash_secret("1234", 14)
    assert cheaper.startswith("scrypt$14$") and verify_secret("1234", cheaper)  # verified at its own cost
    tampered = stored.replace("scrypt$16$", "scrypt$14$")
    assert not verify_secret("1234", tampered)  # the cost is part of what is checked
    assert not verify_secret("1234", "scrypt$16$8$1$not-base64$") and not verify_secret("1234", "md5$x")
