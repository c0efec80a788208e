"""`make demo`: the main job in one command, on the sample deployment.

1. Copies the example bulletins into data/demo/ with their validity shifted so that
   they air tomorrow (the examples are dated December 2026), adds and approves them.
2. Attaches a clearly labelled placeholder recording for every ethnic language a
   bulletin lists (a tone and espeak-ng saying what it stands for).
3. Runs `loa nightly` for tomorrow to the local endpoints under data/endpoints/.
4. Prints the summary, the playlists and the command to listen to one.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from pipeline.cli import main as loa
from pipeline.config import load_settings
from pipeline.models import LANGUAGES
from pipeline.nightly import tomorrow

ROOT = Path(__file__).resolve().parent.parent


def shifted(text: str, start: dt.date) -> str:
    front = text.split("+++")[1]
    meta = tomllib.loads(front)
    span = meta["valid_until"] - meta["valid_from"]
    text = re.sub(r"(?m)^valid_from = .*$", f"valid_from = {start.isoformat()}", text, count=1)
    return re.sub(r"(?m)^valid_until = .*$", f"valid_until = {(start + span).isoformat()}", text, count=1)


def placeholder(dst: Path, words: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "vi", "-w", str(speech), "--stdin"], input=words.encode(), check=True)
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=660:duration=0.6",
                "-i",
                str(speech),
                "-filter_complex",
                "[0:a]aresample=22050[t];[t][1:a]concat=n=2:v=0:a=1",
                "-ac",
                "1",
                str(dst),
            ],
            check=True,
        )


def run(*args: str) -> int:
    print(f"\n$ loa {' '.join(args)}", flush=True)
    return loa(list(args))


def main() -> int:
    settings = load_settings(ROOT / "loa.toml")
    day = tomorrow(settings)
    demo = settings.data_dir / "demo"
    (demo / "bulletins").mkdir(parents=True, exist_ok=True)
    files = []
    for src in sorted((ROOT / "examples" / "bulletins").glob("*.md")):
        dst = demo / "bulletins" / src.name
        dst.write_text(shifted(src.read_text(encoding="utf-8"), day), encoding="utf-8")
        files.append(str(dst))
    if run("bulletin", "add", *files) != 0:
        return 2
    from pipeline.store import bulletins as store
    from pipeline.store import open_database

    db = open_database(settings.db_url)
    for b in store.list_bulletins(db):
        for lang in b.languages:
            if lang == "vi":
                continue
            rec = demo / "recordings" / f"{b.id}-{lang}.wav"
            if not rec.exists():
                rec.parent.mkdir(parents=True, exist_ok=True)
                placeholder(rec, f"Bản ghi mẫu {LANGUAGES[lang]} cho bản tin số {b.id}. Chưa có bản ghi thật.")
            run("recording", "add", str(b.id), lang, str(rec))
        # approved last: a new recording changes what airs and returns a bulletin to draft
        if store.get_bulletin(db, b.id or 0).status == "draft" and b.source_file in files:
            run("bulletin", "approve", str(b.id))
    if not settings.signing_key_file.exists():
        run("keys", "init")  # the deployment's manifest key; devices get `loa keys show --pem`
    code = run("nightly", "--date", day.isoformat())
    playlists = sorted(settings.data_dir.glob(f"endpoints/*/programs/{day.isoformat()}/*.m3u"))
    print(f"\nplaylists for {day.isoformat()} on the local endpoints ({len(playlists)}):")
    for p in playlists[:6]:
        print(f"  {p.relative_to(ROOT)}")
    if len(playlists) > 6:
        print(f"  … and {len(playlists) - 6} more under data/endpoints/")
    if playlists:
        print(f"\nlisten:  mpv {playlists[0].relative_to(ROOT)}")
        run("verify", str(playlists[0].parent))  # signature, expiry and every file, as a device checks
    return code


if __name__ == "__main__":
    sys.exit(main())
