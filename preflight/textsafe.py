"""Text from a node made safe once, where it enters the model: inert (no terminal control) and scrubbed (no secrets).

Everything a node printed is data. `clean()` is applied where a `NodeRaw` is built (SSH, local, Slurm, the hang
gather, a bundle loaded from disk), to the output of one-off node commands and to files `preflight analyze` reads,
so no presenter (console, TUI, JSON, JUnit, Markdown, a bundle on disk) has to scrub or escape node text itself.

Inert: C0/C1 control characters other than newline and tab (ESC included, so no CSI/OSC sequence survives),
DEL and lone surrogates become visible escapes (`\\x1b`, `\\ud800`). CRLF and lone CR become newlines: every
parser already reads `\\r` as nothing or a line break, and a carriage return shown raw could overwrite a line.

Scrubbed: values under keys that name a secret (token, secret, password, passwd, passphrase, credential,
api_key, private_key, access_key, authorization; camelCase and `-`/`.` separators too, case-insensitive), the
same in `KEY=value` / `key: value` / `--key value` text, and known token shapes (Hugging Face, GitHub, AWS key
ids, Slack, JWT, PEM private keys, passwords in URLs). Nothing else: `8192 tokens = 12 GB` and
`experts_per_token: 8` are data, not secrets (a key names a secret only when its last word does).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
# Every marker scrub() writes: a report that contains none of them had nothing redacted.
MARKERS = (REDACTED, "[redacted-aws-key-id]", "[redacted-github-token]", "[redacted-hf-token]",
           "[redacted-slack-token]", "[redacted-jwt]", "[preflight: private key removed]")

# -- inert ------------------------------------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0))}
_ESCAPES.update({c: f"\\u{c:04x}" for c in range(0xD800, 0xE000)})


def inert(text: str) -> str:
    """`text` with no character a terminal, XML or UTF-8 would act on or choke on: shown as escapes instead."""
    if _CONTROL.search(text) is None:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n").translate(_ESCAPES)


# -- secret keys --------------------------------------------------------------------------------------------------

SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwords", "passwd", "passphrase",
                          "credential", "credentials", "apikey", "privatekey", "accesskey", "secretkey",
                          "authorization"})
SECRET_PAIRS = frozenset({("api", "key"), ("private", "key"), ("access", "key"), ("secret", "key")})
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def _words(key: str) -> list[str]:
    return [w.rstrip("0123456789") for w in re.split(r"[^a-z0-9]+", _CAMEL.sub(r"\1_\2", key).lower()) if w]


def is_secret_key(key: str) -> bool:
    """True when the key's last word names a secret (`HF_TOKEN`, `x_hf_token`, `apiKey`, `db-password`,
    `AWS_SECRET_ACCESS_KEY`), not a unit or a count (`experts_per_token`, `max_tokens`, `token_count`)."""
    words = _words(key)
    if not words:
        return False
    last = words[-1]
    if last in SECRET_WORDS:
        return len(words) < 2 or words[-2] != "per"
    return len(words) >= 2 and (words[-2], last) in SECRET_PAIRS


# -- secret text --------------------------------------------------------------------------------------------------

_KEY_WORD = (r"(?:token|secrets?|passw(?:or)?ds?|passphrase|credentials?|api[_.-]?key|private[_.-]?key|"
             r"access[_.-]?key|secret[_.-]?key|authorization)")
_VALUE = r"(?P<val>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;]+)"
# KEY=value, key: value, "key": "value", --key=value
_ASSIGN = re.compile(r"(?i)(?<![\w.-])(?P<key>[\w.-]*" + _KEY_WORD + r"[\w]*)(?P<sep>[\"']?[ \t]*[=:][ \t]*)"
                     r"(?:(?P<scheme>bearer|basic|token)[ \t]+)?" + _VALUE)
# --key value (a command line)
_FLAG = re.compile(r"(?i)(?<![\w-])(?P<key>--?[\w.-]*" + _KEY_WORD + r"[\w]*)(?P<sep>[ \t]+)(?P<scheme>)"
                   r"(?P<val>(?!-)[^\s\"']+)")
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s:,-]*)",
                  re.S)
_SHAPES = [  # (lower-case substrings one of which the text must hold, pattern, replacement)
    (("akia", "asia"), re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[redacted-aws-key-id]"),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"), "[redacted-github-token]"),
    (("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), "[redacted-hf-token]"),
    (("xox", "hooks.slack.com"), re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bhooks\.slack\.com/services/[A-Za-z0-9/]+"),
     "[redacted-slack-token]"),
    (("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), "[redacted-jwt]"),
    (("bearer",), re.compile(r"(?i)\bbearer[ \t]+(?!\[redacted)[A-Za-z0-9._~+/-]{16,}=*"), "Bearer " + REDACTED),
    (("://",), re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),  # scheme://user:password@host
]
_KEY_HINTS = ("token", "secret", "passw", "passphrase", "credential", "apikey", "api_key", "api-key", "api.key",
              "private", "access", "authoriz")
# Text holding none of these (lower-cased) cannot match any pattern: most node output. Plain substring tests,
# because one case-insensitive regex alternation is 25x slower over a node's output.
_HINTS = ("-----begin", *_KEY_HINTS, *(h for hints, _, _ in _SHAPES for h in hints))
_HINT_RX = re.compile("|".join(re.escape(h) for h in _HINTS))
_WHOLE_TEXT = 256 * 1024  # larger texts (an NCCL log for `preflight analyze`) are scrubbed line by line
_PREV_WORD = re.compile(r"(\S+)[ \t]+$")


def _unit_in_prose(m: re.Match[str]) -> bool:
    """`per token = 320 KiB`, `1 token: 4 B`: the key is a unit after `per` or a number, not a secret's name."""
    prev = _PREV_WORD.search(m.string, max(0, m.start() - 40), m.start())
    return prev is not None and (prev.group(1).lower() == "per" or prev.group(1).replace(".", "").isdigit())


def _keyed(m: re.Match[str]) -> str:
    if not is_secret_key(m.group("key")) or _unit_in_prose(m):
        return m.group(0)
    val = m.group("val")
    shown = val[0] + REDACTED + val[0] if val[:1] in ("'", '"') else REDACTED
    scheme = m.group("scheme")
    return m.group("key") + m.group("sep") + (scheme + " " if scheme else "") + shown


def _scrub_piece(text: str, low: str) -> str:
    """Every single-line pattern whose hint `low` (text lower-cased) holds."""
    for hints, rx, repl in _SHAPES:
        if any(h in low for h in hints):
            text = rx.sub(repl, text)
    if any(h in low for h in _KEY_HINTS):
        text = _FLAG.sub(_keyed, _ASSIGN.sub(_keyed, text))
    return text


def scrub(text: str) -> str:
    """`text` with secrets replaced by markers (see MARKERS); text with no secret comes back unchanged."""
    low = text.lower()
    if not any(h in low for h in _HINTS):
        return text
    if "-----begin" in low:  # the one shape that spans lines
        text = _PEM.sub("[preflight: private key removed]", text)
        low = text.lower()
    if len(text) <= _WHOLE_TEXT:
        return _scrub_piece(text, low)
    # Only the lines that hold a hint (lower() keeps every newline, so line numbers agree).
    lines = text.split("\n")
    hits: set[int] = set()
    line, pos = 0, 0
    for m in _HINT_RX.finditer(low):
        line += low.count("\n", pos, m.start())
        pos = m.start()
        hits.add(line)
    for i in hits:
        lines[i] = _scrub_piece(lines[i], lines[i].lower())
    return "\n".join(lines)


def clean_text(text: str) -> str:
    """Inert, then scrubbed: what every string from a node becomes."""
    return scrub(inert(text))


def _redact_all(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _redact_all(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return (list if isinstance(obj, list) else tuple)(_redact_all(v) for v in obj)
    if obj is None or isinstance(obj, bool) or obj == "":
        return obj
    return REDACTED


def clean(obj: Any) -> Any:
    """A copy of a JSON-like value with every string clean_text()'d and everything under a secret key redacted."""
    if isinstance(obj, str):
        return clean_text(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if isinstance(k, str):
                out[clean_text(k)] = _redact_all(v) if is_secret_key(k) else clean(v)
            else:
                out[k] = clean(v)
        return out
    if isinstance(obj, (list, tuple)):
        return (list if isinstance(obj, list) else tuple)(clean(v) for v in obj)
    return obj


def redactions(text: str) -> list[str]:
    """The markers in `text` (what a test looks for to prove nothing real was erased)."""
    return [m for m in MARKERS if m in text]
