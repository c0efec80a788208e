"""``loa consultation list|show|export|purge|person``: campaigns on draft policies."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.context import JSON_OPTION, console, ctx_of, print_json
from pipeline.errors import UsageError
from pipeline.models import Consultation

consultation_app = typer.Typer(
    help="Consultations on draft policies: campaigns, answers, exports, personal data.", no_args_is_help=True
)


def public_path(c: Consultation) -> str:
    """The public answer page of a campaign (no login)."""
    return f"/y-kien/{c.spec.code}"


def campaign_json(c: Consultation, *, communes: list[str], answers: int) -> dict[str, Any]:
    return {
        "id": c.id,
        "code": c.spec.code,
        "title": c.title,
        "policy": c.policy,
        "bulletin_id": c.bulletin_id,
        "bulletin_status": c.bulletin_status,
        "opens": c.spec.opens.isoformat(),
        "closes": c.spec.closes.isoformat(),
        "agency": c.spec.agency,
        "targets": list(c.targets),
        "communes": communes,
        "questions": [dataclasses.asdict(q) for q in c.spec.questions],
        "answers": answers,
        "public_path": public_path(c),
        "agency_answer": c.agency_answer,
        "followup_bulletin_id": c.followup_bulletin_id,
    }


@consultation_app.command("list")
def list_(ctx: typer.Context, json_out: Annotated[bool, JSON_OPTION] = False) -> None:
    """List the consultation campaigns with their dates and number of answers.

    Example: loa consultation list --json
    """
    from pipeline.feedback.consultation import communes_of
    from pipeline.store import consultations as store

    app = ctx_of(ctx)
    items = store.list_campaigns(app.db)
    counts = {c.id: store.count_answers(app.db, c.id) for c in items}
    if json_out:
        print_json([campaign_json(c, communes=communes_of(c, app.deployment), answers=counts[c.id]) for c in items])
        return
    table = Table("id", "mã", "mở", "đóng", "ý kiến", "cơ quan", "chính sách")
    for c in items:
        table.add_row(
            str(c.id),
            c.spec.code,
            f"{c.spec.opens:%d/%m/%Y}",
            f"{c.spec.closes:%d/%m/%Y}",
            str(counts[c.id]),
            c.spec.agency,
            c.policy,
        )
    console.print(table)


@consultation_app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Campaign id or code, e.g. 1 or GY27.")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show a campaign: dates, questions, communes, the public page's path and the counts.

    Example: loa consultation show GY27 --json
    """
    from pipeline.feedback.consultation import communes_of, summarize
    from pipeline.store import consultations as store

    app = ctx_of(ctx)
    c = store.get_campaign(app.db, ref)
    answers = store.list_answers(app.db, c.id)
    summary = summarize(c, answers, app.deployment)
    if json_out:
        data = campaign_json(c, communes=communes_of(c, app.deployment), answers=len(answers))
        data["summary"] = {
            "answers": summary.answers,
            "people": summary.people,
            "hidden": summary.hidden,
            "merged": summary.merged,
            "questions": [dict(q.counts) | {"_unanswered": q.unanswered} for q in summary.questions],
            "by_commune": dict(summary.by_commune),
            "by_language": dict(summary.by_language),
            "by_channel": dict(summary.by_channel),
        }
        print_json(data)
        return
    out = [
        f"{c.spec.code} — {c.policy}",
        f"bulletin #{c.bulletin_id} ({c.bulletin_status}): {c.title}",
        f"open {c.spec.opens:%d/%m/%Y} – {c.spec.closes:%d/%m/%Y}; agency: {c.spec.agency}",
        f"communes: {', '.join(communes_of(c, app.deployment))}",
        f"public page: {public_path(c)}",
        f"answers: {summary.answers} counted ({summary.people} people), {summary.hidden} hidden",
    ]
    for q in summary.questions:
        counts = ", ".join(f"{k}: {n}" for k, n in q.counts)
        out.append(f"  {q.number}. [{q.question.kind}] {q.question.text} — {counts}; no answer: {q.unanswered}")
    console.print("\n".join(out), markup=False)


@consultation_app.command("export")
def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Campaign id or code.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or xlsx.")] = "csv",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: stdout for csv).")] = None,
    phones: Annotated[bool, typer.Option("--phones", help="Phone numbers in full (default: masked).")] = False,
) -> None:
    """Export a campaign's counted answers (CSV), or the summary and answers (XLSX), for the agency.

    Example: loa consultation export GY27 --format xlsx --out gy27.xlsx
    """
    from pipeline.feedback import export as export_fmt
    from pipeline.feedback.consultation import summarize
    from pipeline.store import consultations as store

    if fmt not in ("csv", "xlsx"):
        raise UsageError(f"--format: {fmt!r}; use csv or xlsx")
    if fmt == "xlsx" and out is None:
        raise UsageError("--format xlsx needs --out FILE")
    app = ctx_of(ctx)
    c = store.get_campaign(app.db, ref)
    answers = store.list_answers(app.db, c.id)
    rows = export_fmt.answer_rows(c, answers, app.deployment, timezone=app.settings.timezone, phones=phones)
    data: bytes
    if fmt == "csv":
        data = export_fmt.to_csv(rows).encode("utf-8")
    else:
        data = export_fmt.to_xlsx(export_fmt.summary_rows(c, summarize(c, answers, app.deployment)), rows)
    if out is None:
        sys.stdout.write(data.decode("utf-8"))
        sys.stdout.flush()
        return
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    console.print(f"{out}: {len(rows) - 1} answers", markup=False)


@consultation_app.command("purge")
def purge(ctx: typer.Context) -> None:
    """Erase names, phones and voice messages older than consultation.retention_days (counts stay).

    What the scheduler would run daily; safe to run from cron.

    Example: loa consultation purge
    """
    from pipeline.feedback.consultation import purge_expired

    app = ctx_of(ctx)
    n = purge_expired(app.db, app.settings)
    console.print(f"personal fields erased from {n} answers", markup=False)


@consultation_app.command("person")
def person(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="The person's phone number.")],
    erase: Annotated[bool, typer.Option("--erase", help="Erase their name, phone and voice messages.")] = False,
) -> None:
    """A person's data request: print their answers as JSON; with --erase, erase their personal fields.

    Example: loa consultation person 0912345678 --erase
    """
    from pipeline.feedback.consultation import normalize_phone, remove_recordings
    from pipeline.store import consultations as store

    app = ctx_of(ctx)
    number = normalize_phone(phone)
    if not number:
        raise UsageError("phone: empty; give the number the person answered with")
    found = store.erase_by_phone(app.db, number) if erase else store.answers_by_phone(app.db, number)
    if erase:
        remove_recordings(found, app.settings.data_dir)
    print_json({"phone": number, "erased": erase, "answers": [dataclasses.asdict(a) for a in found]})


@consultation_app.command("followup")
def followup(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Campaign id or code.")],
    text_file: Annotated[Path, typer.Argument(help="A text file with the agency's answer (UTF-8).")],
    json_out: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Turn the drafting agency's answer into a draft follow-up bulletin for the campaign's communes.

    The bulletin starts "Ý kiến của bà con đã được tiếp thu.", goes through intake like any
    file, and waits for approval.

    Example: loa consultation followup GY27 tra-loi-cua-so.txt
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    from pipeline.feedback.consultation import make_followup
    from pipeline.store import consultations as store

    app = ctx_of(ctx)
    try:
        text = text_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{text_file}: cannot read the answer as UTF-8 text ({exc})") from exc
    c = store.get_campaign(app.db, ref)
    today = dt.datetime.now(ZoneInfo(app.settings.timezone)).date()
    from pipeline import lifecycle

    bid = make_followup(app.db, app.deployment, c, text, today=today, actor=lifecycle.cli())
    if json_out:
        print_json({"consultation": c.spec.code, "bulletin_id": bid, "status": "draft"})
        return
    console.print(
        f"draft bulletin #{bid} made for {c.spec.code}; approve it with `loa bulletin approve {bid}`", markup=False
    )


@consultation_app.command("report")
def report(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Campaign id or code.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")],
) -> None:
    """Write the printable report for the drafting agency (HTML, no names or phone numbers).

    Print it to PDF from any browser.

    Example: loa consultation report GY27 --out bao-cao-gy27.html
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    from pipeline.feedback.consultation import summarize
    from pipeline.store import consultations as store
    from pipeline.web.charts import count_chart
    from pipeline.web.pages import make_environment, nfc

    app = ctx_of(ctx)
    c = store.get_campaign(app.db, ref)
    summary = summarize(c, store.list_answers(app.db, c.id), app.deployment)
    charts = {
        "questions": [count_chart(q.counts, title=f"Câu {q.number}") for q in summary.questions],
        "commune": count_chart(summary.by_commune, title="Theo xã"),
        "language": count_chart(summary.by_language, title="Theo ngôn ngữ"),
        "channel": count_chart(summary.by_channel, title="Theo kênh"),
    }
    html = (
        make_environment()
        .get_template("consultation_report.html")
        .render(c=c, summary=summary, charts=charts, made=dt.datetime.now(ZoneInfo(app.settings.timezone)))
    )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(nfc(html), encoding="utf-8")
    tmp.replace(out)
    console.print(f"{out}: report for {c.spec.code} ({summary.answers} answers)", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(consultation_app, name="consultation")
