"""Measuring the engine (DESIGN §8): latency statistics, quality metrics, reports.

Heavy dependencies (OpenCV, scikit-image, scipy, matplotlib, dlib) are imported inside the
functions that need them, so importing `bench` costs only numpy.
"""
from .metrics import (IdentityEncoder, expression_error, flow_warping_error,
                      landmark_jitter_px, pose_error_deg, psnr, ssim, still_segments)
from .report import machine_info, markdown_table, plot, write_json
from .stats import StageTimes, summarize

__all__ = [
    "StageTimes", "summarize",
    "landmark_jitter_px", "still_segments", "flow_warping_error", "psnr", "ssim",
    "pose_error_deg", "expression_error", "IdentityEncoder",
    "markdown_table", "machine_info", "write_json", "plot",
]
