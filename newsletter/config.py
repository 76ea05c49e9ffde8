"""Settings: one typed object, loaded once from `$JEUDIS_HOME/jeudis.toml` and `JEUDIS_*`."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def shipped_folder(name: str) -> Path:
    """A data folder that ships in the wheel as newsletter/_NAME (see pyproject.toml), else the
    top-level folder of the checkout this code runs from (an editable install, a clone)."""
    inside = Path(str(resources.files("newsletter"))) / f"_{name}"
    return inside if inside.is_dir() else PROJECT_ROOT / name


TEMPLATES_DIR = shipped_folder("templates")
SAMPLE_CONTENT_DIR = shipped_folder("content")


@dataclass(frozen=True)
class Settings:
    """Everything an instance can be told; every field has a default that works on a laptop."""

    home: Path = Path("var")
    database_url: str = ""  # default: sqlite file in home
    # The key that signs tokens, sessions and Message-IDs (hex); empty: the database's own.
    secret: str = field(default="", repr=False)
    templates_dir: Path = TEMPLATES_DIR
    timezone: str = "Europe/Paris"
    send_day: str = "thu"
    send_time: str = "08:00"
    first_issue_number: int = 1
    # Public addresses: the web archive and the unsubscribe endpoints live under base_url.
    base_url: str = "http://127.0.0.1:8017"
    from_address: str = "Les Jeudis de l’ODD 17 <jeudis@lerameau.example.org>"
    reply_to: str = ""
    list_id: str = "jeudis-odd17.lerameau.example.org"
    unsubscribe_mailto: str = "desinscription@lerameau.example.org"
    # Who sends the letter, for its footer (Le RAMEAU's postal address; set your own).
    org_name: str = "Le RAMEAU"
    org_address: str = "1, allée Charles-V, 94300 Vincennes, France"
    contact_address: str = "contact@lerameau.example.org"
    # Delivery.
    smtp_url: str = "smtp://127.0.0.1:25"
    smtp_timeout: float = 30.0
    send_rate: float = 10.0
    send_connections: int = 1
    max_defer: float = 72.0  # hours after an issue's send time before a message is given up
    send_after_build: bool = False
    dkim_key_file: str = ""
    dkim_selector: str = ""
    dkim_domain: str = ""
    # What comes back (newsletter/returns): the VERP envelope sender's base address, where to
    # read returning mail, and how many consecutive issues of soft bounces bounce a reader.
    bounce_address: str = "bounces@lerameau.example.org"
    inbound_maildir: str = ""
    inbound_imap_url: str = ""
    inbound_poll_minutes: int = 5
    soft_bounce_limit: int = 3
    # Feeds.
    feed_timeout: float = 10.0
    feed_max_bytes: int = 5_000_000
    feed_max_age_days: int = 30
    feed_fetch_time: str = "06:00"
    summary_max_chars: int = 280
    # Web desk.
    web_host: str = "127.0.0.1"
    web_port: int = 8017
    # Addresses or networks of reverse proxies whose X-Forwarded-For is believed (none: a
    # forwarded request is never local, and its visitor is the proxy).
    trusted_proxies: tuple[str, ...] = ()
    # Limits of the web server (`jeudis serve`).
    web_max_body_bytes: int = 1_000_000
    web_body_timeout: float = 30.0
    web_header_timeout: float = 10.0
    web_idle_timeout: int = 5
    web_max_connections: int = 1000
    # Sign-up: one confirmation per address per interval, sign-ups per client per hour,
    # days an unconfirmed sign-up is kept.
    signup_confirm_interval_hours: float = 24.0
    signup_per_client_per_hour: int = 10
    signup_pending_days: int = 7
    desk_password_hash: str = ""  # before named accounts: opens the `admin` account
    desk_session_idle_minutes: int = 30
    desk_session_hours: int = 12
    # The content folder the desk re-imports when its files change (empty: ./content, if
    # this instance was filled from it).
    content_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        return self.database_url or default_database_url(self.home)

    @property
    def content_root(self) -> Path | None:
        """The `content_dir` setting as a folder (None when not set)."""
        return Path(self.content_dir) if self.content_dir else None

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def sent_dir(self) -> Path:
        return self.home / "sent"

    @property
    def archive_dir(self) -> Path:
        """The published web copy: static files any web server could serve."""
        return self.home / "site"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"


def default_database_url(home: Path) -> str:
    """The embedded default: a SQLite file in the instance folder (tests swap this function)."""
    return f"sqlite:///{(home / 'jeudis.db').as_posix()}"


def _coerce(name: str, kind: Any, value: Any, origin: str) -> Any:
    try:
        if kind in (bool, "bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if kind in (int, "int"):
            return int(value)
        if kind in (float, "float"):
            return float(value)
        if kind == "tuple[str, ...]":  # a TOML list, or comma-separated in the environment
            items = value if isinstance(value, list) else str(value).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if kind in (Path, "Path"):
            return Path(str(value))
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{origin}: {name}: {value!r} is not a valid {kind}") from None


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Read `$JEUDIS_HOME/jeudis.toml` then `JEUDIS_*` variables (environment wins).

    Every value is checked here, so a wrong one stops any command at once with one line
    naming the file (or variable), the setting and what is wrong."""
    env = os.environ if environ is None else environ
    home = Path(env.get("JEUDIS_HOME", "var"))
    values: dict[str, Any] = {"home": home}
    origins: dict[str, str] = {}
    types = {f.name: f.type for f in fields(Settings) if f.name != "extra"}
    toml_path = home / "jeudis.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{toml_path}: {exc}") from None
        for key, value in data.items():
            if key not in types or key == "home":
                raise SettingsError(f"{toml_path}: {key}: unknown setting")
            values[key] = _coerce(key, types[key], value, str(toml_path))
            origins[key] = str(toml_path)
    for key, kind in types.items():
        env_key = f"JEUDIS_{key.upper()}"
        if key != "home" and env_key in env:
            values[key] = _coerce(key, kind, env[env_key], env_key)
            origins[key] = env_key
    values.update(overrides)
    settings = Settings(**values)
    try:
        _check(settings)
    except SettingsError as exc:  # each check names its setting first: add where it came from
        setting = str(exc).partition(":")[0]
        raise SettingsError(f"{origins.get(setting, 'settings')}: {exc}") from None
    return settings


SEND_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # the scheduler's day names
SMTP_SCHEMES = ("smtp://", "smtp+starttls://", "smtps://")
# Numbers that must be above zero (the port is checked on its own).
POSITIVE = ("send_rate", "smtp_timeout", "feed_timeout", "feed_max_bytes", "summary_max_chars")


def _is_hh_mm(text: str) -> bool:
    hour, _, minute = text.partition(":")
    return (
        len(minute) == 2
        and hour.isdigit()
        and minute.isdigit()
        and int(hour) < 24
        and int(minute) < 60
    )


def _check(settings: Settings) -> None:
    """Raise SettingsError("<setting>: <what is wrong>") for the first wrong value."""
    _check_schedule_and_numbers(settings)
    if not settings.base_url.startswith(("http://", "https://")):
        raise SettingsError(f"base_url: {settings.base_url!r} must start with http:// or https://")
    if not settings.smtp_url.startswith(SMTP_SCHEMES):
        raise SettingsError(f"smtp_url: must start with {', '.join(SMTP_SCHEMES)}")
    if settings.secret and not re.fullmatch(r"(?:[0-9a-fA-F]{2}){32,}", settings.secret):
        raise SettingsError("secret: must be at least 64 hexadecimal characters")
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise SettingsError(
                f"trusted_proxies: {proxy!r} is not an IP address or network"
            ) from None
    local, _, domain = settings.bounce_address.rpartition("@")
    if not local or "." not in domain or "+" in local:
        raise SettingsError(
            f"bounce_address: {settings.bounce_address!r} is not a plain address like "
            "bounces@example.org (the sender adds +TAG.ID.MAC to it)"
        )
    for name in ("inbound_poll_minutes", "soft_bounce_limit"):
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name}: {getattr(settings, name)} must be at least 1")


def _check_schedule_and_numbers(settings: Settings) -> None:
    try:
        settings.tz  # noqa: B018
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"timezone: {settings.timezone!r} is not a known time zone") from None
    if settings.send_day not in SEND_DAYS:
        raise SettingsError(f"send_day: {settings.send_day!r} is not one of {', '.join(SEND_DAYS)}")
    for name in ("send_time", "feed_fetch_time"):
        if not _is_hh_mm(getattr(settings, name)):
            raise SettingsError(f"{name}: {getattr(settings, name)!r} is not HH:MM")
    for name in POSITIVE:
        if not getattr(settings, name) > 0:
            raise SettingsError(f"{name}: {getattr(settings, name)!r} must be above 0")
    for name in ("first_issue_number", "feed_max_age_days"):
        if getattr(settings, name) < 0:
            raise SettingsError(f"{name}: {getattr(settings, name)!r} must not be negative")
    if not 0 < settings.web_port < 65536:
        raise SettingsError(f"web_port: {settings.web_port!r} is not a port (1 to 65535)")


def with_home(settings: Settings, home: Path) -> Settings:
    """A copy of the settings pointing at another instance folder."""
    return replace(settings, home=home)
