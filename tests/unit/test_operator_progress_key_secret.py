"""The progress key's Secret, the pure parts: reading a key from a Secret's data, the Secret
the operator creates, the replacement that adds a key, and where the settings take the key
from. stored_key itself runs against a real API server in the cluster tier
(tests/cluster/test_progress_key_secret.py)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from prs_operator.progress_key_secret import (
    KEY_FIELD,
    key_in,
    new_key,
    secret_manifest,
    with_key,
)
from prs_operator.settings import Settings, SettingsError


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(("data", "key"), [
    ({"key": b64("abc")}, b"abc"),
    ({"key": b64("  abc\n")}, b"abc"),  # as the kubelet's file is read: blanks stripped
    ({"key": b64("abc"), "other": b64("x")}, b"abc"),
    ({"other": b64("abc")}, b""),
    ({"key": ""}, b""),
    ({"key": b64("\n")}, b""),
    ({"key": "not base64!"}, b""),
    ({}, b""),
    (None, b""),
], ids=["plain", "blanks", "other-keys", "no-key", "empty", "blank", "not-base64", "no-data",
        "none"])
def test_key_in(data: dict[str, str] | None, key: bytes) -> None:
    assert key_in(data) == key


def test_new_keys_are_long_random_and_differ() -> None:
    keys = {new_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(len(key) == 64 and key.isascii() and key.strip() == key for key in keys)


def test_the_created_secret_holds_the_key_where_the_chart_mounts_it() -> None:
    manifest = secret_manifest("prs-system", "prs-progress-key", "k" * 64)
    assert manifest["metadata"]["name"] == "prs-progress-key"
    assert manifest["metadata"]["namespace"] == "prs-system"
    assert manifest["stringData"] == {KEY_FIELD: "k" * 64} and KEY_FIELD == "key"
    assert manifest["metadata"]["labels"]["app.kubernetes.io/managed-by"] == (
        "parallelrun-operator")


def test_a_secret_without_a_key_keeps_its_data_and_its_version() -> None:
    replacement = with_key("ns", "s", "41", {"other": b64("x"), "key": ""}, "new")
    assert replacement["metadata"] == {"name": "s", "namespace": "ns", "resourceVersion": "41"}
    assert replacement["data"] == {"other": b64("x"), "key": b64("new")}
    assert key_in(replacement["data"]) == b"new"


def test_settings_read_the_key_file_when_it_is_there(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"from-file\n")
    settings = Settings.from_env({"PRS_PROGRESS_KEY_FILE": str(tmp_path / "key"),
                                  "PRS_PROGRESS_KEY_SECRET": "s",
                                  "PRS_PROGRESS_KEY_SECRET_NAMESPACE": "ns"})
    assert settings.progress_key == b"from-file"
    assert (settings.key_secret_namespace, settings.key_secret_name) == ("ns", "s")


def test_settings_leave_the_key_to_the_secret_while_the_file_is_missing(tmp_path: Path) -> None:
    settings = Settings.from_env({"PRS_PROGRESS_KEY_FILE": str(tmp_path / "key"),
                                  "PRS_PROGRESS_KEY_SECRET": "s"})
    assert settings.progress_key == b""  # handlers.run reads or creates it (stored_key)
    assert settings.progress_key_file == str(tmp_path / "key")


def test_a_missing_key_file_without_a_secret_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "key"
    with pytest.raises(SettingsError, match=f"PRS_PROGRESS_KEY_FILE={missing}: no such file"):
        Settings.from_env({"PRS_PROGRESS_KEY_FILE": str(missing)})


def test_without_file_or_secret_the_process_has_a_key_of_its_own() -> None:
    first, second = Settings.from_env({}), Settings.from_env({})
    assert len(first.progress_key) == 32 and first.progress_key != second.progress_key
