"""``loa bulletin …`` and ``loa recording add``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from pipeline import labels, lifecycle
from pipeline.cli.context import JSON_OPTION, console, ctx_of, err_console, print_json
from pipeline.intake import prepare_recording, read_bulletin_files
from pipeline.lifecycle import reads as store
from pipeline.lifecycle.reads import current_recordings
from pipeline.models import LANGUAGES, Bulletin

bulletin_app = typer.Typer(help="Add, list, show, approve and withdraw bulletins.", no_args_is_help=True)
recording_app = typer.Typer(help="Attach readings in Vietnamese, Mong, Dao or Giay to bulletins.", no_args_is_help=True)


def bulletin_json(b: Bulletin) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(b).items()}


@bulletin_app.command("add")
def add(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Bulletin files (Markdown with TOML front matter).")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Validate every file, then store all of them, or none if one is bad.

    Re-adding an unchanged file does nothing; a changed file with the same title and
    source becomes a new revision (back to draft).

    Example: loa bulletin add examples/bulletins/*.md
    """
    app = ctx_of(ctx)
    parsed = read_bulletin_files(files, deployment=app.deployment)
    for p in parsed:
        for warning in p.warnings:
            err_console.print(f"warning: {warning}", markup=False)
    changes = lifecycle.submit_all(app.db, lifecycle.cli(), [p.bulletin for p in parsed])
    results = [(c.bulletin, c.outcome) for c in changes]
    if json_out:
        print_json([{"id": b.id, "revision": b.revision, "outcome": o, "file": b.source_file} for b, o in results])
        return
    for b, outcome in results:
        console.print(f"{outcome:9} #{b.id} r{b.revision} {b.title}  ({b.source_file})", markup=False)


@bulletin_app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only this status: draft, approved, withdrawn, superseded, cancelled.")
    ] = None,
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """List bulletins with their status and validity.

    Example: loa bulletin list --status approved
    """
    items = store.list_bulletins(ctx_of(ctx).db, status=status)
    if json_out:
        print_json([bulletin_json(b) for b in items])
        return
    table = Table(
        "id", "rev", Column("status", no_wrap=True, min_width=11), "priority", "valid", "targets", "languages", "title"
    )
    for b in items:
        table.add_row(
            str(b.id),
            str(b.revision),
            labels.lower(labels.BULLETIN, b.status),
            b.priority,
            f"{b.valid_from:%d/%m}–{b.valid_until:%d/%m/%Y}",
            ", ".join(b.targets),
            ", ".join(b.languages),
            b.title,
        )
    console.print(table)


@bulletin_app.command("show")
def show(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="ID")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show one bulletin, its revisions and recordings.

    Example: loa bulletin show 3
    """
    app = ctx_of(ctx)
    b = store.get_bulletin(app.db, bulletin_id)
    recs = current_recordings(app.db, [bulletin_id])
    revs = store.revisions(app.db, bulletin_id)
    if json_out:
        print_json(
            bulletin_json(b)
            | {
                "recordings": {lang: dataclasses.asdict(r) for (_, lang), r in recs.items()},
                "revisions": [
                    {k: r[k] for k in ("revision", "content_hash", "created_at", "source_file")} for r in revs
                ],
            }
        )
        return
    console.print(f"#{b.id} r{b.revision} [{labels.lower(labels.BULLETIN, b.status)}] {b.title}", markup=False)
    console.print(f"{b.source} — {b.reference}", markup=False)
    console.print(
        f"{b.category}, {b.priority}; {b.valid_from} → {b.valid_until}; "
        f"targets {', '.join(b.targets)}; languages {', '.join(b.languages)}",
        markup=False,
    )
    for lang in b.languages:
        if lang == "vi":
            continue
        rec = recs.get((bulletin_id, lang))
        state = f"{rec.original_name}, {rec.duration_ms / 1000:.1f} s" if rec else "MISSING"
        console.print(f"recording {lang} ({LANGUAGES[lang]}): {state}", markup=False)
    console.print(f"revisions: {len(revs)}", markup=False)
    console.print()
    console.print(b.body, markup=False)


@bulletin_app.command("approve")
def approve(ctx: typer.Context, bulletin_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Approve a bulletin so that it airs in its validity window.

    Example: loa bulletin approve 3
    """
    change = lifecycle.approve(ctx_of(ctx).db, lifecycle.cli(), bulletin_id)
    b = change.bulletin
    console.print(f"approved #{b.id} r{b.revision} {b.title}", markup=False)
    for ended in change.ended:
        console.print(f"superseded #{ended} (an older version of the same alert)", markup=False)


@bulletin_app.command("withdraw")
def withdraw(ctx: typer.Context, bulletin_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Withdraw a bulletin: it no longer airs from the next build on.

    Example: loa bulletin withdraw 3
    """
    b = lifecycle.withdraw(ctx_of(ctx).db, lifecycle.cli(), bulletin_id).bulletin
    console.print(f"withdrawn #{b.id} {b.title}", markup=False)


@recording_app.command("add")
def recording_add(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="BULLETIN")],
    language: Annotated[str, typer.Argument(metavar="LANG", help="vi (Việt), hmn (Mông), ium (Dao) or pcc (Giáy).")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Any audio ffmpeg reads.")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Attach a reading of a bulletin in Vietnamese, Mong, Dao or Giay.

    Audio only (WAV, MP3, AAC/M4A, Ogg/Opus, FLAC, WebM, AMR, 3GP): playlists, concat
    lists, images, files naming other files and wrong extensions are refused. The file
    is converted to the internal WAV under a generated name and replaces the previous
    recording for that language (which is kept). An approved bulletin becomes a draft
    again: what airs has changed, so it must be approved again. A Vietnamese (vi) reading
    of the whole body airs instead of text-to-speech in every commune. Too quiet, clipped
    or mostly silent readings are warned about.

    Example: loa recording add 3 hmn ban-tin-3-hmong.m4a
    """
    app = ctx_of(ctx)
    b = lifecycle.check(app.db, lifecycle.cli(), "recording", bulletin_id)
    rec = prepare_recording(b, language, file, settings=app.settings)
    change = lifecycle.attach_recording(app.db, lifecycle.cli(), rec)
    stored, outcome, redrafted = change.recording, change.outcome, change.back_to_draft
    from pipeline.audio.levels import LEVEL_WARNINGS_VI, check_reading

    warnings = check_reading(stored.path, settings=app.settings.audio)
    if json_out:
        print_json(
            dataclasses.asdict(stored) | {"outcome": outcome, "back_to_draft": redrafted, "warnings": list(warnings)}
        )
        return
    for code in warnings:
        err_console.print(f"warning: {code}: {LEVEL_WARNINGS_VI[code]}", markup=False, highlight=False)
    console.print(
        f"{outcome} recording {language} for #{b.id}: {stored.duration_ms / 1000:.1f} s "
        f"{stored.codec} {stored.sample_rate} Hz {stored.channels} ch",
        markup=False,
    )
    if redrafted:
        console.print(
            f"bulletin #{b.id} was approved: it is a draft again (what airs changed); "
            f"approve it again with `loa bulletin approve {b.id}`",
            markup=False,
        )


@recording_app.command("remove")
def recording_remove(
    ctx: typer.Context,
    bulletin_id: Annotated[int, typer.Argument(metavar="BULLETIN")],
    language: Annotated[str, typer.Argument(metavar="LANG", help="The language whose recording goes.")],
) -> None:
    """Remove the current recording of one language (the file is kept, no longer used).

    An approved bulletin becomes a draft again: what airs has changed.

    Example: loa recording remove 3 hmn
    """
    change = lifecycle.remove_recording(ctx_of(ctx).db, lifecycle.cli(), bulletin_id, language)
    console.print(f"removed recording {language} of #{bulletin_id}", markup=False)
    if change.back_to_draft:
        console.print(
            f"bulletin #{bulletin_id} was approved: it is a draft again; "
            f"approve it again with `loa bulletin approve {bulletin_id}`",
            markup=False,
        )


@bulletin_app.command("expire")
def expire_cmd(ctx: typer.Context) -> None:
    """Mark every draft or approved bulletin whose validity has ended as expired.

    Example: loa bulletin expire
    """
    app = ctx_of(ctx)
    today = dt.datetime.now(app.settings.tz).date()
    for change in lifecycle.expire(app.db, lifecycle.cli(), today=today):
        b = change.bulletin
        console.print(f"expired #{b.id} {b.title} (valid until {b.valid_until})", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(bulletin_app, name="bulletin")
    app.add_typer(recording_app, name="recording")
