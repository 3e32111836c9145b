"""Checks of the settings that reach the network or the file system, before anything uses them.

An export header with a space in its name or a newline in its value is accepted by nothing
downstream: gRPC rejects every export with "Invalid metadata" and HTTP clients refuse the
request, so a typo would silently stop all telemetry. Credentials in an endpoint URL are
never sent by the exporters and end up printed in their error messages. Both are refused
here with a ``ConfigError`` that names the option and never quotes a secret.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from ttbt5_otel._core.scrub import REDACTED, scrub_message
from ttbt5_otel._exceptions import ConfigError

# RFC 9110 section 5.6.2: a field name is a token.
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Visible ASCII, space and horizontal tab: what both gRPC metadata and HTTP/1.1 carry.
_FIELD_VALUE: Final = re.compile(r"[\t\x20-\x7e]*")
_USERINFO: Final = re.compile(r"(://[^/@:]*):[^/@]*@")


def mask_url(url: str) -> str:
    """``url`` with the password of any ``user:password@`` part replaced."""
    try:
        parts = urlsplit(url)
        password = parts.password
        port = parts.port
    except ValueError:
        return _USERINFO.sub(rf"\1:{REDACTED}@", url)
    if password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:{REDACTED}@{host}" + (f":{port}" if port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def check_endpoint(endpoint: str, source: str | None) -> None:
    """An ``http(s)://host[:port]`` URL without credentials."""
    shown = mask_url(endpoint)
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("endpoint", f"{shown!r} is not a valid URL: {exc}", source) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "endpoint", f"{shown!r} is not a valid URL (expected http(s)://host:port)", source
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "endpoint",
            f"{shown!r} carries credentials, which the exporters would not send; give them "
            "as an authorization header in TTBT5_OTLP_HEADERS instead",
            source,
        )
    if parts.query or parts.fragment:
        # The signal path is appended to the endpoint: a query would end up in the middle
        # of the URL, and it is where tokens hide; headers carry those.
        raise ConfigError(
            "endpoint",
            f"{scrub_message(mask_url(endpoint))!r} has a query string or fragment; give the "
            "base URL (http(s)://host:port[/path]) and any token as a header",
            source,
        )
    del port


def normalized_headers(headers: Mapping[str, str], source: str | None) -> dict[str, str]:
    """Export headers with valid names (lower-cased, as gRPC requires) and values."""
    normalized: dict[str, str] = {}
    for name, value in headers.items():
        key = name.strip()
        if not _TOKEN.fullmatch(key):
            raise ConfigError("headers", f"{key!r} is not a valid header name", source)
        text = str(value).strip()
        if not _FIELD_VALUE.fullmatch(text):
            # The value may be a credential: say what is wrong with it, never what it is.
            raise ConfigError(
                "headers",
                f"the value of {key!r} holds a control or non-ASCII character",
                source,
            )
        normalized[key.lower()] = text
    return normalized


def check_certificate(path: str | None, source: str | None) -> None:
    """A CA bundle that exists and is a regular, readable file."""
    if path is None:
        return
    if "\0" in path:
        raise ConfigError("certificate_file", "the path contains a NUL character", source)
    try:
        info = Path(path).stat()
    except OSError as exc:
        raise ConfigError("certificate_file", f"{path}: {exc.strerror}", source) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("certificate_file", f"{path} is not a regular file", source)
    if not os.access(path, os.R_OK):
        raise ConfigError("certificate_file", f"{path} is not readable", source)
