"""``loa text normalize``: the spoken form of Vietnamese text."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pipeline.cli.context import ctx_of

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


def register(app: typer.Typer) -> None:
    app.add_typer(text_app, name="text")
