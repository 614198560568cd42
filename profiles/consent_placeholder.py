"""PLACEHOLDER for the provenance work's `require_consent(profile)` (DESIGN §7b: swap refuses a
profile without a consent record). Swap mode (issue #17) calls it from `run.py live --mode swap`
and `run.py bench --mode swap`; when the provenance engineer's consent records land, the
coordinator points those two imports at the real function and deletes this file.

Until then a profile counts as consented when its profile.yaml carries a non-empty
``settings: consent: {by: "..."}`` (who agreed, and how); nothing is verified beyond that.
"""
from __future__ import annotations

from realtime.core.errors import ProfileError

__all__ = ["ConsentMissing", "require_consent"]


class ConsentMissing(ProfileError):
    """Swap mode on a profile without a consent record."""


def require_consent(profile) -> None:
    """PLACEHOLDER (see the module docstring): ConsentMissing unless `profile` has a consent record."""
    record = (getattr(profile, "settings", None) or {}).get("consent")
    by = record.get("by") if isinstance(record, dict) else None
    if not isinstance(by, str) or not by.strip():
        name = getattr(profile, "name", "?")
        raise ConsentMissing(f"profile {name!r} has no consent record, and swap mode puts its face on "
                             f"someone else's video: add 'settings: consent: {{by: \"who agreed, and how\"}}' "
                             f"to its profile.yaml (only with that person's consent)")
