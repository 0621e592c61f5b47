"""Request checks: Host names, Origins, tokens, bind addresses and file paths."""

from __future__ import annotations

import os

import pytest

from nodegraph.security import PathRejected, Security, host_name, is_loopback, resolve_inside


@pytest.mark.parametrize("header, name", [
    ("localhost:8189", "localhost"), ("127.0.0.1", "127.0.0.1"), ("[::1]:8189", "::1"), ("Example.COM:80", "example.com"),
])
def test_host_name_strips_port(header, name):
    assert host_name(header) == name


def test_host_allowed_loopback_and_configured():
    security = Security(allowed_hosts={"box.lan"})
    assert security.host_allowed("localhost:8189")
    assert security.host_allowed("[::1]:8189")
    assert security.host_allowed("box.lan:8189")
    assert not security.host_allowed("evil.example:8189")
    assert not security.host_allowed(None)
    assert Security(allowed_hosts={"*"}).host_allowed("anything:1")


def test_origin_same_or_allowed():
    security = Security(allowed_origins={"http://localhost:3000"})
    assert security.origin_allowed(None, "127.0.0.1:8189", "http")
    assert security.origin_allowed("http://127.0.0.1:8189", "127.0.0.1:8189", "http")
    assert security.origin_allowed("http://localhost:3000", "127.0.0.1:8189", "http")
    assert not security.origin_allowed("http://127.0.0.1:8190", "127.0.0.1:8189", "http")
    assert not security.origin_allowed("https://127.0.0.1:8189", "127.0.0.1:8189", "http")
    assert not security.origin_allowed("null", "127.0.0.1:8189", "http")
    assert not security.origin_allowed("", "127.0.0.1:8189", "http")


def test_token_header_or_query():
    security = Security(token="abc")
    assert security.check_token("Bearer abc", None)
    assert security.check_token("bearer abc", None)
    assert security.check_token(None, "abc")
    assert not security.check_token("Bearer abd", None)
    assert not security.check_token("Basic abc", None)
    assert not security.check_token(None, None)
    assert Security().check_token(None, None)


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.com", False),
])
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_resolve_inside_accepts_nested(tmp_path):
    (tmp_path / "sub").mkdir()
    assert resolve_inside(tmp_path, "sub/a.png") == (tmp_path / "sub" / "a.png").resolve()


@pytest.mark.parametrize("relative, message", [
    ("", "the file path is empty or contains NUL or backslash characters"),
    ("a\x00.png", "the file path is empty or contains NUL or backslash characters"),
    ("..\\x", "the file path is empty or contains NUL or backslash characters"),
    ("/etc/passwd", "the file path must be relative to its folder"),
    ("a/../../x", "the file path must not contain '..'"),
    ("out/x", "the file path leads outside its folder"),
])
def test_resolve_inside_rejects(tmp_path, relative, message):
    folder = tmp_path / "folder"
    folder.mkdir()
    os.symlink(tmp_path, folder / "out")
    with pytest.raises(PathRejected) as raised:
        resolve_inside(folder, relative)
    assert str(raised.value) == message
