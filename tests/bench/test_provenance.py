"""`verify FILE --attacks` (bench.provenance): the mark read back after each re-encoding, as a table."""
from __future__ import annotations

import json

import pytest

import run
from bench.provenance import ATTACKS, attack_table, format_table
from realtime.image.verify import VerifyError
from tests.realtime.image.test_verify import frames, write_video

ONE = {"320×240": ATTACKS["320×240"]}


def test_a_marked_video_keeps_its_mark_through_an_attack(tmp_path):
    path = write_video(tmp_path / "m.mp4", frames(40, w=480, h=360))
    seen = []
    rows = attack_table(path, ONE, progress=seen.append)
    assert [r.attack for r in rows] == ["as is", "320×240"] and seen == rows
    assert all(r.every_window and r.windows == 2 and r.frames == 40 for r in rows)
    assert rows[0].worst_z > 6 and rows[1].frames_found > 30
    table = format_table(rows)
    assert "| 320×240 | 2 of 2 |" in table and table.count("\n") == 3


def test_an_unmarked_video_fails_every_row(tmp_path):
    path = write_video(tmp_path / "u.mp4", frames(20, marked=False))
    rows = attack_table(path, ONE)
    assert not any(r.every_window for r in rows) and all(r.windows_found == 0 for r in rows)


def test_the_cli_exit_code_and_json(tmp_path, capsys):
    marked = write_video(tmp_path / "m.mp4", frames(20))
    unmarked = write_video(tmp_path / "u.mp4", frames(20, marked=False))
    assert run.main(["verify", str(marked), "--attacks", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["attack"] for r in rows] == ["as is", *ATTACKS] and all(r["windows_found"] == r["windows"] for r in rows)
    assert run.main(["verify", str(unmarked), "--attacks"]) == 1
    assert "| as is | 0 of 1 |" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["still.png", "missing.mp4"])
def test_an_image_or_a_missing_file_is_a_one_line_error(tmp_path, capsys, name):
    path = tmp_path / name
    if name.endswith(".png"):
        path.write_bytes(b"not really")
    assert run.main(["verify", str(path), "--attacks"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ")
    with pytest.raises(VerifyError):
        attack_table(path)
