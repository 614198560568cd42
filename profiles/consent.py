"""Consent records: who agreed to a profile's use, how, and when (DESIGN §7b).

A profile's ``profile.yaml`` may hold one record::

    consent:
      by: "Jane Doe, signed release of 2025-03-01"   # who consented and how (free text)
      date: "2025-03-04T10:12:00+00:00"              # when it was recorded (UTC)
      via: enroll                                    # enroll --consent, or the consent command
      sha256: 9f2c...                                # digest of the above + the arrays' sha256

The YAML itself is not hashed (its ``files`` list carries the hashes of the other files), so
the record carries its own digest: sha256 over (by, date, via, the sha256 of ``arrays.npz`` as
listed). `profiles.format.load` recomputes it: a record edited by hand, or copied from another
profile (whose arrays differ), is refused like a file whose hash does not match. It is an
integrity check, not a signature: whoever runs this code can write a valid record, which is
what ``run.py consent`` is for. So a profile someone hands over may bring a record its maker
wrote, true or not: the records made on this machine (``enroll --consent``, ``run.py consent``)
are remembered by their digest in ``consent-records.json`` of the user's cache folder
(`realtime.core.paths.cache_dir`, outside every profile), and a record that is not there is
described as not recorded on this machine (`describe`, `recorded_here`: brought with the profile,
or recorded before this engine kept the ledger, or in another cache folder), which swap says
before it starts.

Swap mode (issue #17) calls `require_consent`; reenactment of paintings, cartoons or oneself
needs no record, and ``run.py consent`` lists which profiles have one.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import yaml

from profiles import store
from profiles.schema import ConsentRecordError, consent_command, printable, read_yaml
from realtime.core import paths
from realtime.core.errors import ProfileError
from realtime.core.ledger import DigestLedger
from realtime.core.profile import ARRAYS_FILE, YAML_FILE, cli_name

__all__ = ["ConsentError", "consent_digest", "check_text", "make_record", "check_record", "record_consent",
           "revoke_consent", "require_consent", "describe", "list_profiles", "remember", "recorded_here", "rebind",
           "MAX_TEXT", "LEDGER_FILE"]

MAX_TEXT = 500
VIA = ("enroll", "consent")


class ConsentError(ProfileError):
    """A profile without the consent record an operation needs, or a consent text refused."""


def consent_digest(by: str, date: str, via: str, arrays_sha256: str) -> str:
    blob = json.dumps(["puppeteer consent v1", by, date, via, arrays_sha256], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def check_text(text: str, flag: str = "--by") -> str:
    """The consent text with its whitespace runs made single spaces; ConsentError when that is
    empty or longer than MAX_TEXT. `flag` is the option the user gave it with (consent's --by,
    enroll's --consent): the error's example names it."""
    t = " ".join(str(text).split())
    if not t or len(t) > MAX_TEXT:
        raise ConsentError(f"consent text must say who agreed and how, in 1-{MAX_TEXT} characters "
                           f"(e.g. {flag} \"Jane Doe, signed release 2025-03-01\"), got "
                           f"{printable(str(text), 60)!r}{f' ({len(t)} characters)' if t else ''}")
    if any(unicodedata.category(ch)[0] == "C" for ch in t):   # the profile would not load
        raise ConsentError(f"consent text {printable(t, 60)!r} contains control characters (a terminal "
                           f"escape, a bell, ...): type it as plain text")
    return t


#: the records made on this machine (their sha256), in the user's cache folder
LEDGER_FILE = "consent-records.json"
#: the most digests it keeps (the newest): a few thousand profiles' records
LEDGER_MAX = 10_000


_LEDGER = DigestLedger(LEDGER_FILE, "sha256", keep=LEDGER_MAX,
                       notice=lambda text: print(f"note: {text}", file=sys.stderr))
_unwritable_said = False


def remember(record: dict) -> None:
    """Note `record` as made on this machine (its digest in the ledger). A cache folder that
    cannot be written loses only that, said once: the record then reads as not recorded here."""
    global _unwritable_said
    try:
        _LEDGER.add(record["sha256"])
    except OSError as e:
        if not _unwritable_said:
            _unwritable_said = True
            print(f"note: cannot keep the consent record in {_LEDGER.path} ({e.strerror or e}): it will read as "
                  f"not recorded on this machine; set PUPPETEER_CACHE to a writable folder", file=sys.stderr)


def recorded_here(record: dict | None) -> bool:
    """Whether `record` was made on this machine (`remember`), not brought by the profile."""
    return bool(record) and record["sha256"] in _LEDGER


def rebind(record: dict, arrays_sha256: str) -> dict:
    """`record` (verified) bound to new arrays (a profile saved again: `Profile.to_yaml`); the
    new record is remembered as made here when the old one was (or is enroll's, still unbound:
    `make_record` with no arrays digest)."""
    new = make_record(record["by"], arrays_sha256, record["via"], record["date"])
    unbound = record["sha256"] == consent_digest(record["by"], record["date"], record["via"], "")
    if unbound or recorded_here(record):
        remember(new)
    return new


def make_record(by: str, arrays_sha256: str, via: str = "consent", date: str | None = None) -> dict:
    """A consent record bound to the arrays whose sha256 is given."""
    if via not in VIA:
        raise ValueError(f"via must be one of {VIA}, got {via!r}")
    by = check_text(by)
    date = date or datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"by": by, "date": date, "via": via,
            "sha256": consent_digest(by, date, via, arrays_sha256)}


def check_record(record, arrays_sha256: str, where: str | os.PathLike) -> dict | None:
    """The verified record (None when there is none); ProfileError when it does not check."""
    if record is None:
        return None
    fields = ("by", "date", "via", "sha256")
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in fields):
        raise ConsentRecordError(f"{where}: the consent record must have text fields {', '.join(fields)}; "
                                 f"record it again with: {consent_command(where)}")
    expect = consent_digest(record["by"], record["date"], record["via"], arrays_sha256)
    if record["sha256"] != expect:
        raise ConsentRecordError(f"{where}: the consent record does not match its sha256 (edited by hand, "
                                 f"or copied from another profile); record it again with: "
                                 f"{consent_command(where)}")
    return {k: record[k] for k in fields}


def _rewrite(folder: Path, change) -> dict:
    with store.yaml_lock(Path(folder)):     # a training may commit into the same YAML meanwhile
        return _rewrite_locked(folder, change)


def _rewrite_locked(folder: Path, change) -> dict:
    yml = Path(folder) / YAML_FILE
    if not yml.is_file():
        raise ProfileError(f"{folder} has no {YAML_FILE}; is it a profile folder?")
    meta = read_yaml(yml)    # bounded; broken YAML or not UTF-8 is a ProfileError
    entry = (meta.get("files") or {}).get(ARRAYS_FILE) if isinstance(meta, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise ProfileError(f"{yml} lists no {ARRAYS_FILE} with a sha256")
    change(meta, entry["sha256"])
    try:
        store.write_yaml(yml, meta)
    except OSError as e:      # a read-only profile folder, a full disk: one line, nothing changed
        raise store.write_error(Path(folder), e, f"make {Path(folder)} writable and try again",
                                where=f"the profile folder {folder}") from None
    return meta


def record_consent(folder: str | os.PathLike, by: str, via: str = "consent") -> dict:
    """Write (or replace) the consent record of the profile in `folder`; returns it. The YAML is
    replaced atomically. Load the profile afterwards to verify it."""
    record = {}

    def change(meta, sha):
        record.update(make_record(by, sha, via))
        meta["consent"] = record

    _rewrite(Path(folder), change)
    remember(record)
    return record


def revoke_consent(folder: str | os.PathLike) -> None:
    """Remove the consent record of the profile in `folder` (if any)."""
    _rewrite(Path(folder), lambda meta, sha: meta.pop("consent", None))


def require_consent(profile) -> dict:
    """The profile's consent record, or ConsentError (one line that says how to add one). Swap
    mode calls this before it starts: it puts a real person's face on someone else."""
    record = getattr(profile, "consent", None)
    if not record:
        name, folder = cli_name(profile), getattr(profile, "folder", None)
        command = (consent_command(Path(folder) / YAML_FILE, "NAME, how they agreed") if folder is not None
                   else f'python run.py consent {name} --by "NAME, how they agreed"')
        raise ConsentError(f"profile {name!r} has no consent record, and swap puts a real person's "
                           f"face on someone else: record who agreed and how with: {command}")
    return record


def describe(record: dict | None) -> str:
    if not record:
        return "no consent record"
    where = "" if recorded_here(record) else ("; not in this machine's consent records: brought with the "
                                              "profile, or recorded before they were kept")
    return (f"consent: {printable(record['by'])} (recorded {printable(record['date'])} via "
            f"{printable(record['via'])}{where})")


def list_profiles(root: Path) -> list[tuple[str, str, str]]:
    """(folder name, fingerprint, consent description) of every profile under `root`; the
    record is verified against the listed arrays hash (not the arrays file itself)."""
    rows = []
    for yml in sorted(Path(root).glob(f"*/{YAML_FILE}")):
        name = yml.parent.name
        try:
            if (why := paths.not_a_file(yml)) is not None:   # a pipe would hang the listing
                raise ProfileError(f"{yml} {why}; enroll the profile again")
            meta = read_yaml(yml)    # bounded, and not UTF-8 is a ProfileError, as `load` says it
            sha = meta["files"][ARRAYS_FILE]["sha256"]
            try:
                text = describe(check_record(meta.get("consent"), sha, yml))
            except ConsentRecordError as exc:   # the arrays' fingerprint stands without it
                text = f"unreadable: {str(exc).splitlines()[0][:100]}"
            rows.append((name, str(sha)[:6], text))
        except (ProfileError, yaml.YAMLError, KeyError, TypeError, OSError) as exc:
            rows.append((name, "?", f"unreadable: {str(exc).splitlines()[0][:100]}"))
    return rows
