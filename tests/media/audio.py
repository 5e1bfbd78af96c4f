"""Tone WAVs and a Goertzel filter, to prove which audio went where (pure Python)."""

from __future__ import annotations

import array
import math
import sys
import wave
from pathlib import Path


def write_tone(path: Path, frequency: float, seconds: float = 2.0, rate: int = 16000,
               amplitude: float = 0.5) -> Path:
    """A 16-bit mono PCM sine tone (pjsua's player needs exactly that format)."""
    count = int(seconds * rate)
    peak = amplitude * 32767
    samples = array.array("h", (int(peak * math.sin(2 * math.pi * frequency * n / rate))
                                for n in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


def read_wav(path: Path) -> tuple[list[int], int]:
    with wave.open(str(path), "rb") as source:
        assert source.getsampwidth() == 2, "expected 16-bit PCM"
        channels, rate = source.getnchannels(), source.getframerate()
        samples = array.array("h", source.readframes(source.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return list(samples[::channels]), rate


def goertzel_power(samples: list[int], rate: int, frequency: float) -> float:
    """Signal power at one frequency (normalised by length)."""
    if not samples:
        return 0.0
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    previous = before_previous = 0.0
    for sample in samples:
        previous, before_previous = sample + coefficient * previous - before_previous, previous
    power = previous ** 2 + before_previous ** 2 - coefficient * previous * before_previous
    return power / len(samples)
