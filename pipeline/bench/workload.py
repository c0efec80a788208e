"""A province-sized workload in a temporary deployment, shaped like Lào Cai's.

``make_project`` writes ``loa.toml`` and ``schedules/bench.toml`` (communes in groups, two
daily slots, endpoints on the loopback sshd), and ``add_bulletins`` stores approved
bulletins with textnorm-heavy Vietnamese bodies of the requested length of speech and
synthetic recordings in Mông, Dao and Giáy. Everything is generated from a seed, so two
runs with the same size build the same workload.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline import lifecycle
from pipeline.audio.ffmpeg_write import mix_over_tone
from pipeline.config import Settings, load_settings
from pipeline.deployment import load_deployment
from pipeline.intake import parse_bulletin, prepare_recording
from pipeline.models import Bulletin
from pipeline.store import open_database
from pipeline.textnorm import normalize
from pipeline.tts.espeak import EspeakEngine

#: Spoken characters per second of espeak-ng Vietnamese at the default rate (measured).
CHARS_PER_SECOND = 16
SEED = 158


@dataclass(frozen=True, slots=True)
class Size:
    name: str
    communes: int
    groups: int
    bulletins: int
    speech_s: tuple[int, int]  # each bulletin's Vietnamese speech, seconds (min, max)
    recording_s: tuple[int, int]  # each synthetic recording, seconds (min, max)
    endpoints_per_commune: int
    naive_communes: int  # the sample the naive way is measured on, then scaled up
    many_communes: int = 0  # the larger deployment memory is measured on (default 5× communes)


FULL = Size("full", 99, 9, 25, (60, 180), (30, 90), 2, 3, 500)
QUICK = Size("quick", 4, 2, 2, (30, 40), (10, 15), 1, 1, 12)

_PREFIXES = ("Tả", "Bản", "Nậm", "Mường", "Sín", "Lùng", "Phìn", "Cốc", "Pha", "Tòng", "Y")
_SUFFIXES = ("Van", "Lầu", "Chạc", "Hum", "Xèo", "Phời", "Ngan", "San", "Mú", "Khoang", "Sáng", "Tý")
_GROUPS = ("bat-xat", "sa-pa", "bao-thang", "bao-yen", "bac-ha", "muong-khuong", "si-ma-cai", "van-ban", "lao-cai")
_LANGUAGE_MIX = (("vi", "hmn"), ("vi", "hmn", "pcc"), ("vi", "ium"), ("vi",), ("vi", "hmn", "ium"))
_ETHNIC_VOICES = {"hmn": "id", "ium": "th", "pcc": "vi"}

_TOPICS = (
    "chuyển đổi số ở thôn, bản",
    "phòng, chống dịch tả lợn châu Phi",
    "bảo vệ và phát triển rừng",
    "xây dựng nông thôn mới nâng cao",
    "hỗ trợ nhà ở cho hộ nghèo",
    "tiêm chủng mở rộng cho trẻ em",
    "an toàn giao thông dịp cuối năm",
    "phòng, chống rét cho gia súc",
)
_CROPS = ("lúa nương", "chè Shan tuyết", "quế", "thảo quả", "ngô lai", "dược liệu")
_SENTENCES = (
    "Thực hiện Kế hoạch số {n}/KH-UBND ngày {d}/{m}/2026 của UBND tỉnh Lào Cai về {topic}, "
    "UBND xã đề nghị các thôn, bản tổ chức họp dân trước ngày {d2}/12/2026.",
    "Từ ngày {d}/{m}/2026 đến ngày {d2}/12/2026, mỗi hộ gia đình được hỗ trợ {k}.000.000 đồng/hộ, "
    "riêng hộ nghèo, hộ cận nghèo được hỗ trợ thêm {p}%.",
    "Mức hỗ trợ trồng {crop} là {p}% chi phí giống, tối đa {k}.500.000 đồng/ha; diện tích đăng ký tối thiểu 0,{d} ha.",
    "Theo Sở NN&PTNT, năm 2026 diện tích {crop} toàn tỉnh đạt {n}.{m}00 ha, tăng {p}% so với năm 2025.",
    "Bà con liên hệ bộ phận một cửa UBND xã từ 7h30 đến 11h30 và từ 13h30 đến 17h00, "
    "hoặc gọi đường dây nóng 0214 38{d}{m} {n}.",
    "Người DTTS sinh sống ở xã vùng III được ngân sách nhà nước hỗ trợ 100% mức đóng BHYT "
    "theo Nghị định số {n}/2024/NĐ-CP.",
    "Lực lượng CSGT phối hợp Công an xã kiểm tra nồng độ cồn trên QL4D và QL70 "
    "từ {d2}h00 đến 2{m}h30 hằng ngày, từ ngày {d}/{m}/2026.",
    "Nhiệt độ thấp nhất ở vùng núi cao trên 1.500 m có thể xuống {d} độ C; "
    "bà con che chắn chuồng trại, dự trữ {k}0 kg thức ăn cho mỗi con trâu, bò.",
    "Trường hợp phát hiện gia súc, gia cầm ốm, chết không rõ nguyên nhân, bà con báo ngay "
    "cho cán bộ thú y xã, tuyệt đối không bán chạy, không vứt xác xuống suối.",
    "Đến ngày {d}/{m}/2026, toàn xã có {n} hộ đăng ký tài khoản VNeID mức 2, đạt {p}% kế hoạch.",
)


def commune_name(i: int) -> str:
    return f"{_PREFIXES[i % len(_PREFIXES)]} {_SUFFIXES[(i // len(_PREFIXES)) % len(_SUFFIXES)]}"


def commune_code(i: int) -> str:
    return f"{2600 + 3 * i:05d}"


def schedules_toml(size: Size, *, communes: int, server_toml: dict[str, str], remote_root: Path) -> str:
    """The deployment: ``communes`` communes in ``size.groups`` groups, 2 slots, sftp endpoints."""
    lines = [
        'timezone = "Asia/Ho_Chi_Minh"',
        "",
        "[defaults]",
        "slots = [",
        '  { name = "morning", start = "05:30", max_minutes = 30 },',
        '  { name = "evening", start = "17:00", max_minutes = 30 },',
        "]",
        "",
    ]
    for g in range(size.groups):
        lines += ["[[group]]", f'id = "{_GROUPS[g % len(_GROUPS)]}-{g}"', f'name = "Trung tâm Văn hóa {g + 1}"', ""]
    for i in range(communes):
        langs = ", ".join(f'"{lang}"' for lang in _LANGUAGE_MIX[i % len(_LANGUAGE_MIX)])
        g = i % size.groups
        lines += [
            "[[commune]]",
            f'code = "{commune_code(i)}"',
            f'name = "{commune_name(i)}"',
            f'group = "{_GROUPS[g % len(_GROUPS)]}-{g}"',
            f"languages = [{langs}]",
            "",
        ]
        for k in range(size.endpoints_per_commune):
            name = f"c{commune_code(i)}-{k + 1}"
            lines += ["  [[commune.endpoint]]", f'  name = "{name}"', '  transport = "sftp"']
            lines += [f'  {key} = "{value}"' for key, value in server_toml.items() if key != "port"]
            lines += [f"  port = {server_toml['port']}", f'  remote_dir = "{remote_root / name}"', ""]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Project:
    root: Path
    config: Path
    settings: Settings


def make_project(
    root: Path, size: Size, *, server_toml: dict[str, str], repo: Path, voices: Path, communes: int | None = None
) -> Project:
    """Write a deployment of ``communes`` (default ``size.communes``) under ``root``."""
    n = size.communes if communes is None else communes
    (root / "schedules").mkdir(parents=True, exist_ok=True)
    remote_root = root.parent / "remote"
    for i in range(n):
        for k in range(size.endpoints_per_commune):
            (remote_root / f"c{commune_code(i)}-{k + 1}").mkdir(parents=True, exist_ok=True)
    (root / "schedules" / "bench.toml").write_text(
        schedules_toml(size, communes=n, server_toml=server_toml, remote_root=remote_root), encoding="utf-8"
    )
    config = root / "loa.toml"
    config.write_text(
        f'data_dir = "{root.parent / "data"}"\n'
        f'templates_dir = "{repo / "templates"}"\n'
        f'voices_dir = "{voices}"\n'
        'schedules_dir = "schedules"\n'
        "[deliver]\nbackoff_s = 0.2\n",
        encoding="utf-8",
    )
    return Project(root, config, load_settings(config, environ={}))


def bulletin_text(i: int, size: Size, *, valid_from: dt.date, valid_until: dt.date, rng: random.Random) -> str:
    """A bulletin whose Vietnamese body speaks for about ``size.speech_s`` seconds."""
    target = rng.randint(*size.speech_s) * CHARS_PER_SECOND
    topic = _TOPICS[i % len(_TOPICS)]
    paragraphs: list[str] = []
    spoken = 0
    while spoken < target:
        sentences = []
        for _ in range(rng.randint(2, 3)):
            template = rng.choice(_SENTENCES)
            sentences.append(
                template.format(
                    n=rng.randint(100, 999),
                    d=rng.randint(1, 28),
                    d2=rng.randint(5, 20),
                    m=rng.randint(1, 9),
                    k=rng.randint(2, 9),
                    p=rng.choice((30, 40, 50, 70, 85)),
                    topic=topic,
                    crop=rng.choice(_CROPS),
                )
            )
        paragraph = " ".join(sentences)
        spoken += len(normalize(paragraph))
        paragraphs.append(paragraph)
    ethnic = [lang for lang in ("hmn", "ium", "pcc") if rng.random() < 0.5] or ["hmn"]
    languages = ", ".join(f'"{lang}"' for lang in ["vi", *ethnic])
    return (
        "+++\n"
        f'title = "Bản tin {i + 1}: {topic}"\n'
        'category = "policy"\n'
        f'priority = "{"urgent" if i % 7 == 3 else "routine"}"\n'
        'source = "UBND tỉnh Lào Cai"\n'
        f'reference = "Kế hoạch số {100 + i}/KH-UBND"\n'
        f"valid_from = {valid_from.isoformat()}\n"
        f"valid_until = {valid_until.isoformat()}\n"
        'targets = ["all"]\n'
        f"languages = [{languages}]\n"
        "+++\n" + "\n\n".join(paragraphs) + "\n"
    )


def add_bulletins(
    project: Project, size: Size, indices: range, *, day: dt.date, expiring: int | None, work: Path
) -> list[Bulletin]:
    """Store and approve bulletins ``indices`` of the campaign starting ``day``, with recordings.

    Bulletin ``expiring`` is valid on ``day`` only; the others run for the 14 days of the campaign.
    """
    settings = project.settings
    deployment = load_deployment(settings.schedules_dir)
    db = open_database(settings.db_url)
    stored: list[Bulletin] = []
    try:
        parsed = []
        for i in indices:
            rng = random.Random(SEED * 1000 + i)
            until = day if i == expiring else day + dt.timedelta(days=13)
            text = bulletin_text(i, size, valid_from=day - dt.timedelta(days=i % 3), valid_until=until, rng=rng)
            parsed.append(parse_bulletin(text, where=f"bench bulletin {i + 1}", deployment=deployment).bulletin)
        bench = lifecycle.system("bench")
        drafts = [c.bulletin for c in lifecycle.submit_all(db, bench, parsed)]
        work.mkdir(parents=True, exist_ok=True)
        for b in drafts:
            rng = random.Random(SEED + (b.id or 0))
            for lang in b.languages:
                if lang == "vi":
                    continue
                src = work / f"b{b.id}-{lang}.m4a"
                speech = work / f"b{b.id}-{lang}.speech.wav"
                words = " ".join(b.title.split()[3:]) or b.title
                voice = settings.tts.espeak.model_copy(update={"voice": _ETHNIC_VOICES[lang], "rate": 140})
                EspeakEngine(voice).synthesize(f"{words}. {b.source}.", speech)
                mix_over_tone(speech, src, rng.uniform(*size.recording_s), settings=settings.audio)
                lifecycle.attach_recording(db, bench, prepare_recording(b, lang, src, settings=settings))
                src.unlink()
                speech.unlink()
        # approved last: the approval covers the recordings (what airs)
        stored = [lifecycle.approve(db, bench, b.id or 0).bulletin for b in drafts]
    finally:
        db.close()
    return stored


def copy_voices(repo: Path, dst: Path) -> Path:
    """The repository's voices/ (catalog, lexicon, generated placeholders) for the deployment."""
    shutil.copytree(repo / "voices", dst, dirs_exist_ok=True)
    return dst
