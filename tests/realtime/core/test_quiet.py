"""realtime.core.quiet: native stderr silenced for the length of a block."""
from __future__ import annotations

import os

from realtime.core.quiet import quiet_native_stderr


def test_a_block_silences_descriptor_2_and_restores_it(capfd):
    os.write(2, b"before\n")
    with quiet_native_stderr():
        os.write(2, b"hidden\n")
        with quiet_native_stderr():
            os.write(2, b"hidden too\n")
        os.write(2, b"still hidden\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"

