"""Avatar profiles: `profiles/<name>/profile.yaml` plus cached arrays (see format.py).

This folder holds both the code that reads and writes profiles and the profiles themselves
(each in its own sub-folder, ignored by git).
"""
from profiles.format import Profile, ProfileError, load, profiles_root, resolve, save

__all__ = ["Profile", "ProfileError", "load", "resolve", "save", "profiles_root"]
