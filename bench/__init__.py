"""Measuring the engine (DESIGN §8): `run.py bench` and the pieces it is made of.

    cli        the `run.py bench` command: options, errors → exit codes (light: no engine)
    usage      defaults, device names, UsageError (light)
    benchmark  one run: arguments resolved, passes run, table / JSON / plot written
    variants   the --compare knobs, the variants they make, an engine per variant
    devices    cpu / cuda as the report shows them (a view of realtime.core.context)
    drivers    clip or camera drivers, self-reenactment on a video's two halves
    latency    the realtime pass, ABBA-interleaved blocks
    quality    the offline quality pass (metrics against the driver or the real frames)
    fidelity   expression fidelity: per signal, how much of the driver's motion arrives (gain, r)
    swap       the quality pass of --mode swap (identity distances, scene PSNR, face FWE)
    remix      what the output should follow under --pose-from / --expression-from
    streams    --streams N: several engines sharing one device
    roundtrip  output latency through a virtual camera read back with OpenCV
    stats      latency statistics (StageTimes, summarize)
    metrics    quality metrics: pure functions on arrays
    report     Markdown table, JSON, PNG plot
    machine    what the numbers were measured on (CPU, GPU, packages, git commit)
    follow     how well an output video follows its driver (python -m bench.follow)
    provenance how the provenance mark survives re-encoding (run.py verify --attacks)
    soak       a long realtime run, minute by minute (python -m bench.soak)
    gpu_check  the GPU check's helpers (bench/gpu_prep.sh here, bench/gpu_check.sh on the GPU)

The package itself imports nothing, so `import bench.cli` (what `run.py` needs to build its
parser) loads only argparse, `bench.usage` and `realtime.core.errors`.
"""
