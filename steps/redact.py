"""Secrets out of everything shown or written: messages, logs, saved configs, JSON files, pages.

A secret may ride in any URL or connection string a user gives (a dataset repo, a webhook, the
Argo server, pretrained weights, the database). Its shape gives it away, whatever the URL:

- the password of a URL's userinfo (`scheme://user:PASSWORD@host`), and the whole userinfo of an
  http(s) URL without a password (`https://TOKEN@github.com`, git's token form);
- the value of a URL's query (or fragment) parameter whose name, percent-decoded, says secret:
  `?password=`, `?%70assword=`, `&sslpassword=`, `?token=`, `?X-Goog-Signature=`, `#access_token=`;
- libpq's `password=...` keyword, quoted (`'a b'`, with `\\'` escapes) or not (`a\\ b`);
- a path segment of an http(s) URL that looks like a token (24 or more letters and digits, mixing
  upper case, lower case and digits: Slack's and Discord's webhook URLs carry one).

`redact` is for free text, where a parameter's value ends at white space. `redact_value` is for a
string that is one URL or connection string (libpq reads `?password=a b` as `a b`). Redact before
cutting: a URL cut short first may no longer look like one, and its password would show.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

MASK = "***"

# A password runs to the last `@` of the URL (an unescaped `@` or `/` in it must not leak its
# tail), bounded so that quoting a huge value stays linear.
# libpq takes a raw space in one, so white space does not end it; a port (`host:2746/x`) is no password.
_USERINFO = re.compile(
    r"""(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@"'<>]*):(?!\d*(?:[/?#\s"'<>]|$))(?:(?!://)[^\n"'<>]){0,512}@""")
_BARE_USERINFO = re.compile(r"""(\bhttps?://)[^\s:/?#@"'<>]{1,512}@""", re.IGNORECASE)
_PARAM = re.compile(r"""([?&;#]\s*)([^=&#?;\s"'<>]{1,64})(\s*=\s*)(\*\*\*|[^&#\s"'<>]*)""")
_PARAM_SPACES = re.compile(r"""([?&;#]\s*)([^=&#?;\s"'<>]{1,64})(\s*=\s*)(\*\*\*|[^&#\n"'<>]*)""")
_KEYWORD = re.compile(r"""(?i)((?<![?&;#%\w.\-])(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|"(?:[^"\\]|\\.)*"?|(?:[^\s\\]|\\.)+)""")
_HTTP_URL = re.compile(r"""\bhttps?://[^\s"'<>]+""", re.IGNORECASE)
_TOKEN_SEGMENT = re.compile(r"(?<=/)(?=[^/]*[A-Z])(?=[^/]*[a-z])(?=[^/]*[0-9])[A-Za-z0-9_\-]{24,}(?![^/])")
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "sig", "auth", "credential")


def _param(match: re.Match[str]) -> str:
    head, key, equals, value = match.groups()
    name = unquote(key).lower()
    if value == MASK or not any(word in name for word in _SECRET_WORDS):
        return match.group(0)
    return f"{head}{key}{equals}{MASK}"


def _path_tokens(match: re.Match[str]) -> str:
    url = match.group(0)
    start = url.find("/", url.index("://") + 3)
    if start < 0:
        return url
    end = min((i for i in (url.find("?", start), url.find("#", start)) if i >= 0), default=len(url))
    return url[:start] + _TOKEN_SEGMENT.sub(MASK, url[start:end]) + url[end:]


def _redact(text: str, param: re.Pattern[str]) -> str:
    if "@" not in text and "=" not in text and "://" not in text:
        return text  # the common case, for free
    text = _USERINFO.sub(rf"\1:{MASK}@", text)
    text = _BARE_USERINFO.sub(rf"\1{MASK}@", text)
    if "://" in text:  # query parameters only in a URL: a COCO RLE string (`...?xKEY=...`) is no query
        text = param.sub(_param, text)
    text = _KEYWORD.sub(rf"\1{MASK}", text)
    return _HTTP_URL.sub(_path_tokens, text)


def redact(text: object) -> str:
    """`text` (a message, a log line, a command line) with every secret-looking part replaced by ***."""
    return _redact(str(text), _PARAM)


def redact_value(value: object) -> str:
    """One URL or connection string with its secrets replaced by ***; unlike `redact`, a parameter's
    value may contain spaces (libpq reads `?password=a b` as password `a b`)."""
    return _redact(str(value), _PARAM_SPACES)


def redact_data(value: Any) -> Any:
    """`value` (parsed JSON or YAML) with every string in it redacted, keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_data(key): redact_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item) for item in value]
    return value


def secret_parts(value: str) -> list[str]:
    """The secret fragments of one URL or connection string, as written and percent-decoded: a
    driver's error may quote either."""
    found = [m.group(0)[len(m.group(1)) + 1: -1] for m in _USERINFO.finditer(value)]
    found += [m.group(0)[len(m.group(1)): -1] for m in _BARE_USERINFO.finditer(value)]
    found += [m.group(4) for m in _PARAM_SPACES.finditer(value) if _param(m) != m.group(0)]
    found += [m.group(2).strip("'\"") for m in _KEYWORD.finditer(value)]
    found += [unquote(part) for part in found]
    return sorted({part for part in found if part and part != MASK}, key=len, reverse=True)


def scrub(message: str, value: str) -> str:
    """`message` (e.g. a driver's error, which may quote a fragment of `value`) without any of
    `value`'s secrets, then redacted."""
    for secret in secret_parts(value):
        message = message.replace(secret, MASK)
    return redact(message)
