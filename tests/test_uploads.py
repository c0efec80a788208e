"""Uploaded recordings: audio and nothing else, converted to the internal WAV (real ffmpeg).

Every hostile file is made here at test time: an HLS playlist naming a file on the
server, an ffmpeg concat list, a WAV whose metadata holds a ``file:`` reference, an
image, a 0-byte file, a file whose extension lies, and a 2 GB upload.
"""

from __future__ import annotations

import hashlib
import socket
import wave
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pipeline.audio.uploads import UPLOAD_EXTENSIONS, convert_upload, probe_upload
from pipeline.config import AudioSettings
from pipeline.errors import RecordingRefused
from pipeline.store import audit
from pipeline.store import bulletins as bulletin_store
from pipeline.store.recordings import current_recordings
from tests import audio_fixtures as fx
from tests.conftest import CliResult, Project, add_bulletin
from tests.web_support import Web, csrf_of, logged_in_csrf
from tests.web_support import add_bulletin as web_add_bulletin

pytestmark = pytest.mark.audio
AUDIO = AudioSettings(max_recording_minutes=1)


def _secret(tmp_path: Path) -> Path:
    """A sound on the server that a hostile upload tries to pull into a program."""
    return fx.sine(tmp_path / "server-secret.wav", seconds=1.0)


def hostile(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A hostile file and the refusal reason it must get."""
    secret = _secret(tmp_path)
    if kind == "m3u8":
        p = tmp_path / "ban-tin.m3u8"
        p.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n")
        return p, "playlist"
    if kind == "m3u8-as-mp3":
        p = tmp_path / "ban-tin.mp3"
        p.write_text(f"#EXTM3U\n#EXTINF:1,\nfile:{secret}\n#EXT-X-ENDLIST\n")
        return p, "playlist"
    if kind == "concat":
        p = tmp_path / "ban-tin.wav"
        p.write_text(f"ffconcat version 1.0\nfile '{secret}'\n")
        return p, "concat"
    if kind == "file-ref-metadata":
        p = tmp_path / "ban-tin.wav"
        fx.ffmpeg(
            "-f", "lavfi", "-i", "sine=duration=1", "-metadata", f"comment=file:{secret}", "-c:a", "pcm_s16le", str(p)
        )  # fmt: skip
        return p, "reference"
    if kind == "image":
        p = tmp_path / "anh.wav"
        fx.ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:d=1", "-frames:v", "1", "-f", "image2", str(p))
        return p, "image"
    if kind == "empty":
        p = tmp_path / "rong.wav"
        p.write_bytes(b"")
        return p, "empty"
    if kind == "mp3-named-wav":
        p = tmp_path / "that-ra-la-mp3.wav"
        p.write_bytes(fx.mp3_bytes(1.0))
        return p, "extension"
    if kind == "text-extension":
        p = tmp_path / "ban-tin.txt"
        fx.sine(tmp_path / "x.wav", seconds=1.0).rename(p)
        return p, "extension"
    if kind == "video":
        p = tmp_path / "phim.mp4"
        fx.ffmpeg(
            "-f", "lavfi", "-i", "color=c=blue:s=32x32:d=1", "-f", "lavfi", "-i", "sine=duration=1",
            "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(p),
        )  # fmt: skip
        return p, "video"
    if kind == "too-long":
        p = tmp_path / "dai.ogg"
        fx.ffmpeg("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "65", "-c:a", "libopus", str(p))
        return p, "too_long"
    raise AssertionError(kind)


HOSTILE = [
    "m3u8",
    "m3u8-as-mp3",
    "concat",
    "file-ref-metadata",
    "image",
    "empty",
    "mp3-named-wav",
    "text-extension",
    "video",
    "too-long",
]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_files_are_refused_by_the_probe(tmp_path: Path, kind: str) -> None:
    path, reason = hostile(tmp_path, kind)
    with pytest.raises(RecordingRefused) as info:
        probe_upload(path, settings=AUDIO)
    assert info.value.reason == reason, str(info.value)
    assert path.name in str(info.value)


GOOD = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    ".m4a": ["-c:a", "aac"],
    ".aac": ["-c:a", "aac", "-f", "adts"],
    ".3gp": ["-c:a", "aac", "-ar", "16000", "-ac", "1"],
    ".ogg": ["-c:a", "libopus"],
    ".opus": ["-c:a", "libopus"],
    ".flac": ["-c:a", "flac"],
    ".webm": ["-c:a", "libopus"],
}


@pytest.mark.parametrize("suffix", sorted(GOOD))
def test_every_accepted_kind_becomes_the_internal_wav(tmp_path: Path, suffix: str) -> None:
    assert suffix in UPLOAD_EXTENSIONS
    src = tmp_path / f"ban-ghi{suffix}"
    fx.ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1.5", *GOOD[suffix], str(src))
    info = probe_upload(src, settings=AUDIO)
    assert info.duration_ms == pytest.approx(1500, abs=120)
    out = convert_upload(src, tmp_path / "out.wav", info=info, settings=AUDIO)
    with wave.open(str(tmp_path / "out.wav"), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, AUDIO.sample_rate)
    assert out.duration_ms == pytest.approx(1500, abs=120)
    assert b"LIST" not in (tmp_path / "out.wav").read_bytes()[:64]  # no metadata carried over


def test_a_wav_with_metadata_that_is_not_a_reference_is_accepted(tmp_path: Path) -> None:
    src = tmp_path / "ok.wav"
    fx.ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-metadata", "comment=Ghi tại xã Y Tý", str(src))
    assert probe_upload(src, settings=AUDIO).codec == "pcm_s16le"


# --- the CLI: the same rules, clear English ----------------------------------------


@pytest.mark.parametrize("kind", ["m3u8", "concat", "file-ref-metadata", "empty", "mp3-named-wav"])
def test_recording_add_refuses_the_same_files(
    small: Project, small_cli: Callable[..., CliResult], tmp_path: Path, kind: str
) -> None:
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30.", approve=False)
    path, _ = hostile(tmp_path, kind)
    result = small_cli("recording", "add", str(bid), "hmn", str(path))
    assert result.code == 2, result.err
    assert path.name in result.err and "error:" in result.err
    assert current_recordings(small.db(), [bid]) == {}


def test_recording_add_on_an_approved_bulletin_makes_it_a_draft_again(
    small: Project, small_cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    bid = add_bulletin(small, "Thôn Tả Phìn họp lúc 7h30.")
    rec = fx.sine(tmp_path / "hmn.wav", seconds=1.0)
    result = small_cli("recording", "add", str(bid), "hmn", str(rec))
    assert result.code == 0 and "draft again" in result.out
    db = small.db()
    assert bulletin_store.get_bulletin(db, bid).status == "draft"
    stored = current_recordings(db, [bid])[(bid, "hmn")]
    assert stored.path.suffix == ".wav" and hashlib.sha256(stored.path.read_bytes()).hexdigest() == stored.sha256
    # the same file again changes nothing: the bulletin stays as it is
    assert small_cli("bulletin", "approve", str(bid)).code == 0
    assert small_cli("recording", "add", str(bid), "hmn", str(rec)).code == 0
    assert bulletin_store.get_bulletin(db, bid).status == "approved"


# --- the web: Vietnamese refusals, nothing stored -----------------------------------


def _upload(client: httpx.Client, bid: int, path: Path, name: str | None = None) -> httpx.Response:
    token = logged_in_csrf(client, f"/bulletins/{bid}")
    return client.post(
        f"/bulletins/{bid}/recordings",
        data={"csrf_token": token, "language": "hmn"},
        files={"file": (name or path.name, path.read_bytes(), "application/octet-stream")},
    )


VI_REASON = {
    "playlist": "danh sách phát",
    "concat": "danh sách ghép tệp",
    "reference": "đường dẫn tới tệp khác",
    "image": "tệp ảnh",
    "empty": "Tệp rỗng",
    "extension": "đuôi tệp không khớp",
}


@pytest.mark.parametrize(
    "kind", ["m3u8", "m3u8-as-mp3", "concat", "file-ref-metadata", "image", "empty", "mp3-named-wav", "text-extension"]
)
def test_the_web_refuses_hostile_uploads_in_vietnamese(web: Web, tmp_path: Path, kind: str) -> None:
    bid = web_add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    path, reason = hostile(tmp_path, kind)
    r = _upload(web.client("bientap"), bid, path)
    assert r.status_code == 400 and 'id="upload-error"' in r.text
    assert VI_REASON[reason] in r.text, r.text[r.text.find("upload-error") :][:300]
    assert current_recordings(web.db, [bid]) == {}
    assert not any(p.is_file() for p in web.project.settings.recordings_dir.rglob("*"))
    assert [e.detail for e in audit.entries(web.db, action="recording.refused")] == [reason]


def test_a_new_recording_on_an_approved_bulletin_needs_approval_again(web: Web, tmp_path: Path) -> None:
    bid = web_add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    approver = web.client("duyet")
    page = approver.get(f"/bulletins/{bid}").text
    token = csrf_of(page)
    r = approver.post(
        f"/bulletins/{bid}/approve", data={"csrf_token": token, "action_token": "t" * 32, "confirm_missing": "hmn"}
    )
    assert r.status_code == 303 and bulletin_store.get_bulletin(web.db, bid).status == "approved"
    editor = web.client("bientap")
    r = _upload(editor, bid, _m4a(tmp_path))
    assert r.status_code == 303 and "ok=recording_redraft" in r.headers["location"]  # a short reading also warns
    assert bulletin_store.get_bulletin(web.db, bid).status == "draft"
    page = approver.get(f"/bulletins/{bid}").text
    assert 'id="changes"' in page and "Bản ghi mới: Tiếng Mông" in page
    # replacing it after a new approval shows as a replacement
    r = approver.post(f"/bulletins/{bid}/approve", data={"csrf_token": token, "action_token": "u" * 32})
    assert bulletin_store.get_bulletin(web.db, bid).status == "approved"
    r = _upload(editor, bid, fx.sine(tmp_path / "khac.wav", seconds=1.2))
    assert r.status_code == 303 and bulletin_store.get_bulletin(web.db, bid).status == "draft"
    assert "Đã thay bản ghi: Tiếng Mông" in approver.get(f"/bulletins/{bid}").text


def _m4a(tmp_path: Path) -> Path:
    p = tmp_path / "hmong.m4a"
    fx.ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:duration=1", "-c:a", "aac", str(p))
    return p


def test_a_2_gb_upload_is_refused_before_it_is_read(web: Web) -> None:
    """Through real uvicorn: the headers declare 2 GB; 413 comes back before one body byte is sent."""
    bid = web_add_bulletin(web.db, web.project.deployment, web.project.settings, approve=False)
    client = web.client("bientap")
    token = logged_in_csrf(client, f"/bulletins/{bid}")
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    host, port = web.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            (
                f"POST /bulletins/{bid}/recordings HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
                f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {2 * 1024**3}\r\n"
                f"X-CSRF: {token}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer or "Tệp quá lớn".encode() not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert "Tệp quá lớn".encode() in answer
    assert not any((web.project.settings.data_dir / "tmp" / "uploads").glob("*/*"))


# --- guards held by what they protect, not by a message (issue 30) ----------------------


def test_a_playlist_is_refused_before_ffprobe_reads_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The byte sniff keeps playlists away from ffmpeg's parsers altogether (a later check would
    refuse them too, but only after a demuxer had parsed the attacker's bytes)."""
    import pipeline.audio.ffmpeg as ffmpeg_adapter

    ran: list[list[str]] = []
    real_run = ffmpeg_adapter.run

    def spy(argv: list[str], **kwargs: object) -> object:
        ran.append(list(argv))
        return real_run(argv, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ffmpeg_adapter, "run", spy)
    for kind in ("m3u8", "m3u8-as-mp3"):
        (tmp_path / kind).mkdir()
        path, _ = hostile(tmp_path / kind, kind)
        with pytest.raises(RecordingRefused) as info:
            probe_upload(path, settings=AUDIO)
        assert info.value.code == "recording.playlist"
    assert ran == []


def test_ffprobe_reads_an_upload_with_the_upload_demuxers_only(tmp_path: Path) -> None:
    """A DASH manifest passes the byte sniff (no playlist, XML declaration or file: reference in its
    first bytes); without ffprobe's -format_whitelist the dash demuxer would open the file it names.
    That file is a FIFO here: opening it is seen at once, and nothing is read from it."""
    import os
    import threading
    import time

    fifo = tmp_path / "server-secret.mp4"
    os.mkfifo(fifo)
    upload = tmp_path / "ban-tin.mp3"
    upload.write_text(
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S" '
        'minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period>'
        '<AdaptationSet mimeType="audio/mp4"><Representation id="1" bandwidth="1000">'
        f"<BaseURL>{fifo}</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
    )
    opened: list[bool] = []
    stop = threading.Event()

    def watch() -> None:  # a writer can open a FIFO without blocking only while a reader has it open
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)
                continue
            opened.append(True)
            os.close(fd)  # the reader sees the end of the file at once
            return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with pytest.raises(RecordingRefused) as info:
            probe_upload(upload, settings=AUDIO)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert opened == [], "ffprobe opened the file the manifest names"
    assert info.value.code == "recording.not_audio"
