"""What the audio modules hand each other and their callers: frozen dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.audio.loudness import Loudness


@dataclass(frozen=True, slots=True)
class AudioInfo:
    duration_ms: int
    codec: str
    sample_rate: int
    channels: int
    format_name: str
    bit_rate: int
    #: Measured while converting (``ingest_audio``) or known (``make_silence``); else None.
    loudness: Loudness | None = None


@dataclass(frozen=True, slots=True)
class Id3Tags:
    title: str
    album: str = ""
    language: str = ""  # BCP 47 ("vi") or ISO 639 three-letter code
    comment: str = ""  # e.g. the bulletin id


@dataclass(frozen=True, slots=True)
class MasterResult:
    path: Path
    duration_ms: int
    loudness: Loudness  # measured on the signal fed to the encoder, in the encoding run
    bytes: int
    sha256: str
    gain_db: float
    encodes: int = 1


# --- the levels of a reading (checked at upload by ``pipeline.audio.levels``) ------------

#: A reading whose speech averages below this is too quiet to have been recorded well.
QUIET_MEAN_DB = -38.0
#: Share of samples at full scale above which a reading is clipped.
CLIPPED_SHARE = 0.001
#: Share of the duration that is silence above which a reading is mostly silence.
SILENT_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class Levels:
    """How a recording sounds as a whole: the basis for warnings at upload."""

    duration_ms: int
    mean_db: float  # mean volume (RMS), dBFS
    peak_db: float  # sample peak, dBFS
    clipped_share: float  # share of samples at full scale
    silent_share: float  # share of the duration quieter than LEVEL_SILENCE_DB

    @property
    def too_quiet(self) -> bool:
        return self.mean_db < QUIET_MEAN_DB

    @property
    def clipped(self) -> bool:
        return self.peak_db >= -0.1 and self.clipped_share > CLIPPED_SHARE

    @property
    def mostly_silent(self) -> bool:
        return self.silent_share > SILENT_SHARE
