"""Request checks of the server: token, Origin and Host, safe file paths, size limits.

The defaults assume a server bound to a loopback address and used by a browser on the
same machine. A web page on another site must not be able to drive it (Origin check),
a DNS-rebinding page must not reach it under a foreign host name (Host check), and
file routes must never serve anything outside their folders.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


class ConfigError(Exception):
    """Raised for a server configuration that would be unsafe or cannot work; the message names the option to pass."""


class PathRejected(Exception):
    """Raised when a requested file path is not a plain path inside its folder."""


@dataclass
class Limits:
    """Size limits; requests over them get a 4xx with the limit in the message."""

    # A workflow document may be up to 16 MiB (nodegraph.document.MAX_DOCUMENT_BYTES); the request adds params.
    max_body_bytes: int = 17 * 1024 * 1024
    max_upload_bytes: int = 32 * 1024 * 1024
    # 64 megapixels: an 8K by 8K image. Pillow's own guard warns at 89 M and fails at twice that.
    max_image_pixels: int = 64_000_000
    max_workflow_nodes: int = 20_000
    max_queued_runs: int = 1000


@dataclass
class Security:
    """The request policy: a token, extra Origins and extra Host names."""

    token: str | None = None
    allowed_origins: set[str] = field(default_factory=set)
    allowed_hosts: set[str] = field(default_factory=set)

    def check_token(self, header: str | None, query_token: str | None) -> bool:
        """Return whether the request carries the token (always true when none is configured)."""
        if self.token is None:
            return True
        supplied = None
        if header and header.lower().startswith("bearer "):
            supplied = header[7:].strip()
        elif query_token:
            supplied = query_token
        return supplied is not None and hmac.compare_digest(supplied.encode(), self.token.encode())

    def host_allowed(self, host_header: str | None) -> bool:
        """Return whether the Host header names this server: a loopback name or a configured one."""
        if not host_header:
            return False
        if "*" in self.allowed_hosts:
            return True
        name = host_name(host_header)
        return name in LOOPBACK_NAMES or name in self.allowed_hosts

    def origin_allowed(self, origin: str | None, host_header: str | None, scheme: str) -> bool:
        """Return whether a request's Origin is this server itself or on the allow-list.

        A request without Origin comes from a program, not from a page in a browser, and is allowed.
        `Origin: null` (sandboxed frames, file: pages, some redirects) is always rejected.
        """
        if origin is None:
            return True
        origin = origin.strip()
        if origin == "null" or not origin:
            return False
        if origin.rstrip("/") in self.allowed_origins:
            return True
        parts = urlsplit(origin)
        if not parts.scheme or not parts.netloc or host_header is None:
            return False
        return parts.scheme == scheme and parts.netloc.lower() == host_header.strip().lower()


def host_name(host_header: str) -> str:
    """Return the host name of a Host header without the port, lower case, IPv6 without brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(address: str) -> bool:
    """Return whether a bind address only accepts connections from this machine."""
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Reject binding a non-loopback address without a token.

    Raises:
        ConfigError: naming the address and how to proceed.
    """
    if is_loopback(host) or token:
        return
    raise ConfigError(
        f"refusing to listen on {host}: any machine that can reach it could run workflows and read files. "
        "Pass --token TOKEN (or set NODEGRAPH_TOKEN) so clients must send 'Authorization: Bearer TOKEN', "
        "or bind 127.0.0.1"
    )


def resolve_inside(folder: Path, relative: str) -> Path:
    """Return the real path of `relative` inside `folder`, after resolving symlinks.

    Raises:
        PathRejected: the path is empty, absolute, has a NUL or backslash, or resolves outside the folder.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise PathRejected("the file path is empty or contains NUL or backslash characters")
    if relative.startswith("/") or Path(relative).is_absolute():
        raise PathRejected("the file path must be relative to its folder")
    if any(part == ".." for part in relative.split("/")):
        raise PathRejected("the file path must not contain '..'")
    root = folder.resolve()
    path = (root / relative).resolve()
    if root != path and root not in path.parents:
        raise PathRejected("the file path leads outside its folder")
    return path
