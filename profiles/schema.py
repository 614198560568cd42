"""The schema of a profile, checked when it loads: nothing a profile folder holds is trusted.

`profiles.format.load` calls, in order:

1. `read_yaml`: profile.yaml at most `MAX_YAML_BYTES`, UTF-8, `yaml.SafeLoader` only; the
   composed document is measured *with its aliases expanded* (an alias bomb in `name:` is a few
   hundred bytes that expand to gigabytes) and refused past `MAX_YAML_NODES` nodes,
   `MAX_YAML_CHARS` characters or `MAX_YAML_DEPTH` levels, or with a key given twice in one
   mapping, before anything is constructed.
2. `check_meta`: every field's type, range and length (`files` a mapping of {path, sha256},
   `settings` a mapping with the keys the engine reads typed and ranged, and the records
   settings.atlas and settings.neural held to the keys enroll and train write, the optional
   `consent` {by, date, how}, its fields text); strings the terminal shows (name, source, ...)
   hold no control characters.
3. `read_arrays`: the `.npy` headers inside arrays.npz are read first (dtype, shape, the bytes
   the member really holds: `realtime.core.npyheader`, shared with tracked clips) and checked
   against `ARRAYS` (each dimension capped; a deflated 50,000² image or a header declaring
   27.9 GiB is refused before a byte is allocated); then `np.load(allow_pickle=False)` of the
   arrays this engine knows (an unknown member, from a newer engine, is allowed if small and
   never read).
4. `check_arrays`: every array's full shape (478 landmarks, `crop_size`, the same K, N, ...
   wherever a dimension recurs), finiteness, value ranges (masks, gains, a rotation), index
   ranges (head triangles, atlas simplices) and the geometry (`_check_geometry`: points near the
   image, the interocular, the crop's scale and framing, canonical values, the face frame, each
   within a wide margin of what enroll writes: the engine uses some of them as sizes).
5. `check_enrolled_from`: `kind` and `settings.atlas` agree with the arrays (a video's
   profile holds an atlas, a photo's none).

Every failure is one `ProfileError` line that names the field and says what to do. The file
is one thing (the schema), hence its length.
"""
from __future__ import annotations

import difflib
import math
import os
import re
import shlex
import unicodedata
import zipfile
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import yaml

from realtime.core.errors import ProfileError, PuppeteerError
from realtime.core.npyheader import member_header
from realtime.core.text import printable
from realtime.face import topology
from realtime.mesh.gains import check_gains
from realtime.tiers.registry import TIER_NAMES

__all__ = ["ConsentRecordError", "MAX_YAML_BYTES", "ARRAYS", "read_yaml", "check_meta", "accepted_digests",
           "read_arrays", "check_arrays", "check_enrolled_from", "printable", "check_text", "listed_size_problem",
           "MAX_LISTED_BYTES"]

MAX_YAML_BYTES = 1 << 20
MAX_YAML_NODES = 200_000
MAX_YAML_CHARS = 4 << 20
MAX_YAML_DEPTH = 40
MAX_FILES = 64
MAX_NAME = 128
MAX_TEXT = 1024
MAX_CONSENT = 200
MAX_ARRAY_MEMBERS = 64
MAX_ARRAYS_BYTES = 768 << 20
#: The most bytes a file the YAML lists may have, by suffix (else the last): checked from its
#: size before it is hashed (a listed 20 GB file took 54 s to hash before its sha256 refused it).
#: A train state at 512² (`realtime.tiers.neural.checkpoint.MAX_CHECKPOINT_BYTES`) is the largest.
MAX_LISTED_BYTES = {".npz": MAX_ARRAYS_BYTES, ".png": 64 << 20, ".safetensors": 2 << 30, "": 2 << 30}
#: The target image's longest side, at most: enroll writes at most `profiles.enroll.MAX_SIDE`
#: (1280, photos and clips alike); 2048 leaves room for a later enroll of a 1080p frame whole.
#: (It was 8192: a 192 MiB image that a 1 MB deflated arrays.npz could declare, for nothing
#: enroll ever writes.)
MAX_IMAGE_SIDE = 2048
SHA256 = re.compile(r"[0-9a-f]{64}")

# Dimensions: name -> (lowest, highest). A name that recurs must have one value across arrays.
DIMS = {"H": (16, MAX_IMAGE_SIDE), "W": (16, MAX_IMAGE_SIDE), "S": (16, 1024), "K": (1, 4096),
        "B": (1, 4096), "T": (1, 200_000), "N": (1, 1024), "A": (16, 1024), "D": (0, 4),
        "P": (0, 1_000_000), "D1": (1, 5)}
L = topology.N_LANDMARKS
UINT8, INT, FLOAT = ("u1",), ("i4", "i8"), ("f4", "f8")
# name -> (allowed dtypes, shape: ints are fixed sizes, strings name a dimension of DIMS)
ARRAYS = {
    "image": (UINT8, ("H", "W", 3)),
    "landmarks": (FLOAT, (L, 3)),
    "neutral": (FLOAT, (L, 3)),
    "frame_rotation": (FLOAT, (3, 3)),
    "frame_scale": (FLOAT, ()),
    "frame_translation": (FLOAT, (3,)),
    "crop_from_image": (FLOAT, (2, 3)),
    "head_points": (FLOAT, ("K", 3)),
    "head_gains": (FLOAT, ("K",)),
    "head_border": (FLOAT, ("B", 2)),
    "head_triangles": (INT, ("T", 3)),
    "paste_mask": (FLOAT, ("S", "S")),
    "face_mask": (UINT8, ("S", "S")),
    "atlas_images": (UINT8, ("N", "A", "A", 3)),
    "atlas_landmarks": (FLOAT, ("N", L, 3)),
    "atlas_query": (FLOAT, ("N", 4)),
    "atlas_dims": (INT, ("D",)),
    "atlas_simplices": (INT, ("P", "D1")),
    "atlas_flipped": (UINT8, ("N",)),
    "atlas_frames": (INT, ("N",)),
}
#: An array this engine does not know (one a newer engine added) is allowed, so that such a
#: profile still loads here, if small; its header is checked like the others', but it is never
#: read: nothing here uses it, and a loaded profile's arrays are never saved again (35 unknown
#: members of 16 MiB of zeros deflate to 2.5 MB and took 560 MiB when they were loaded).
UNKNOWN_ARRAY_BYTES = 16 << 20

# Geometry: the values that become sizes (the eye layer's texture grids and blurs, the crop's
# scale) bounded against what enroll writes. Measured on the evaluation targets (photos s0, s1,
# s5, s9, s12 at crop 128, 256 and 512; clips s18 and s32; the astronaut demo): landmarks and
# head_border -0.01..0.94 of the image's size inside it, |z| at most 0.15 image sides, the
# interocular 56..208 px (0.08..0.18 image sides), crop_from_image a similarity of 0.28..1.23
# crop px per image px whose crop box's centre lies on the face, the interocular 0.23..0.30 crop
# sides in the crop, neutral and head_points within ±3.4 (canonical units), atlas_query within
# ±1.3, frame_scale 34..126 px (0.05..0.11 image sides), atlas_landmarks inside their crop with
# |z| at most 0.45 of its side.
GEOMETRY_MARGIN = 1.0        # image sizes a point (x, y) may lie outside the image, at most
MAX_DEPTH = 2.0              # |z| in image sides (atlas_landmarks: atlas crop sides), at most
#: The interocular distance (outer eye corners) in image px: enroll refuses a face under 24 px
#: (`profiles.enroll.MIN_INTEROCULAR_PX`; a clip's median, from which its reference frame may
#: differ a little): half of it, up to the image's longest side.
MIN_INTEROCULAR = 12.0
CROP_SCALE = (1 / 64, 64.0)  # crop px per image px along either axis of crop_from_image
FACE_IN_CROP = (1 / 32, 4.0)  # the interocular in crop px, in crop sides (crop_size)
MAX_CANONICAL = 16.0         # |value| of neutral, head_points (canonical units) and atlas_query
CANONICAL_ARRAYS = ("neutral", "head_points", "atlas_query")


class ConsentRecordError(ProfileError):
    """A profile whose consent record does not check (its fields, or its sha256): the rest of
    the profile may be sound, and `run.py consent NAME --by/--revoke` replaces the record."""


def profiles_root() -> Path:
    """Where profiles live: $PUPPETEER_PROFILES (a leading ~ expanded, as a shell would not inside
    quotes), else the `profiles/` folder of the project."""
    env = os.environ.get("PUPPETEER_PROFILES")
    return Path(env).expanduser() if env else Path(__file__).resolve().parent


def consent_command(where: str | os.PathLike, by: str = "...") -> str:
    """``python run.py consent PROFILE --by "<by>"`` for the profile whose YAML is `where`: its
    folder's name where that folder lies in `profiles_root`, else the folder's path."""
    folder = Path(where).parent
    try:
        named = (profiles_root() / folder.name).resolve() == folder.resolve()
    except OSError:
        named = False
    target = folder.name if named else str(folder)
    return f'python run.py consent {shlex.quote(target)} --by "{by}"'


def _fail(where: str, problem: str) -> ProfileError:
    return ProfileError(f"{where}: {problem}; fix it or enroll the profile again")


def check_text(value, field: str, where: str, limit: int, required: bool = True) -> str | None:
    """`value` as a string of 1..`limit` characters without control characters."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"{field} must be a non-empty string, not {_show(value)}")
    if len(value) > limit:
        raise _fail(where, f"{field} is {len(value)} characters long (at most {limit})")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise _fail(where, f"{field} {printable(value, 60)!r} contains control characters")
    return value


def _show(value) -> str:
    text = value if isinstance(value, str) else type(value).__name__
    return repr(printable(text, 40)) if isinstance(value, str) else text


# ------------------------------------------------------------------------------------ YAML
def _yaml_problem(e: yaml.YAMLError) -> str:
    """What the parser says, and where: "line L, column C (1-based): PROBLEM (CONTEXT)"."""
    mark = getattr(e, "problem_mark", None)
    problem, context = getattr(e, "problem", None), getattr(e, "context", None)
    if mark is None or not problem:
        return printable(str(e).splitlines()[0], 160)
    what = f"{problem} ({context})" if context else problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {printable(what, 160)}"


def listed_size_problem(path: Path) -> str | None:
    """Why the listed file `path` is too large to be one of a profile's (`MAX_LISTED_BYTES`), or
    None. OSError from stat is the caller's."""
    size = path.stat().st_size
    cap = MAX_LISTED_BYTES.get(path.suffix.lower(), MAX_LISTED_BYTES[""])
    if size > cap:
        return f"is {size} bytes, more than a profile's {path.suffix or 'file'} may be ({cap >> 20} MiB)"
    return None


def read_yaml(path: Path) -> dict:
    """profile.yaml as a mapping, bounded (see the module doc). Raises ProfileError."""
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ProfileError(f"{path} is {size} bytes (a profile.yaml is at most "
                               f"{MAX_YAML_BYTES >> 10} KiB); enroll the profile again")
        raw = path.read_bytes()[:MAX_YAML_BYTES + 1]
    except OSError as e:
        raise ProfileError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ProfileError(f"{path} is not UTF-8 text (byte {e.start}, line {line}); "
                           f"save it again as UTF-8 (an editor's 'ANSI' or 'Unicode'/UTF-16 is not), or "
                           f"enroll the profile again") from None
    try:
        loader = yaml.SafeLoader(text)   # checks every character: a NUL or an escape raises here
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position)
        column = e.position - (text.rfind("\n", 0, e.position) + 1)
        raise ProfileError(f"{path} is not valid YAML: line {line + 1}, column {column + 1}: character "
                           f"#x{e.character:04x} (a control character) is not allowed; delete it, or enroll "
                           f"the profile again") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _measure(node, path)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ProfileError(f"{path} is not valid YAML: {_yaml_problem(e)}") from None
    except (RecursionError, ValueError, OverflowError, TypeError) as e:
        raise ProfileError(f"{path} is not a valid profile YAML ({type(e).__name__}); enroll the "
                           f"profile again") from None
    finally:
        loader.dispose()
    if data is None:
        raise ProfileError(f"{path} is empty; enroll the profile again")
    if not isinstance(data, dict):
        raise ProfileError(f"{path} does not hold a mapping of settings (it holds "
                           f"{type(data).__name__}); is it a profile.yaml?")
    return data


def _measure(root: yaml.Node, path: Path) -> None:
    """Nodes, characters and depth of the document with every alias expanded (memoised per
    node, so the measure itself stays cheap); a recursive alias is refused too."""
    memo: dict[int, tuple[int, int] | None] = {}

    def too_big(what: str) -> ProfileError:
        return ProfileError(f"{path} expands to {what} (YAML aliases?); a profile.yaml is plain "
                            f"settings: enroll the profile again")

    def size(node: yaml.Node, depth: int) -> tuple[int, int]:
        if depth > MAX_YAML_DEPTH:
            raise too_big(f"more than {MAX_YAML_DEPTH} levels")
        key = id(node)
        if key in memo:
            got = memo[key]
            if got is None:
                raise too_big("a recursive structure")
            return got
        memo[key] = None
        if isinstance(node, yaml.MappingNode):
            _no_duplicate_keys(node, path)
        if isinstance(node, yaml.ScalarNode):
            got = (1, len(node.value))
        else:
            children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                        else list(node.value))
            nodes, chars = 1, 0
            for child in children:
                n, c = size(child, depth + 1)
                nodes, chars = nodes + n, chars + c
                if nodes > MAX_YAML_NODES:
                    raise too_big(f"more than {MAX_YAML_NODES} values")
                if chars > MAX_YAML_CHARS:
                    raise too_big(f"more than {MAX_YAML_CHARS >> 20} M characters")
            got = (nodes, chars)
        memo[key] = got
        return got

    size(root, 0)


def _no_duplicate_keys(node: yaml.MappingNode, path: Path) -> None:
    """ProfileError for a key given twice in one mapping (YAML keeps the last one without a word:
    a `tier: atlas` added above the file's own `tier: warp` did nothing)."""
    seen: dict[tuple[str, str], yaml.Node] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        first = seen.setdefault((key.tag, key.value), key)
        if first is not key:
            raise ProfileError(f"{path} is not valid YAML: line {key.start_mark.line + 1}: "
                               f"{printable(key.value, 40)!r} is given twice (also on line "
                               f"{first.start_mark.line + 1}), and only the last one would count: "
                               f"delete one of them")


def _int(value, field: str, where: str, lo: int, hi: int) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise _fail(where, f"{field} must be a whole number in {lo}..{hi}, not "
                           f"{printable(str(value), 40)!r}")
    return value


def _number(value, field: str, where: str, lo: float, hi: float) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or not lo <= value <= hi:
        raise _fail(where, f"{field} must be a number in {lo:g}..{hi:g}, not "
                           f"{printable(str(value), 40)!r}")
    return float(value)


def _mapping(value, field: str, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _fail(where, f"{field} must be a mapping of names to values, not {_show(value)}")
    return value


#: The fields of profile.yaml (`profiles.format.Profile.to_yaml`); any other is a mistake, said
#: as one in `settings` is (`label: false` or `no_label: true` were taken without a word, and
#: did nothing). A newer engine that adds a field raises `format`.
FIELDS = ("format", "name", "kind", "source", "created", "tier", "crop_size", "settings", "files", "consent")


def _known_keys(mapping: dict, known, where: str, what, then: str) -> None:
    """ProfileError for the first key of `mapping` not in `known`: "`what(key)` (did you mean
    NEAREST?); `then`"."""
    for key in mapping:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            raise _fail(where, f"{what(printable(str(key), 30))}{f' (did you mean {near[0]}?)' if near else ''}; "
                               f"{then}")


def check_meta(meta: dict, where: str) -> None:
    """Types, ranges and lengths of profile.yaml's fields (the arrays come later)."""
    _known_keys(meta, FIELDS, where, lambda key: f"{key!r} is not a profile.yaml field",
                f"it holds {', '.join(FIELDS)} (the engine's settings go under settings:)")
    check_text(meta.get("name", "x"), "name", where, MAX_NAME)
    if meta.get("kind") not in (None, "image", "video"):    # none (a bare `kind:`): read from the arrays
        raise _fail(where, f"kind must be 'image' or 'video', not {_show(meta.get('kind'))}")
    check_text(meta.get("source", "x") or "x", "source", where, MAX_TEXT)
    created = meta.get("created", "x")
    if not isinstance(created, date):
        check_text(created or "x", "created", where, 64)
    if meta.get("tier", "warp") not in TIER_NAMES:
        raise _fail(where, f"tier {_show(meta.get('tier'))} is not one of {', '.join(TIER_NAMES)}")
    _int(meta.get("crop_size", 256), "crop_size", where, *DIMS["S"])
    _check_files(meta.get("files"), where)
    _check_settings(_mapping(meta.get("settings"), "settings", where), where)
    try:
        _check_consent(meta.get("consent"), where)
    except ConsentRecordError:
        raise
    except ProfileError as exc:
        raise ConsentRecordError(f"{str(exc).removesuffix('; fix it or enroll the profile again')}; "
                                 f"record it again with: {consent_command(where)} (or --revoke)") from None


def _check_consent(consent, where: str) -> None:
    if consent is not None:
        consent = _mapping(consent, "consent", where)
        extra = sorted(set(consent) - {"by", "date", "via", "sha256"})
        if extra:
            raise _fail(where, f"consent has unknown fields {[printable(k, 20) for k in extra[:4]]} "
                               f"(it holds by, date, via, sha256)")
        for key, value in consent.items():
            if (unquoted := _unquoted(value)) is not None:
                raise _fail(where, f"consent.{key} is not in quotes, so YAML reads it as {unquoted}, not "
                                   f"text: put it in quotes, as enroll wrote it"
                                   + (f" ({key}: '{value.isoformat()}')" if isinstance(value, date) else ""))
            check_text(value, f"consent.{key}", where, MAX_CONSENT)


def _unquoted(value) -> str | None:
    """What YAML made of an unquoted scalar that is not text (a date, a number, true/false), in
    words; None for anything else (a record's fields are text: `date: 2026-12-07` is a date)."""
    if isinstance(value, date):
        return "a date"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return None


def _check_files(files, where: str) -> None:
    files = _mapping(files, "files", where)
    if len(files) > MAX_FILES:
        raise _fail(where, f"files lists {len(files)} files (at most {MAX_FILES})")
    for key, entry in files.items():
        check_text(key, "a files entry name", where, 256)
        if not isinstance(entry, dict):
            raise _fail(where, f"files entry {printable(key, 60)!r} must be a mapping with path and "
                               f"sha256, not {_show(entry)}")
        check_text(entry.get("path"), f"files[{printable(key, 60)!r}].path", where, 256)
        for field in ("sha256", "previous_sha256"):
            value = entry.get(field)
            if field == "previous_sha256" and value is None:
                continue
            if not isinstance(value, str) or not SHA256.fullmatch(value):
                raise _fail(where, f"files[{printable(key, 60)!r}].{field} is not a sha256 (64 hex "
                                   f"digits)")


#: The settings the engine reads (`_check_settings`); any other key is a mistake (a typo such
#: as `gain:` was ignored without a word).
SETTINGS = ("gains", "atlas", "swap", "neural")


#: The keys of the settings sections. `swap` is written by hand; `atlas` (what a video's
#: enrollment recorded: `profiles.enroll_video`) and `neural` (what `train` recorded) are records:
#: `train` reads atlas's fps, frame_range and source_sha256 and neural's resolution, enroll's
#: summary and bench the counts; a key added by hand is read by nothing, and is refused.
SECTION_KEYS = {
    "swap": ("drop_fringe",),
    "atlas": ("frames", "frame_range", "fps", "usable_frames", "rejected", "reference_frame", "source_sha256",
              "source_bytes", "source_frames", "keyframes", "flipped", "simplices", "dims", "query_range",
              "crop_size", "colour_shift_max", "config", "other_people"),
    "neural": ("resolution", "steps", "pairs", "face_l1"),
}
#: The records among the sections, and what wrote them (for an unknown key's error).
RECORDS = {"atlas": "a video's enrollment", "neural": "train"}
#: The atlas's query dimensions (`realtime.tiers.atlas.query.DIM_NAMES`, not imported: scipy).
ATLAS_DIMS = ("yaw", "pitch", "mouth", "eyes")


def _check_settings(settings: dict, where: str) -> None:
    """The settings, typed and ranged; an unknown key, at the top or in a section, is refused
    with the nearest known one (`settings.atlas.config`, enroll's own settings as recorded, is
    free: bounded by read_yaml)."""
    _known_keys(settings, SETTINGS, where, lambda key: f"settings.{key} is not a setting",
                f"the engine reads {', '.join(SETTINGS)}")
    if "gains" in settings:
        try:
            gains = settings["gains"]     # `gains:` alone (null) is none; 0, false, '' or [] are mistakes
            check_gains({} if gains is None else gains, where=f"{where}: settings.gains", numbers_only=True)
        except PuppeteerError as e:
            raise ProfileError(str(e)) from None
    for section, known in SECTION_KEYS.items():
        for key in _mapping(settings.get(section), f"settings.{section}", where):
            if key not in known:
                near = difflib.get_close_matches(str(key), known, n=1)
                said = (f"settings.{section}.{printable(str(key), 30)} is not a setting"
                        f"{f' (did you mean {near[0]}?)' if near else ''}")
                if section in RECORDS:     # a record: what was added to it does nothing
                    raise ProfileError(f"{where}: {said}; settings.{section} is the record {RECORDS[section]} "
                                       f"wrote, and nothing reads a key added to it: delete it")
                raise _fail(where, f"{said}; the engine reads {', '.join(known)} there")
    atlas = _mapping(settings.get("atlas"), "settings.atlas", where)
    if "frame_range" in atlas:
        fr = atlas["frame_range"]
        if (not isinstance(fr, list) or len(fr) != 2 or not all(type(v) is int for v in fr)
                or not 0 <= fr[0] <= fr[1] <= 100_000_000):
            raise _fail(where, f"settings.atlas.frame_range must be [first, last] frame numbers, "
                               f"not {printable(str(fr), 60)}")
    if "other_people" in atlas:     # [[first, last], ...] frames of someone else: `train` skips them
        spans = atlas["other_people"]
        if (not isinstance(spans, list) or len(spans) > 10_000
                or not all(isinstance(sp, list) and len(sp) == 2 and all(type(v) is int for v in sp)
                           and 0 <= sp[0] <= sp[1] <= 100_000_000 for sp in spans)):
            raise _fail(where, f"settings.atlas.other_people must be a list of [first, last] frame "
                               f"numbers, not {printable(str(spans), 60)}")
    if "fps" in atlas:
        _number(atlas["fps"], "settings.atlas.fps", where, 0.1, 1000.0)
    for key in ("frames", "usable_frames", "reference_frame", "keyframes", "flipped", "source_frames",
                "source_bytes", "simplices"):
        if key in atlas:
            _int(atlas[key], f"settings.atlas.{key}", where, 0, 1 << 50)
    for reason, n in _mapping(atlas.get("rejected"), "settings.atlas.rejected", where).items():
        _int(n, f"settings.atlas.rejected.{printable(reason, 30)}", where, 0, 1 << 50)
    if "dims" in atlas and not (isinstance(atlas["dims"], list) and len(atlas["dims"]) <= len(ATLAS_DIMS)
                                and all(d in ATLAS_DIMS for d in atlas["dims"])):
        raise _fail(where, f"settings.atlas.dims must be a list of {', '.join(ATLAS_DIMS)}, not "
                           f"{printable(str(atlas['dims']), 60)}")
    for dim, span in _mapping(atlas.get("query_range"), "settings.atlas.query_range", where).items():
        if (dim not in ATLAS_DIMS or not isinstance(span, list) or len(span) != 2
                or not all(type(v) in (int, float) and math.isfinite(v) for v in span)):
            raise _fail(where, f"settings.atlas.query_range must map {', '.join(ATLAS_DIMS)} to [low, high] "
                               f"numbers, not {printable(str(dim), 30)}: {printable(str(span), 60)}")
    if "colour_shift_max" in atlas:
        _number(atlas["colour_shift_max"], "settings.atlas.colour_shift_max", where, 0.0, 1000.0)
    _mapping(atlas.get("config"), "settings.atlas.config", where)   # enroll's settings, as recorded
    if "crop_size" in atlas:
        _int(atlas["crop_size"], "settings.atlas.crop_size", where, *DIMS["A"])
    if "source_sha256" in atlas and not (isinstance(atlas["source_sha256"], str)
                                         and SHA256.fullmatch(atlas["source_sha256"])):
        raise _fail(where, "settings.atlas.source_sha256 is not a sha256 (64 hex digits)")
    swap = _mapping(settings.get("swap"), "settings.swap", where)
    if "drop_fringe" in swap and not isinstance(swap["drop_fringe"], bool):
        raise _fail(where, f"settings.swap.drop_fringe must be true or false, not "
                           f"{printable(str(swap['drop_fringe']), 60)}")
    neural = _mapping(settings.get("neural"), "settings.neural", where)
    if "resolution" in neural:
        _int(neural["resolution"], "settings.neural.resolution", where, 16, 1024)
    for key in ("steps", "pairs"):
        if key in neural:
            _int(neural[key], f"settings.neural.{key}", where, 0, 1 << 50)
    # face_l1: {render, output} on the held-out frames (`held_out` of them), and `trained`: the
    # same on frames it trained on (run.py's cmd_train)
    face_l1 = _mapping(neural.get("face_l1"), "settings.neural.face_l1", where)
    for key, value in face_l1.items():
        name = f"settings.neural.face_l1.{printable(str(key), 30)}"
        if key in ("render", "output"):
            _number(value, name, where, 0.0, 1e6)
        elif key == "held_out":
            _int(value, name, where, 0, 1 << 50)
        elif key == "trained":
            for k, v in _mapping(value, name, where).items():
                if k not in ("render", "output"):
                    raise _not_a_record_key(where, f"{name}.{printable(str(k), 30)}")
                _number(v, f"{name}.{k}", where, 0.0, 1e6)
        else:
            raise _not_a_record_key(where, name)


def _not_a_record_key(where: str, name: str) -> ProfileError:
    return ProfileError(f"{where}: {name} is not a setting; settings.neural is the record train wrote "
                        f"(face_l1: {{render, output, held_out, trained: {{render, output}}}}), and nothing "
                        f"reads a key added to it: delete it")


def check_enrolled_from(meta: dict, has_atlas: bool, where: str) -> None:
    """ProfileError where `kind` or `settings.atlas` (records of what enroll read: a photo, or a
    video, which gave the profile its atlas arrays) contradicts the arrays: an edit of either did
    nothing, without a word (the engine goes by the arrays: `Profile.has_atlas`)."""
    kind = meta.get("kind")
    made = "a video" if has_atlas else "a photo"
    if kind is not None and kind != ("video" if has_atlas else "image"):
        raise ProfileError(f"{where}: kind is {kind!r}, but the profile {'holds an' if has_atlas else 'has no'} "
                           f"atlas: it was enrolled from {made}, as kind records, and "
                           f"editing kind changes nothing; set 'kind: {'video' if has_atlas else 'image'}' back"
                           + ("" if has_atlas else " (a video profile is made with: python run.py enroll "
                                                   "CLIP.mp4 --name NAME)"))
    settings = meta.get("settings")
    if not has_atlas and isinstance(settings, dict) and settings.get("atlas") is not None:
        raise ProfileError(f"{where}: settings.atlas is the record of a video's enrollment, and this profile "
                           f"has no atlas (it was enrolled from a photo): nothing reads it; delete it")


def accepted_digests(entry: dict) -> set[str]:
    """The sha256 a listed file may have: its own, and during `profiles.store.commit_files`
    (new files renamed into place one by one) the one it replaces."""
    return {entry["sha256"]} | ({entry["previous_sha256"]} if entry.get("previous_sha256") else set())


# ---------------------------------------------------------------------------------- arrays
def read_arrays(path: Path, name: str, crop_size: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of arrays.npz at `path`, every member's header checked before it is read;
    with `crop_size` (the YAML's), the crop-sized arrays are held to it (S) rather than to the
    first one read (a wrong-shape paste_mask said "expected (S=100, S=100)" for a 256 crop)."""
    where = f"the arrays of profile {name!r}"
    dims: dict[str, int] = {} if crop_size is None else {"S": int(crop_size)}
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            if len(infos) > MAX_ARRAY_MEMBERS:
                raise _fail(where, f"{len(infos)} members (at most {MAX_ARRAY_MEMBERS})")
            total = 0
            for info in infos:
                total += _check_member(z, info, dims, where)
                if total > MAX_ARRAYS_BYTES:
                    raise _fail(where, f"they declare more than {MAX_ARRAYS_BYTES >> 20} MiB")
        with np.load(path, allow_pickle=False) as z:     # members are read on access: the
            return {k: z[k] for k in z.files if k in ARRAYS}  # unknown ones never are
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError,
            NotImplementedError, RuntimeError) as e:
        if isinstance(e, PuppeteerError):
            raise
        detail = printable(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)
        raise ProfileError(f"cannot read {where}: {detail}; enroll it again") from None


def _check_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, dims: dict[str, int], where: str) -> int:
    """Bytes the member declares, after its .npy header (`realtime.core.npyheader`) passed
    `ARRAYS` (or the unknown cap)."""
    header = member_header(z, info, lambda problem: _fail(where, problem))
    key, shape, dtype, nbytes, label = header.key, header.shape, header.dtype, header.nbytes, header.label
    spec = ARRAYS.get(key)
    if spec is None:
        if nbytes > UNKNOWN_ARRAY_BYTES:
            raise _fail(where, f"unknown {label} of {nbytes >> 20} MiB")
        return nbytes
    dtypes, pattern = spec
    if dtype.str.lstrip("<>|=") not in dtypes:
        raise _fail(where, f"{label} has dtype {dtype}, expected {' or '.join(dtypes)}")
    if len(shape) != len(pattern):
        raise _fail(where, f"{label} has shape {shape}, expected {_pattern(pattern)}")
    for size, want in zip(shape, pattern):
        if isinstance(want, int):
            ok = size == want
        else:
            lo, hi = DIMS[want]
            ok = lo <= size <= hi and dims.setdefault(want, size) == size
        if not ok:
            crop = " (S: the crop_size in profile.yaml)" if want == "S" else ""
            raise _fail(where, f"{label} has shape {shape}, expected {_pattern(pattern, dims)}{crop}")
    return nbytes


def _pattern(pattern, dims: dict[str, int] | None = None) -> str:
    def one(p):
        if isinstance(p, int):
            return str(p)
        if dims and p in dims:
            return f"{p}={dims[p]}"
        return f"{p} in {DIMS[p][0]}..{DIMS[p][1]}"
    return "(" + ", ".join(one(p) for p in pattern) + ")"


def check_arrays(arrays: dict[str, np.ndarray], crop_size: int, settings: dict, where: str) -> None:
    """Values of the loaded arrays: shapes across arrays, finiteness, ranges, indices."""
    def bad(problem: str) -> ProfileError:
        return _fail(where, problem)

    for key, (_, pattern) in ARRAYS.items():   # also for profiles built in memory
        a = arrays.get(key)
        if a is not None and (a.ndim != len(pattern) or any(isinstance(p, int) and s != p
                                                             for s, p in zip(a.shape, pattern))):
            raise bad(f"array {key!r} has shape {a.shape}, expected {_pattern(pattern)}")
    s = arrays["paste_mask"].shape
    if s != (crop_size, crop_size) or arrays["face_mask"].shape != s:
        raise bad(f"crop_size is {crop_size} but paste_mask is {s} and face_mask "
                  f"{arrays['face_mask'].shape}")
    for key, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise bad(f"array {key!r} holds NaN or infinite values")
    if not float(arrays["frame_scale"]) > 0:
        raise bad(f"frame_scale {float(arrays['frame_scale'])} is not positive")
    r = arrays["frame_rotation"].astype(np.float64)
    if np.abs(r @ r.T - np.eye(3)).max() > 1e-3 or np.linalg.det(r) < 0:
        raise bad("frame_rotation is not a rotation")
    if abs(np.linalg.det(arrays["crop_from_image"][:, :2].astype(np.float64))) < 1e-12:
        raise bad("crop_from_image is singular")
    for key, lo, hi in (("head_gains", 0.0, 1.0), ("paste_mask", 0.0, 1.0), ("face_mask", 0, 1),
                        ("atlas_flipped", 0, 1)):
        a = arrays.get(key)
        if a is not None and a.size and (a.min() < lo or a.max() > hi):
            raise bad(f"array {key!r} has values outside {lo}..{hi}")
    k, b = len(arrays["head_points"]), len(arrays["head_border"])
    if len(arrays["head_gains"]) != k:
        raise bad(f"head_gains has {len(arrays['head_gains'])} values for {k} head points")
    _indices(arrays["head_triangles"], len(topology.FACE_OVAL) + k + b, "head_triangles", bad)
    _check_geometry(arrays, crop_size, bad)
    if "atlas_images" in arrays:
        _check_atlas(arrays, settings, bad)


def _check_geometry(arrays: dict[str, np.ndarray], crop_size: int, bad) -> None:
    """The geometry within what enroll writes, with a wide margin (see GEOMETRY_MARGIN and the
    values below it): a finite value of 1e30 passed the other checks and became a size (a blur of
    sigma 1e5 that hung `live`, a 4.8 GB texture grid, tracebacks)."""
    h, w = arrays["image"].shape[:2]
    side = max(h, w)
    m = GEOMETRY_MARGIN
    with np.errstate(over="ignore", invalid="ignore"):
        for key in ("landmarks", "head_border"):
            _points_within(arrays[key], key, w, h, m, MAX_DEPTH * side, f"the {w}x{h} px image", bad)
        t = arrays["frame_translation"]
        _points_within(t[None], "frame_translation", w, h, m, MAX_DEPTH * side, f"the {w}x{h} px image", bad)
        scale = float(arrays["frame_scale"])
        if not 1.0 <= scale <= side:
            raise bad(f"frame_scale is {scale:.3g} px per canonical unit (must be within 1..{side}, "
                      f"the image's longest side)")
        for key in CANONICAL_ARRAYS:
            a = arrays.get(key)
            if a is not None and a.size and np.abs(a).max() > MAX_CANONICAL:
                raise bad(f"array {key!r} reaches {float(np.abs(a).max()):.3g} (canonical values are "
                          f"within ±{MAX_CANONICAL:g})")
        lm = arrays["landmarks"].astype(np.float64)
        iod = float(np.linalg.norm(lm[topology.EYE_OUTER[0], :2] - lm[topology.EYE_OUTER[1], :2]))
        if not MIN_INTEROCULAR <= iod <= side:
            raise bad(f"the landmarks' interocular distance is {iod:.3g} px (must be within "
                      f"{MIN_INTEROCULAR:g}..{side} px, the image's longest side)")
        crop = arrays["crop_from_image"].astype(np.float64)
        lo, hi = CROP_SCALE
        if np.abs(crop[:, :2]).max() > hi:      # each entry is at most the largest singular value
            raise bad(f"crop_from_image scales by more than {hi:g} crop px per image px (must be "
                      f"within 1/{1 / lo:g}..{hi:g})")
        sv = np.linalg.svd(crop[:, :2], compute_uv=False)
        if not (lo <= sv.min() and sv.max() <= hi):
            raise bad(f"crop_from_image scales by {sv.min():.3g}..{sv.max():.3g} crop px per image px "
                      f"(must be within 1/{1 / lo:g}..{hi:g})")
        centre = np.linalg.solve(crop[:, :2], np.full(2, crop_size / 2.0) - crop[:, 2])
        if not (np.isfinite(centre).all() and -m * w <= centre[0] <= (1 + m) * w
                and -m * h <= centre[1] <= (1 + m) * h):
            raise bad(f"crop_from_image puts the crop's centre at ({centre[0]:.3g}, {centre[1]:.3g}) px, "
                      f"more than one image size outside the {w}x{h} px image")
        in_crop = iod * float(np.sqrt(sv.prod())) / crop_size
        if not FACE_IN_CROP[0] <= in_crop <= FACE_IN_CROP[1]:
            raise bad(f"crop_from_image frames the face's interocular distance at {in_crop:.3g} crop "
                      f"sides (must be within 1/{1 / FACE_IN_CROP[0]:g}..{FACE_IN_CROP[1]:g}; enroll "
                      f"frames it at about a quarter)")
        if "atlas_landmarks" in arrays and "atlas_images" in arrays:
            keyframe = int(arrays["atlas_images"].shape[1])
            _points_within(arrays["atlas_landmarks"].reshape(-1, 3), "atlas_landmarks", keyframe, keyframe, m,
                           MAX_DEPTH * keyframe, f"their {keyframe}x{keyframe} px keyframe crops", bad)


def _points_within(points: np.ndarray, key: str, w: int, h: int, margin: float, depth: float,
                   what: str, bad) -> None:
    """ProfileError unless every (x, y[, z]) of `points` lies within `margin` sizes of a w×h
    picture (x in -margin·w..(1 + margin)·w, ...), and |z| is at most `depth`."""
    p = points.astype(np.float64)
    if not p.size:
        return
    for axis, size, name in ((0, w, "x"), (1, h, "y")):
        lo, hi = -margin * size, (1 + margin) * size
        if p[:, axis].min() < lo or p[:, axis].max() > hi:
            worst = p[:, axis].min() if p[:, axis].min() < lo else p[:, axis].max()
            raise bad(f"array {key!r} has {name} = {worst:.3g} px, more than one size outside {what} "
                      f"({name} must be within {lo:g}..{hi:g})")
    if p.shape[1] > 2 and np.abs(p[:, 2]).max() > depth:
        raise bad(f"array {key!r} has |z| = {np.abs(p[:, 2]).max():.3g} px (at most {depth:g})")


def _indices(a: np.ndarray, n: int, key: str, bad) -> None:
    if a.size and (a.min() < 0 or a.max() >= n):
        raise bad(f"array {key!r} indexes outside 0..{n - 1}")


def _check_atlas(arrays: dict[str, np.ndarray], settings: dict, bad) -> None:
    images = arrays["atlas_images"]
    n, side = images.shape[0], images.shape[1]
    if images.shape[1] != images.shape[2]:
        raise bad(f"atlas_images are not square: {images.shape}")
    for key in ("atlas_landmarks", "atlas_query", "atlas_flipped", "atlas_frames"):
        if key in arrays and len(arrays[key]) != n:
            raise bad(f"array {key!r} has {len(arrays[key])} rows for {n} keyframes")
    want = (settings.get("atlas") or {}).get("crop_size")
    if want is not None and want != side:
        raise bad(f"atlas_images are {side} px but settings.atlas.crop_size is {want}")
    dims = arrays.get("atlas_dims")
    if dims is not None:
        if dims.size and (dims.min() < 0 or dims.max() > 3 or (np.diff(dims) <= 0).any()):
            raise bad("atlas_dims must be increasing query dimensions in 0..3")
        simplices = arrays.get("atlas_simplices")
        if simplices is not None:
            if simplices.shape[1] != len(dims) + 1:
                raise bad(f"atlas_simplices have {simplices.shape[1]} corners for {len(dims)} "
                          f"dimensions")
            _indices(simplices, n, "atlas_simplices", bad)
    if "atlas_frames" in arrays and arrays["atlas_frames"].size and arrays["atlas_frames"].min() < 0:
        raise bad("atlas_frames holds negative frame numbers")
