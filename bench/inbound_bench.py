"""How fast `jeudis inbound --maildir` reads returning mail.

    python bench/inbound_bench.py [N]          # N Postfix DSNs (default 1000), SQLite file

Writes N hard-bounce DSNs (the Postfix sample, one per reader, each with its VERP address)
into a Maildir of a fresh JEUDIS_HOME, then times one `read_maildir` over them: parse,
verify, one transaction per message. Prints messages per second. See docs/returns.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from newsletter import tokens
from newsletter.config import load_settings
from newsletter.db import instance_secret, open_session
from newsletter.models import Subscriber
from newsletter.returnpath import return_path
from newsletter.returns import read_maildir

SAMPLE = Path(__file__).parent.parent / "tests" / "fixtures" / "returns" / "postfix_hard_dsn.eml"
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def main(count: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="jeudis-inbound-bench-"))
    settings = load_settings({"JEUDIS_HOME": str(home)})
    with open_session(settings) as session:
        readers = [
            Subscriber(email=f"r{i}@example.net", created_at=NOW, status_changed_at=NOW)
            for i in range(count)
        ]
        session.add_all(readers)
        session.commit()
        ids = [(reader.id, reader.email) for reader in readers]
    secret, box = instance_secret(settings), home / "returns"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    template = SAMPLE.read_text()
    for n, (subscriber_id, email) in enumerate(ids):
        verp = return_path(secret, settings.bounce_address, "2026-w48", subscriber_id)
        token = tokens.sign(secret, "unsubscribe", subscriber_id, email)
        text = template.replace("alice@example.net", email).replace("346B5214DD7", f"Q{n}")
        text = text.replace(f"{{{{VERP {email} 2026-w48}}}}", verp)
        text = text.replace(f"{{{{TOKEN {email}}}}}", token)
        (box / "new" / f"{n}.M1P1.bench").write_text(text)
    with open_session(settings) as session:
        start = time.perf_counter()
        summary = read_maildir(session, settings, lambda: NOW, box)
        seconds = time.perf_counter() - start
    print(summary.line())
    print(f"{count} messages in {seconds:.2f} s: {count / seconds:.0f} messages/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
