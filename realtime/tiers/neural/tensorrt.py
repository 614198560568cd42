"""The neural tier's TensorRT engine: built by torch-tensorrt, cached in the profile with a
manifest, rebuilt when the manifest no longer matches (DESIGN §5 tier 3, §7).

Files, inside the profile folder (resolved with the profile's `path`, which refuses any
path that leaves the folder; written atomically: temporary file + rename):

    neural/generator.safetensors   the trained weights `run.py train` wrote (the source)
    neural/engine-fp16.plan        a serialised TensorRT engine ("plan"), one per precision
    neural/engine-fp16.json        its manifest

Manifest (JSON): ``format``, ``version``, ``precision``, ``resolution``, ``engine_sha256`` (of
the plan), ``weights`` and ``weights_sha256`` (of the safetensors it was built from),
``tensorrt``, ``torch_tensorrt``, ``torch`` (versions), ``gpu`` and ``compute_capability``,
``inputs`` / ``outputs`` (the engine's tensor names), ``created``.

Reuse rule (`stale_reason`): the cached engine is used only when the manifest exists, has this
format, and its precision, resolution, weights sha256, TensorRT and torch-tensorrt versions and
GPU compute capability equal the current ones, and the plan file's sha256 equals the manifest's;
anything else names the first difference and the engine is rebuilt (and the user is told why).
The GPU *name* is recorded but not compared: engines are portable between GPUs of one compute
capability (TensorRT warns when the SM count differs).

Why the cache is not listed in profile.yaml's ``files``: `profiles.format.load` refuses a profile
whose listed file is missing or changed, and a cache must be allowed to go stale or be deleted
without making the profile unloadable. The manifest is the engine's integrity record instead.

Security: the plan is deserialised by TensorRT's own runtime (`tensorrt.Runtime`), not by
pickle or `torch.load`; and it is deserialised only when the bytes read are exactly the ones
this module built *on this machine*. The manifest beside the plan cannot say that: whoever hands
over a profile writes both. So every plan built here has its sha256 recorded outside all profiles,
in ``built-engines.json`` of the user's cache folder (`realtime.core.paths.cache_dir`: $PUPPETEER_CACHE, else
$XDG_CACHE_HOME/puppeteer, else ~/.cache/puppeteer); a plan that came with a copied profile is not
in it and is rebuilt, never loaded (`stale_reason`'s "no record ... that this machine built it").

The builder is injected (`Builder` protocol: ``environment()``, ``build()``, ``load()``), so the
manifest logic is tested without a GPU; `TensorRTBuilder` is the real one (torch-tensorrt's
dynamo path, ``convert_method_to_trt_engine``: the engine's precision is the dtype of the
module and inputs it is traced with, fp16 or fp32).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from realtime.core.context import require_torch_cuda
from realtime.core.errors import ProfileError, PuppeteerError
from realtime.core.ledger import DigestLedger
from realtime.core.paths import sha256_file, write_atomic
from realtime.core.profile import GENERATOR_PATH, ProfileLike, engine_paths, how_to_train

__all__ = ["PRECISIONS", "MANIFEST_FORMAT", "MANIFEST_VERSION", "Environment", "EngineFiles",
           "EngineRecord", "TensorRTMissing", "EngineError", "Builder", "TensorRTBuilder",
           "engine_files", "expected_manifest", "stale_reason", "read_manifest",
           "ensure_engine", "load_engine", "notice_once", "sha256_file", "sha256_bytes",
           "built_here", "record_built"]

PRECISIONS = ("fp16", "fp32")
MANIFEST_FORMAT = "puppeteer.tensorrt-engine"
MANIFEST_VERSION = 1
# what must match for a cached engine to be reused, in the order the reasons are reported
_COMPARED = (("precision", "precision"), ("resolution", "generator resolution"),
             ("weights_sha256", "generator weights (sha256)"),
             ("tensorrt", "TensorRT version"), ("torch_tensorrt", "torch-tensorrt version"),
             ("compute_capability", "GPU compute capability"))


class TensorRTMissing(PuppeteerError, ImportError):
    """torch-tensorrt / tensorrt are not installed (the `gpu` extra)."""


class EngineError(PuppeteerError, RuntimeError):
    """An engine that cannot be built or trusted; the message says which and why."""


_NOTICED: set[str] = set()


def notice_once(text: str, stream=None) -> bool:
    """Print ``note: text`` on stderr the first time this text is seen in the process."""
    if text in _NOTICED:
        return False
    _NOTICED.add(text)
    print(f"note: {text}", file=stream or sys.stderr, flush=True)
    return True


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------- plans built on this machine

BUILT_FILE = "built-engines.json"


def _damaged(text: str) -> None:
    notice_once(f"{text}: engines built before are rebuilt once")


#: The sha256s of the plans built on this machine (`built_here`, `record_built`).
_BUILT = DigestLedger(BUILT_FILE, "engines", notice=_damaged)


def built_here(engine_sha256: str | None) -> bool:
    """Whether this machine's user built the plan with this sha256 (`record_built`)."""
    return engine_sha256 in _BUILT


def _cache_problem() -> str | None:
    """Why the record cannot be written (asked before minutes of building), or None."""
    return _BUILT.problem()


def record_built(engine_sha256: str) -> None:
    """Add a plan this machine just built to the record `built_here` reads: atomically, and
    under a lock (two processes building at once each keep their entry)."""
    try:
        _BUILT.add(engine_sha256)
    except OSError as e:
        raise EngineError(f"cannot record the built engine in {_BUILT.path}: "
                          f"{e.strerror or e}; set PUPPETEER_CACHE to a writable folder") from e


# ------------------------------------------------------------------------------- the decision

@dataclass(frozen=True)
class Environment:
    """What an engine is only valid for: the software that built it and the GPU it targets."""

    tensorrt: str
    torch_tensorrt: str
    torch: str
    gpu: str
    compute_capability: str      # "8.6", "9.0", ...


def expected_manifest(precision: str, resolution: int, weights_sha256: str,
                      env: Environment) -> dict:
    """The manifest fields a usable engine must have here (everything but the plan's own sha256,
    its tensor names and its creation time)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "precision": precision,
            "resolution": int(resolution), "weights_sha256": weights_sha256, **asdict(env)}


def stale_reason(manifest: dict | None, expected: dict, engine_sha256: str | None) -> str | None:
    """None when the cached engine described by `manifest` can be used, else why it must be
    rebuilt. `engine_sha256`: the sha256 of the plan file as it is now (None: no file)."""
    if manifest is None:
        return "no engine has been built for this profile yet"
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
        return (f"the manifest is of format {manifest.get('format')!r} version "
                f"{manifest.get('version')!r}, not {MANIFEST_FORMAT!r} version {MANIFEST_VERSION}")
    if engine_sha256 is None:
        return "the engine file is missing"
    if manifest.get("engine_sha256") != engine_sha256:
        return "the engine file does not match the sha256 in its manifest (changed or corrupt)"
    for key, what in _COMPARED:
        if manifest.get(key) != expected.get(key):
            return f"{what} changed: built for {manifest.get(key)!r}, now {expected.get(key)!r}"
    if not built_here(engine_sha256):
        return (f"no record in {_BUILT.path} that this machine built it (a plan that came "
                f"with a profile, or one built before that record existed); a TensorRT plan is only "
                f"loaded where it was built")
    return None


#: A manifest is under 1 KiB; one of a received profile larger than this is not read (a sparse
#: file of gigabytes was read whole).
MAX_MANIFEST_BYTES = 64 << 10


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def read_manifest(path: Path) -> dict | None:
    """The manifest at `path`, or None when it is missing, not a regular file (a pipe there
    blocked the read), larger than MAX_MANIFEST_BYTES, or not a JSON object: the engine is
    then rebuilt and the manifest written anew."""
    try:
        with open(path, "rb", opener=_nonblocking) as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MANIFEST_BYTES:
                return None
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_MANIFEST_BYTES:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):     # not UTF-8 or not JSON; nested thousands deep
        return None
    return data if isinstance(data, dict) else None


# ------------------------------------------------------------------------------- the files

@dataclass(frozen=True)
class EngineFiles:
    weights: Path
    engine: Path
    manifest: Path
    weights_rel: str
    engine_rel: str
    manifest_rel: str


def engine_files(profile: ProfileLike, precision: str) -> EngineFiles:
    """Where the engine of `profile` for `precision` lives; ProfileError when the profile has no
    trained generator (or a path would leave its folder)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if GENERATOR_PATH not in profile.files:
        raise ProfileError(f"profile {profile.name!r} has no trained generator: {how_to_train(profile)}")
    engine_rel, manifest_rel = engine_paths(precision)
    return EngineFiles(profile.path(GENERATOR_PATH), profile.path(engine_rel),
                       profile.path(manifest_rel), GENERATOR_PATH, engine_rel, manifest_rel)


# ------------------------------------------------------------------------------- the builder

class Builder(Protocol):
    def environment(self) -> Environment: ...

    def build(self, generator, precision: str) -> tuple[bytes, list[str], list[str]]:
        """(plan bytes, input tensor names in forward order, output tensor names)."""

    def load(self, plan: bytes, inputs: list[str], outputs: list[str]) -> Callable:
        """A callable (render, mask, hint) → image on CUDA tensors of the engine's dtype."""


@dataclass
class EngineRecord:
    files: EngineFiles
    manifest: dict
    built: bool                 # True when this call built (or rebuilt) the engine
    reason: str | None          # why it was (re)built


def _resolution(weights: Path) -> int:
    from realtime.tiers.neural.checkpoint import read_metadata  # noqa: PLC0415 - imports torch: only when the tier runs

    return int((read_metadata(weights).get("config") or {}).get("resolution", 0))


def ensure_engine(profile, precision: str = "fp16", builder: Builder | None = None,
                  force: bool = False, log: Callable[[str], Any] | None = None) -> EngineRecord:
    """The profile's engine for `precision`: the cached one when its manifest matches (see the
    module docstring), else built now and cached (`force`: always built). `log(text)` hears
    why a build happens."""
    from realtime.tiers.neural.checkpoint import load_generator  # noqa: PLC0415 - imports torch: only when the tier runs

    files = engine_files(profile, precision)
    builder = builder if builder is not None else TensorRTBuilder()
    env = builder.environment()
    expected = expected_manifest(precision, _resolution(files.weights),
                                 sha256_file(files.weights), env)
    manifest = read_manifest(files.manifest)
    engine_sha = sha256_file(files.engine) if files.engine.is_file() else None
    reason = "rebuild asked for (--force)" if force else stale_reason(manifest, expected, engine_sha)
    if reason is None:
        return EngineRecord(files, manifest, built=False, reason=None)
    if (problem := _cache_problem()) is not None:     # before minutes of building, not after
        raise EngineError(f"cannot record a built engine: {problem}; set PUPPETEER_CACHE to a writable folder")
    if log is not None:
        log(f"building the TensorRT {precision} engine of profile {profile.name!r} on "
            f"{env.gpu}: {reason}")
    plan, inputs, outputs = builder.build(load_generator(files.weights), precision)
    files.engine.parent.mkdir(parents=True, exist_ok=True)
    record_built(sha256_bytes(plan))       # before the plan is in place: it is never unrecorded
    write_atomic(files.engine, plan)
    manifest = {**expected, "weights": files.weights_rel, "engine": files.engine_rel,
                "engine_sha256": sha256_bytes(plan), "inputs": list(inputs),
                "outputs": list(outputs),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_atomic(files.manifest, (json.dumps(manifest, indent=2) + "\n").encode())
    return EngineRecord(files, manifest, built=True, reason=reason)


def load_engine(record: EngineRecord, builder: Builder) -> Callable:
    """Read the plan and hand it to the builder's runtime, only if these exact bytes are the
    ones the manifest describes (sha256) and were built on this machine (`built_here`) — never
    deserialise a plan this code did not build."""
    plan = record.files.engine.read_bytes()
    digest = sha256_bytes(plan)
    if digest != record.manifest.get("engine_sha256") or not built_here(digest):
        why = ("does not match the sha256 in its manifest" if digest != record.manifest.get("engine_sha256")
               else f"has no record in {_BUILT.path} that this machine built it")
        raise EngineError(f"{record.files.engine} {why}; rebuild it "
                          f"(python run.py export --profile ... --force)")
    return builder.load(plan, list(record.manifest["inputs"]), list(record.manifest["outputs"]))


# ------------------------------------------------------------------------------- TensorRT

def _import_tensorrt():
    try:
        import tensorrt  # noqa: PLC0415 - TensorRT: optional (the gpu extra)
        import torch_tensorrt  # noqa: PLC0415 - TensorRT: optional (the gpu extra)
    except ImportError as exc:
        raise TensorRTMissing(f"TensorRT is not installed ({exc}); pip install -e '.[gpu]'") from None
    return tensorrt, torch_tensorrt


class TensorRTBuilder:
    """torch-tensorrt builds the plan, TensorRT's runtime runs it (CUDA only).

    Raises `TensorRTMissing` when torch-tensorrt or tensorrt is not installed, and
    `realtime.core.context.DeviceUnavailable` when torch sees no GPU.
    """

    def __init__(self, device_index: int = 0):
        self.trt, self.torch_tensorrt = _import_tensorrt()
        self.torch = require_torch_cuda()
        self.device = self.torch.device("cuda", device_index)
        self._runtimes: list = []                  # a runtime must outlive its engines

    def environment(self) -> Environment:
        torch = self.torch
        major, minor = torch.cuda.get_device_capability(self.device)
        return Environment(tensorrt=str(self.trt.__version__),
                           torch_tensorrt=str(self.torch_tensorrt.__version__),
                           torch=str(torch.__version__), gpu=torch.cuda.get_device_name(self.device),
                           compute_capability=f"{major}.{minor}")

    def build(self, generator, precision: str) -> tuple[bytes, list[str], list[str]]:
        from realtime.tiers.neural.export import INPUT_NAMES, sample_inputs  # noqa: PLC0415 - imports torch: only when the tier runs

        torch = self.torch
        dtype = {"fp16": torch.float16, "fp32": torch.float32}[precision]
        g = generator.to(self.device, dtype).eval()
        examples = [t.to(self.device, dtype) for t in sample_inputs(g.cfg.resolution)]
        with torch.no_grad():
            plan = self.torch_tensorrt.convert_method_to_trt_engine(
                g, "forward", inputs=examples, ir="dynamo", enabled_precisions={dtype})
        plan = bytes(plan)
        engine = self._deserialise(plan)
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == self.trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if sorted(inputs) == sorted(INPUT_NAMES):
            inputs = list(INPUT_NAMES)            # forward order, whatever the engine's order
        if len(inputs) != len(INPUT_NAMES) or len(outputs) != 1:
            raise EngineError(f"the built engine has inputs {inputs} and outputs {outputs}; "
                              f"expected 3 inputs {INPUT_NAMES} and one output")
        return plan, inputs, outputs

    def _deserialise(self, plan: bytes):
        trt = self.trt
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise EngineError("TensorRT could not deserialise the engine (built by another "
                              "TensorRT version or for another GPU?)")
        self._runtimes.append(runtime)
        return engine

    def load(self, plan: bytes, inputs: list[str], outputs: list[str]) -> Callable:
        return TrtForward(self, self._deserialise(plan), inputs, outputs)


class TrtForward:
    """A deserialised engine as a callable on CUDA tensors: inputs bound by name, one static
    output buffer (overwritten by the next call), enqueued on torch's current stream."""

    def __init__(self, builder: TensorRTBuilder, engine, inputs: list[str], outputs: list[str]):
        torch, trt = builder.torch, builder.trt
        self.torch = torch
        self.engine = engine
        self.context = engine.create_execution_context()
        self.inputs = list(inputs)
        dtypes = {trt.DataType.HALF: torch.float16, trt.DataType.FLOAT: torch.float32}
        self.dtype = dtypes[engine.get_tensor_dtype(self.inputs[0])]
        name = outputs[0]
        self.output = torch.empty(tuple(engine.get_tensor_shape(name)),
                                  dtype=dtypes[engine.get_tensor_dtype(name)], device=builder.device)
        self.context.set_tensor_address(name, self.output.data_ptr())

    def __call__(self, *args):
        torch = self.torch
        kept = [a.to(self.dtype).contiguous() for a in args]   # plans take linear NCHW
        for name, t in zip(self.inputs, kept):
            self.context.set_tensor_address(name, t.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise EngineError("TensorRT failed to run the engine")
        return self.output
