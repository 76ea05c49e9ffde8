"""French typography for everything a reader sees: a pure, table-driven pass over plain text.

Convention (Lexique des règles typographiques en usage à l'Imprimerie nationale, as French
typesetting software applies it): a narrow no-break space U+202F before « ; ! ? » and « % »
and between groups of digits (« 1 000 »); a no-break space U+00A0 before « : », inside
« guillemets », after « n° » and « ODD » before a number, and between a day and its month
(« 1er octobre »); the typographic apostrophe ’ between letters.

`typeset(text)` is for one run of text (a field, a Markdown text token, a template value);
URLs, e-mail addresses and placeholders inside it are left byte for byte. HTML goes through
the Markdown token stream (newsletter.markup) so that tags, attributes and code are never
touched. `faults(text)` lists what `typeset` would change: the tests use it on whole pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

NBSP = "\u00a0"  # espace insécable (mot)
NNBSP = "\u202f"  # espace fine insécable

_ANY_SPACE = "[ \u00a0\u202f]"
_MONTHS = "janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre"
_LETTER = r"[^\W\d_]"
# What must never change: links, addresses, and the outbox's per-recipient placeholders.
_PROTECTED = re.compile(
    r"(?:https?|ftp)://[^\s<>\"]+"
    r"|mailto:[^\s<>\"]+"
    r"|www\.[^\s<>\"]+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|@@[A-Z_]+@@"
)
_SHIELD = "\ue000"  # a private-use character stands for a protected run while rules apply
# After a double punctuation sign: a space, the end, or closing punctuation.
_CLOSES = rf"(?=\s|$|[»\")\].,…’'{_SHIELD}])"


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    replace: str | Callable[[re.Match[str]], str]


def _digit_groups(match: re.Match[str]) -> str:
    return re.sub(_ANY_SPACE, NNBSP, match.group(0))


def _quoted(match: re.Match[str]) -> str:
    return f"«{NBSP}{match.group(1).strip()}{NBSP}»"


RULES: tuple[Rule, ...] = (
    Rule("apostrophe", re.compile(rf"(?<={_LETTER})'(?={_LETTER})"), "’"),
    Rule("ellipsis", re.compile(r"\.\.\.(?!\.)"), "…"),
    Rule("straight quotes", re.compile(r'"(?=\S)([^"\n]*?\S)"'), _quoted),
    Rule("after «", re.compile(rf"«{_ANY_SPACE}*"), "«" + NBSP),
    Rule("before »", re.compile(rf"{_ANY_SPACE}*»"), NBSP + "»"),
    Rule(
        "before ; ! ?",
        re.compile(rf"(?:(?<=[^\s;!?])|^){_ANY_SPACE}*(?=[;!?]+{_CLOSES})"),
        NNBSP,
    ),
    Rule("before :", re.compile(rf"(?:(?<=[^\s:])|^){_ANY_SPACE}*(?=:(?:\s|$))"), NBSP),
    Rule("before %", re.compile(rf"(?<=\d){_ANY_SPACE}*(?=%)"), NNBSP),
    Rule("before €", re.compile(rf"(?<=\d){_ANY_SPACE}*(?=€)"), NBSP),
    Rule(
        "thousands",
        re.compile(rf"(?<![\d.,])\d{{1,3}}(?:{_ANY_SPACE}\d{{3}})+(?![\d])"),
        _digit_groups,
    ),
    Rule("n°", re.compile(rf"\b([nN])[°º]{_ANY_SPACE}*(?=\d)"), r"\1°" + NBSP),
    Rule("ODD n", re.compile(rf"\bODD{_ANY_SPACE}*(?=\d)"), "ODD" + NBSP),
    Rule("1er", re.compile(rf"(?<!\d)1{_ANY_SPACE}+(?=(?:{_MONTHS})\b)"), "1er" + NBSP),
    Rule(
        "day month",
        re.compile(rf"(?<!\d)(\d{{1,2}}|1er)[ \u202f]+(?=(?:{_MONTHS})\b)"),
        r"\1" + NBSP,
    ),
)


def _shield(text: str) -> tuple[str, list[str]]:
    kept: list[str] = []

    def hide(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return _SHIELD

    return _PROTECTED.sub(hide, text), kept


def _unshield(text: str, kept: list[str]) -> str:
    parts = iter(kept)
    return re.sub(_SHIELD, lambda _: next(parts), text)


def typeset(text: str | None) -> str:
    """`text` with French spacing, apostrophes and ordinals; URLs and addresses untouched."""
    if not text:
        return ""
    shielded, kept = _shield(text)
    for rule in RULES:
        shielded = rule.pattern.sub(rule.replace, shielded)
    return _unshield(shielded, kept)


def faults(text: str, context: int = 12) -> list[str]:
    """Where `text` breaks a rule: « rule: …snippet… » for each place `typeset` would change."""
    found = []
    shielded, _ = _shield(text)
    for rule in RULES:
        for match in rule.pattern.finditer(shielded):
            fixed = match.expand(rule.replace) if isinstance(rule.replace, str) else None
            if fixed is None:
                fixed = rule.replace(match)  # type: ignore[operator]
            if fixed != match.group(0):
                start, end = max(0, match.start() - context), match.end() + context
                found.append(f"{rule.name}: {shielded[start:end]!r}")
    return found
