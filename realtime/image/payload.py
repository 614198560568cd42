"""The provenance mark's payload and its error-correcting code (DESIGN §7b).

32 information bits: engine id (6 bits), mode (2 bits), profile fingerprint (24 bits); then a
CRC-16 (CCITT polynomial 0x1021, initial value 0xFFFF) over them, so a payload that decodes
wrongly, or was altered, is refused (a random 48-bit word passes with probability 2⁻¹⁶); then a
terminated convolutional code of rate 1/3 and constraint length 7 (generators 133, 171, 165
octal, the LTE set), decoded with a soft-decision Viterbi decoder: (32 + 16 + 6 tail) × 3 = 162
coded bits. Every function here is pure numpy and deterministic: the same payload gives the same
coded bits on every machine and numpy version.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Payload", "ENGINE_ID", "ENGINE_NAMES", "MODES", "INFO_BITS", "CODED_BITS", "crc16",
           "payload_bits", "parse_bits", "conv_encode", "viterbi"]

ENGINE_ID = 1                       # this engine's id in the payload (6 bits: 0..63)
ENGINE_NAMES = {ENGINE_ID: "Puppeteer"}
MODES = ("reenact", "swap", "remix", "other")   # 2 bits
ENGINE_BITS, MODE_BITS, FINGERPRINT_BITS, CRC_BITS = 6, 2, 24, 16
INFO_BITS = ENGINE_BITS + MODE_BITS + FINGERPRINT_BITS            # 32
MESSAGE_BITS = INFO_BITS + CRC_BITS                                # 48
CONSTRAINT = 7
GENERATORS = (0o133, 0o171, 0o165)
CODED_BITS = (MESSAGE_BITS + CONSTRAINT - 1) * len(GENERATORS)     # 162
_STATES = 1 << (CONSTRAINT - 1)


@dataclass(frozen=True)
class Payload:
    """What a marked frame says about itself."""

    engine: int = ENGINE_ID
    mode: str = "reenact"
    fingerprint: int = 0            # 24 bits of the profile's fingerprint (`fingerprint_hex`)

    def __post_init__(self):
        if not 0 <= self.engine < 1 << ENGINE_BITS:
            raise ValueError(f"payload engine id must be in [0, {1 << ENGINE_BITS}), got {self.engine}")
        if self.mode not in MODES:
            raise ValueError(f"payload mode must be one of {MODES}, got {self.mode!r}")
        if not 0 <= self.fingerprint < 1 << FINGERPRINT_BITS:
            raise ValueError(f"payload fingerprint must be a {FINGERPRINT_BITS}-bit number, "
                             f"got {self.fingerprint}")

    @property
    def engine_name(self) -> str:
        return ENGINE_NAMES.get(self.engine, f"engine #{self.engine}")

    @property
    def fingerprint_hex(self) -> str:
        return f"{self.fingerprint:06x}"

    def describe(self) -> str:
        return f"engine {self.engine_name}, mode {self.mode}, profile fingerprint {self.fingerprint_hex}"


def _to_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _from_bits(bits) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def crc16(bits) -> int:
    """CRC-16/CCITT-FALSE of a bit sequence (most significant bit first)."""
    reg = 0xFFFF
    for b in bits:
        top = ((reg >> 15) & 1) ^ int(b)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    return reg


def payload_bits(p: Payload) -> np.ndarray:
    """The 48 message bits (information, then CRC) of `p`, uint8."""
    info = (_to_bits(p.engine, ENGINE_BITS) + _to_bits(MODES.index(p.mode), MODE_BITS)
            + _to_bits(p.fingerprint, FINGERPRINT_BITS))
    return np.array(info + _to_bits(crc16(info), CRC_BITS), np.uint8)


def parse_bits(bits) -> Payload | None:
    """The payload of 48 message bits, or None when their CRC does not check."""
    bits = [int(b) for b in bits]
    if len(bits) != MESSAGE_BITS:
        raise ValueError(f"expected {MESSAGE_BITS} message bits, got {len(bits)}")
    info, crc = bits[:INFO_BITS], bits[INFO_BITS:]
    if crc16(info) != _from_bits(crc):
        return None
    e, m = ENGINE_BITS, ENGINE_BITS + MODE_BITS
    return Payload(engine=_from_bits(info[:e]), mode=MODES[_from_bits(info[e:m])],
                   fingerprint=_from_bits(info[m:]))


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    for s in (4, 2, 1):
        x ^= x >> s
    return x & 1


# The shift register after input u in state s is reg = (s << 1) | u (7 bits, newest at the
# bottom); the next state is reg & 63, and output k is the parity of reg & GENERATORS[k].
_REG = (np.arange(_STATES)[:, None] << 1) | np.arange(2)[None, :]            # (64, 2)
_OUT = np.stack([_parity(_REG & g) for g in GENERATORS], -1).astype(np.uint8)  # (64, 2, 3)
_SIGN = 1.0 - 2.0 * _OUT                                                      # bit 0 -> +1


def conv_encode(message) -> np.ndarray:
    """Coded bits (uint8) of the message bits, terminated with CONSTRAINT - 1 zero bits."""
    bits = np.concatenate([np.asarray(message, np.uint8), np.zeros(CONSTRAINT - 1, np.uint8)])
    out = np.empty((len(bits), len(GENERATORS)), np.uint8)
    s = 0
    for t, u in enumerate(bits):
        out[t] = _OUT[s, u]
        s = int(_REG[s, u]) & (_STATES - 1)
    return out.ravel()


def viterbi(soft: np.ndarray) -> np.ndarray:
    """The most likely message bits (uint8, MESSAGE_BITS of them) given one soft value per coded
    bit, positive meaning 0 (e.g. a per-bit correlation z-score); the path starts and ends in
    state 0 (the code is terminated)."""
    soft = np.asarray(soft, np.float64).reshape(-1, len(GENERATORS))
    steps = soft.shape[0]
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    ns = np.arange(_STATES)
    u = ns & 1                                   # the input bit that leads into each state
    prev = np.stack([ns >> 1, (ns >> 1) | (_STATES >> 1)])   # its two predecessors
    choice = np.empty((steps, _STATES), np.uint8)
    for t in range(steps):
        branch = _SIGN @ soft[t]                 # (64, 2): correlation of each transition
        cand = metric[prev] + branch[prev, u]    # (2, 64)
        choice[t] = cand[1] > cand[0]
        metric = np.where(choice[t], cand[1], cand[0])
    bits = np.empty(steps, np.uint8)
    s = 0
    for t in range(steps - 1, -1, -1):
        bits[t] = s & 1
        s = int(prev[choice[t, s], s])
    return bits[:MESSAGE_BITS]
