"""Measuring the engine (DESIGN §8): `run.py bench` and the pieces it is made of.

    cli        the `run.py bench` command: options, errors → exit codes (light: no engine)
    usage      defaults, device names, UsageError (light)
    benchmark  one run: arguments resolved, passes run, table / JSON / plot written
    variants   the --compare knobs, the variants they make, an engine per variant
    devices    cpu / cuda as the report shows them (a view of realtime.core.context)
    drivers    clip or camera drivers, self-reenactment on a video's two halves
    latency    the realtime pass, ABBA-interleaved blocks
    quality    the offline quality pass (metrics against the driver or the real frames)
    roundtrip  output latency through a virtual camera read back with OpenCV
    stats      latency statistics (StageTimes, summarize)
    metrics    quality metrics: pure functions on arrays
    report     Markdown table, JSON, PNG plot
    machine    what the numbers were measured on (CPU, GPU, packages, git commit)
    follow     how well an output video follows its driver (python -m bench.follow)

The package itself imports nothing, so `import bench.cli` (what `run.py` needs to build its
parser) loads only argparse, `bench.usage` and `realtime.core.errors`.
"""
