"""Editors' accounts: named logins with roles, throttled, with sessions kept on the server."""

from newsletter.accounts.editors import (
    BadCredentials,
    add_editor,
    any_editor,
    change_own_password,
    list_editors,
    log_in,
    remove_editor,
    set_password,
)
from newsletter.accounts.passwords import PASSWORD_MIN, hash_password, parse_hash, verify_password
from newsletter.accounts.sessions import Identity, close, current
from newsletter.accounts.throttle import Throttled, french_message

__all__ = [
    "PASSWORD_MIN",
    "BadCredentials",
    "Identity",
    "Throttled",
    "add_editor",
    "any_editor",
    "change_own_password",
    "close",
    "current",
    "french_message",
    "hash_password",
    "list_editors",
    "log_in",
    "parse_hash",
    "remove_editor",
    "set_password",
    "verify_password",
]
