"""``loa text normalize`` and ``loa text speak``: the spoken form of Vietnamese text, and its sound."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.context import console, ctx_of

text_app = typer.Typer(help="The Vietnamese text front end.", no_args_is_help=True)


@text_app.command("normalize")
def normalize_cmd(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Text to read; without it, stdin line by line.")] = None,
    variant: Annotated[str | None, typer.Option(help="north or south (default from config).")] = None,
) -> None:
    """Print the spoken form of TEXT, or of each stdin line, one line out per line in.

    Example: loa text normalize "Chỉ thị số 07/CT-TTg ngày 21/3/2023"
    """
    from pipeline.textnorm import load_lexicon, normalize, normalize_lines

    app = ctx_of(ctx)
    settings = app.settings
    chosen = variant or settings.tts.variant
    if chosen not in ("north", "south"):
        raise typer.BadParameter("use north or south", param_hint="--variant")
    lexicon_path = settings.voices_dir / "lexicon.vi.toml"
    lexicon = load_lexicon(lexicon_path) if lexicon_path.is_file() else None
    if text is not None:
        sys.stdout.write(normalize(text, variant=chosen, lexicon=lexicon) + "\n")
        return
    for line in normalize_lines((raw.rstrip("\n") for raw in sys.stdin), variant=chosen, lexicon=lexicon):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@text_app.command("speak")
def speak_cmd(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="Vietnamese text as written; it is read in its spoken form.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The WAV file to write.")],
    engine: Annotated[
        str | None, typer.Option(help="espeak, gtts, fpt, viettel, google or command (default: the chain).")
    ] = None,
    voice: Annotated[
        str | None, typer.Option(help="The engine's voice, e.g. vi-vn-x-south, banmai, vi-VN-Neural2-A.")
    ] = None,
    speed: Annotated[
        str | None, typer.Option(help="espeak rate (wpm), fpt -3..3, viettel 0.7-1.3, google 0.25-4.")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="north or south number reading (default from config).")] = None,
) -> None:
    """Speak TEXT into a WAV file as the programs would: spoken form, then the engine chain.

    --voice and --speed need --engine. The WAV is mono 16-bit at [audio] sample_rate.

    Example: loa text speak "Chỉ thị số 07/CT-TTg ngày 21/3/2023" --out thu.wav --engine espeak --speed 130
    """
    from pipeline.textnorm import load_lexicon, normalize
    from pipeline.tts.speak import speak_to_wav

    app = ctx_of(ctx)
    settings = app.settings
    chosen = variant or settings.tts.variant
    if chosen not in ("north", "south"):
        raise typer.BadParameter("use north or south", param_hint="--variant")
    if engine is None and (voice is not None or speed is not None):
        raise typer.BadParameter("name the engine whose voice or speed to set", param_hint="--engine")
    lexicon_path = settings.voices_dir / "lexicon.vi.toml"
    lexicon = load_lexicon(lexicon_path) if lexicon_path.is_file() else None
    spoken = normalize(text, variant=chosen, lexicon=lexicon)
    result = speak_to_wav(spoken, out, settings=settings, engine=engine, voice=voice, speed=speed)
    console.print(f"{result.engine} spoke {result.duration_ms / 1000:.1f} s into {out}: {spoken}", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(text_app, name="text")
