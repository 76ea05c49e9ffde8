"""A private Postfix on 127.0.0.1 for tests (see /work/shared/recipes/postfix-loopback.md).

Its own config, queue, data and mail folders in a temporary folder, its own free port,
loopback only, relaying everything to an aiosmtpd sink that stands for the world. Mail for
the bounce domain (the DSNs Postfix writes) lands in the Maildir `returns/`. Nothing under
/etc/postfix is touched; the instance is stopped and removed at the end.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from smtp_server import free_port

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
BOUNCE_DOMAIN = "bounce.test.example"
UNSUBSCRIBE = "desinscription@test.example"  # the List-Unsubscribe mailto address


def unavailable() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if not Path(POSTFIX).exists() or not Path("/etc/postfix/master.cf").exists():
        return "postfix is not installed (apt-get install postfix; .ci/run does)"
    if os.geteuid() != 0:
        return "a private postfix instance needs root (its daemons change to the postfix user)"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "no postfix user or postdrop group on this machine"
    return None


MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.test.example
mydomain = test.example
myorigin = test.example
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtp_tls_security_level = none
smtp_dns_support_level = disabled
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
# One try: a temporary refusal becomes a DSN at once (Action: failed, Status: 4.x.x)
# instead of waiting days in the queue.
maximal_queue_lifetime = 0
bounce_queue_lifetime = 0
# The README's lines: the bounce domain and the mailto address land in one Maildir.
virtual_mailbox_domains = {bounce_domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:returns/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_alias_maps = inline:{{ {unsubscribe}=unsubscribe@{bounce_domain} }}
recipient_delimiter = +
"""


class Postfix:
    """`with Postfix(sink_port) as mta:` then send to 127.0.0.1:mta.port; DSNs in mta.maildir."""

    def __init__(self, sink_port: int):
        self.sink_port = sink_port
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="jeudis-postfix-"))
        self.root.chmod(0o755)  # the postfix user must reach mail/ and data/
        self.etc = self.root / "etc"

    @property
    def maildir(self) -> Path:
        return self.root / "mail" / "returns"

    def _configure(self) -> None:
        for name in ("etc", "spool", "data", "mail"):
            (self.root / name).mkdir()
        master = Path("/etc/postfix/master.cf").read_text()
        master = master.replace("smtp      inet", f"{self.port}      inet", 1)
        (self.etc / "master.cf").write_text(master)
        user = pwd.getpwnam("postfix")
        (self.etc / "main.cf").write_text(
            MAIN_CF.format(
                root=self.root,
                sink_port=self.sink_port,
                bounce_domain=BOUNCE_DOMAIN,
                unsubscribe=UNSUBSCRIBE,
                uid=user.pw_uid,
                gid=user.pw_gid,
            )
        )
        for name in ("data", "mail"):
            os.chown(self.root / name, user.pw_uid, user.pw_gid)

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [POSTFIX, "-c", str(self.etc), *args], capture_output=True, text=True, check=check
        )

    def __enter__(self) -> Postfix:
        self._configure()
        self._postfix("set-permissions", check=False)
        started = self._postfix("start", check=False)
        if started.returncode != 0:
            log = (self.root / "maillog").read_text() if (self.root / "maillog").exists() else ""
            self.__exit__()
            raise RuntimeError(f"postfix did not start: {started.stderr}{log[-2000:]}")
        return self

    def __exit__(self, *exc) -> None:
        self._postfix("stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_for_returns(self, count: int, within: float = 60.0) -> list[Path]:
        """The messages in returns/new once there are `count` of them (or what came in time)."""
        deadline = time.monotonic() + within
        new = self.maildir / "new"
        while time.monotonic() < deadline:
            self._postfix("flush", check=False)
            found = sorted(new.iterdir()) if new.is_dir() else []
            if len(found) >= count:
                return found
            time.sleep(0.2)
        return sorted(new.iterdir()) if new.is_dir() else []

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text() if path.exists() else ""

    def report(self, lines: int = 40) -> str:
        """What a short count needs: the Maildir's files, Postfix's queue, the log's tail."""
        new = self.maildir / "new"
        names = sorted(path.name for path in new.iterdir()) if new.is_dir() else []
        queue = subprocess.run(
            [POSTQUEUE, "-c", str(self.etc), "-p"], capture_output=True, text=True, check=False
        )
        tail = "\n".join(self.log().splitlines()[-lines:])
        return (
            f"returns/new holds {len(names)}: {names}\n"
            f"postqueue -p:\n{queue.stdout}{queue.stderr}\n"
            f"maillog (last {lines} lines):\n{tail}"
        )
