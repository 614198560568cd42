"""realtime.core.ledger: the digests this machine vouches for, in the user's cache folder."""
from __future__ import annotations

import json
import multiprocessing

from realtime.core.ledger import DigestLedger


def _add_many(cache: str, start: int) -> None:
    import os

    os.environ["PUPPETEER_CACHE"] = cache
    ledger = DigestLedger("test.json", "sha256")
    for k in range(start, start + 100):
        ledger.add(f"{k:064x}")


def test_two_writers_at_once_keep_every_entry(tmp_path, monkeypatch):
    """Review of stop 64: the consent ledger had no lock; two processes adding 150 digests each
    kept 156 of 300."""
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_add_many, args=(str(tmp_path), start)) for start in (0, 1000)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(set(DigestLedger("test.json", "sha256").read())) == 200


def test_keep_bounds_it_to_the_newest_and_a_damaged_file_is_set_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("PUPPETEER_CACHE", str(tmp_path))
    told = []
    ledger = DigestLedger("l.json", "sha256", keep=3, notice=told.append)
    for d in "abcd":
        ledger.add(d * 64)
    assert ledger.read() == [d * 64 for d in "bcd"] and "d" * 64 in ledger and "a" * 64 not in ledger
    ledger.add("b" * 64)                       # again: the newest now
    assert ledger.read() == [d * 64 for d in "cdb"]
    (tmp_path / "l.json").write_text('{"sha256": ["' + "a" * 64)     # cut short
    assert ledger.read() == [] and told and "moved to l.json.damaged" in told[0]
    assert json.loads((tmp_path / "l.json.damaged").read_text() + '"]}')["sha256"] == ["a" * 64]
    assert ledger.problem() is None
