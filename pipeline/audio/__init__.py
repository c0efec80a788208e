"""Audio: every module that reads, analyses or writes sound.

- ``ffmpeg``: the ffmpeg adapter, reading and analysing (runs ffmpeg/ffprobe; ``probe_*``,
  ``compute_*``, ``parse_*`` with their regexes at module level).
- ``ffmpeg_write``: the ffmpeg adapter, writing (tones, joined MP3s, decodes to WAV, the
  benchmark's synthetic recordings).
- ``libav``: FFmpeg's libraries in this process through PyAV (decode, filter chains, encode).
- ``files``: WAV and MP3 files without running anything (atomic writes, headers, ID3 tags).
- ``loudness``: the loudness arithmetic (EBU R 128 in memory, the limiter model, ebur128 parsing).
- ``ingest``: a recording or TTS output → the trimmed working WAV.
- ``mastering``: the working WAV → a loudness-normalised, tagged MP3.
- ``uploads``: the upload gate (which uploaded files are accepted) and their conversion.
- ``levels``: checks of a person's reading (too quiet, clipped, mostly silence).
- ``joined``: the one cache of MP3s joined from segments (single files, downloads, archive).
- ``types``: the dataclasses they hand each other.

Import from the module that does the work (``from pipeline.audio.ingest import ingest_audio``);
this package re-exports nothing.
"""
