"""The mark's payload code: bits, CRC-16, the rate-1/3 convolutional code and its Viterbi decoder."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.image.payload import (
    CODED_BITS,
    MESSAGE_BITS,
    MODES,
    Payload,
    conv_encode,
    crc16,
    parse_bits,
    payload_bits,
    viterbi,
)


def test_crc16_is_ccitt_false():
    bits = np.unpackbits(np.frombuffer(b"123456789", np.uint8))
    assert crc16(bits) == 0x29B1  # the standard check value of CRC-16/CCITT-FALSE


@pytest.mark.parametrize("mode", MODES)
def test_round_trip(mode):
    p = Payload(engine=1, mode=mode, fingerprint=0xA5C30F)
    bits = payload_bits(p)
    coded = conv_encode(bits)
    assert len(bits) == MESSAGE_BITS == 48 and len(coded) == CODED_BITS == 162
    assert parse_bits(viterbi(1.0 - 2.0 * coded)) == p


def test_every_single_bit_flip_is_refused():
    bits = payload_bits(Payload(fingerprint=0x123456))
    for i in range(MESSAGE_BITS):
        bad = bits.copy()
        bad[i] ^= 1
        assert parse_bits(bad) is None, i


def test_viterbi_corrects_errors_and_noise():
    p = Payload(mode="swap", fingerprint=0xFEDCBA)
    signs = 1.0 - 2.0 * conv_encode(payload_bits(p))
    rng = np.random.default_rng(3)
    wrong = signs.copy()
    wrong[rng.choice(CODED_BITS, 12, replace=False)] *= -1  # 12 hard errors, spread out
    assert parse_bits(viterbi(wrong)) == p
    ok = sum(parse_bits(viterbi(1.5 * signs + rng.normal(0, 1, CODED_BITS))) == p for _ in range(100))
    assert ok == 100  # per-bit z 1.5: the worst windows measured on the eval clips are above 2


def test_payload_fields_are_checked():
    with pytest.raises(ValueError):
        Payload(fingerprint=1 << 24)
    with pytest.raises(ValueError):
        Payload(mode="dance")
    with pytest.raises(ValueError):
        Payload(engine=64)
    assert Payload(fingerprint=0xABC).fingerprint_hex == "000abc"
    assert "Puppeteer" in Payload().describe()
