"""Recognise credentials by the shape of a value, wherever it sits in a string.

Names catch ``password=...`` attributes; these rules catch what names cannot: a URL with a
password under ``db.url``, ``Bearer ...`` under an innocent header key, a token in a span
name or a stack trace, a dict rendered into one attribute. Each rule says which part of its
match is the secret (the ``secret`` group, else the whole match), so the redacted text keeps
its context (``password=[REDACTED]``, ``https://[REDACTED]@host``) and never a byte of the
secret.

The rules prefer precision on ordinary telemetry: a credential must have a credential's
shape (length, alphabet, a known prefix, or a secret-naming key before it). Every string is
first checked for a few cheap markers (``@``, ``=``, ``:``, a space, a known prefix); most
attribute values have none of the combinations the rules need and cost one scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Words that name a secret when they end a key in a key/value pair: `password=`,
# `client_secret: `, `'access_token': '`, `X-Amz-Signature=`. A word is only a key when
# nothing alphanumeric follows it, so `tokens_used=3` or `password_policy=strict` pass.
_CREDENTIAL_KEY_WORDS: Final = (
    r"pass(?:word|wd|phrase)?|pwd|pw|secret|client_?secret|token|access_?token|refresh_?token"
    r"|id_?token|auth_?token|api_?key|apikey|access_?key(?:_?id)?|secret_?(?:access_?)?key"
    r"|account_?key|shared_?access_?key|private_?key|credentials?|session_?(?:id|key|token)?"
    r"|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|sas|jwt"
)
_VALUE_CHAR: Final = r"[^\s&;,'\"}\])]"
# Header-like keys whose whole value (to the end of the quoted string or line) is secret,
# including several `a=b; c=d` pairs.
_HEADER_KEYS: Final = (
    r"cookie|set-cookie|authorization|proxy-authorization|x-api-key|x-auth-token"
    r"|x-access-token|x-csrf-token|x-amz-security-token"
)

_RULES: Final[tuple[tuple[str, str], ...]] = (
    (
        "private_key",
        (
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)"
            r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"
        ),
    ),
    # scheme://user:password@host and scheme://:password@host (redis, amqp, postgres, ...);
    # a password may hold an unescaped `@`: the userinfo ends at the last one.
    (
        "url_userinfo",
        r"\b(?i:[a-z][a-z0-9+.-]{1,20})://(?P<secret>[^\s/:@'\"]*:(?!\[REDACTED\]@)[^\s/'\"]+)@",
    ),
    (
        "header",
        rf"(?<![\w-])(?i:{_HEADER_KEYS})\\*['\"]?\s*[:=]\s*\\*['\"]?(?P<secret>[^'\"\r\n]+)",
    ),
    (
        "auth_scheme",
        (
            r"\b(?i:bearer|basic|token|digest|negotiate)\s+(?P<secret>"
            r"(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/-]{8,}=*|[A-Za-z0-9._~+/-]{20,}=*)"
        ),
    ),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    (
        "key_value",
        (
            # A key starts where no name character precedes it: starting inside a dotted or
            # dashed name too would rescan its segments from each one (quadratic time on
            # `a-a-a-...`). Command-line flags (`--api-token=x`) start with their dashes.
            rf"(?<![A-Za-z0-9_.-])-{{0,2}}(?:[A-Za-z0-9]+[_.-])*(?i:{_CREDENTIAL_KEY_WORDS})"
            r"(?![A-Za-z0-9])"
            # key=value is always a pair; so is 'key': 'value' (JSON, a rendered dict). A bare
            # `key: word` is as often prose or a Redis key (`session:index`), so it counts
            # only when the value has a credential's shape: a non-letter in it, or length.
            # Quotes may come escaped, once or more (JSON inside a repr inside JSON).
            r"(?:\\*['\"]?\s*=\s*\\*['\"]?|\\*['\"]\s*:\s*\\*['\"]"
            # A bare colon needs a space after it: `token:abc123` is a Redis key, not a pair.
            rf"|\s*:(?!//)\s+(?={_VALUE_CHAR}*[^A-Za-z\s&;,'\"}}\])]|{_VALUE_CHAR}{{12,}}))"
            # A quoted value runs to its closing quote, spaces included. SQL placeholders
            # ($1, %s, %(name)s, :name, ?) are where a value will go, not a value.
            r"(?P<secret>(?!\[REDACTED\]|\$\d|%s|%\(|:[A-Za-z_]|\?(?:[\s,)]|$))"
            rf"(?:(?<=['\"])[^'\"\r\n]+|{_VALUE_CHAR}+))"
        ),
    ),
    ("aws_access_key_id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),
    ("gcp_api_key", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    ("gcp_oauth_token", r"\bya29\.[0-9A-Za-z_-]{20,}"),
    (
        "azure_key",
        r"\b(?i:AccountKey|SharedAccessKey|SharedAccessSignature)=(?P<secret>[^;\s'\"]+)",
    ),
    (
        "saas_token",
        (
            r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
            r"|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"
            r"|npm_[A-Za-z0-9]{36,}|hf_[A-Za-z0-9]{30,}|AccountKey=[A-Za-z0-9+/=]{20,})"
        ),
    ),
    ("slack_webhook", r"hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9/]{20,})"),
)

_COMPILED: Final = {name: re.compile(pattern) for name, pattern in _RULES}
_MIN_LENGTH: Final = 6
_KEY_WORD_HINTS: Final = (
    "pass",
    "pw",
    "secret",
    "token",
    "key",
    "session",
    "sig",
    "credential",
    "jwt",
    "sas",
    "auth",
)
_SCHEME_HINTS: Final = ("bearer", "basic", "token", "digest", "negotiate")
_SAAS_HINTS: Final = (
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xox",
    "sk_",
    "rk_",
    "pk_",
    "sk-",
    "sg.",
    "npm_",
    "hf_",
    "accountkey=",
)
_AWS_HINT: Final = re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA)")


def _candidate_rules(text: str) -> list[str]:  # noqa: C901 - one flat check per rule
    """The rules whose markers ``text`` contains; a rule without its marker cannot match.

    Plain substring checks run in C at memory speed; running every rule's regex on every
    attribute value would cost tens of microseconds per span.
    """
    lower = text.lower()
    rules: list[str] = []
    separated = "=" in text or ":" in text
    if "private key" in lower:
        rules.append("private_key")
    if "://" in text and "@" in text:
        rules.append("url_userinfo")
    if separated and ("cookie" in lower or "authoriz" in lower or "x-" in lower):
        rules.append("header")
    if " " in text and any(hint in lower for hint in _SCHEME_HINTS):
        rules.append("auth_scheme")
    if "eyJ" in text:
        rules.append("jwt")
    if separated and any(hint in lower for hint in _KEY_WORD_HINTS):
        rules.append("key_value")
    if _AWS_HINT.search(text):
        rules.append("aws_access_key_id")
    if "AIza" in text:
        rules.append("gcp_api_key")
    if "ya29." in text:
        rules.append("gcp_oauth_token")
    if "=" in text and ("accountkey" in lower or "sharedaccess" in lower):
        rules.append("azure_key")
    if any(hint in lower for hint in _SAAS_HINTS):
        rules.append("saas_token")
    if "hooks.slack.com" in lower:
        rules.append("slack_webhook")
    return rules


@dataclass(frozen=True, slots=True)
class Finding:
    """One credential found in a string: where it is and which rule saw it."""

    rule: str
    start: int
    end: int


def find_secrets(text: str) -> list[Finding]:
    """Every credential in ``text``, left to right, overlaps merged; empty when clean."""
    if len(text) < _MIN_LENGTH:
        return []
    rules = _candidate_rules(text)
    if not rules:
        return []
    found: list[Finding] = []
    for rule in rules:
        pattern = _COMPILED[rule]
        has_group = "secret" in pattern.groupindex
        for match in pattern.finditer(text):
            start, end = match.span("secret") if has_group else match.span()
            if end > start:
                found.append(Finding(rule, start, end))
    if len(found) < 2:  # noqa: PLR2004 - one finding needs no merging
        return found
    found.sort(key=lambda f: (f.start, -f.end))
    merged = [found[0]]
    for finding in found[1:]:
        last = merged[-1]
        if finding.start < last.end:
            if finding.end > last.end:
                merged[-1] = Finding(last.rule, last.start, finding.end)
            continue
        merged.append(finding)
    return merged
