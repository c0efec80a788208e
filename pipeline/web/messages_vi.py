"""The web's Vietnamese for errors raised in English below it (intake, uploads, store).

The CLI shows the English messages; the web shows these. A message that is not
recognised gets a general Vietnamese sentence, never the English one.
"""

from __future__ import annotations

import re

from pipeline.errors import LoaError, NotFoundError, RecordingRefused
from pipeline.models import LANGUAGES

ACCEPTED = "WAV, MP3, M4A/AAC, OGG/Opus, FLAC, WebM, AMR hoặc 3GP"

RECORDING_VI: dict[str, str] = {
    "no_file": "chưa chọn tệp âm thanh",
    "name": "tên tệp không hợp lệ: hãy chọn một tệp âm thanh có tên bình thường",
    "name_chars": "tên tệp có ký tự lạ; hãy đổi tên tệp (chữ, số, dấu gạch) rồi tải lên lại",
    "missing": "không thấy tệp đã tải lên; hãy chọn tệp rồi tải lại",
    "empty": "tệp rỗng (0 byte); hãy tải lại bản ghi",
    "playlist": "đây là danh sách phát (playlist), không phải bản ghi; hãy tải lên chính tệp âm thanh",
    "concat": "đây là danh sách ghép tệp, không phải bản ghi; hãy tải lên chính tệp âm thanh",
    "image": "đây là tệp ảnh, không phải bản ghi âm thanh",
    "reference": "tệp có chứa đường dẫn tới tệp khác hoặc địa chỉ mạng; hãy xuất lại bản ghi từ máy ghi âm",
    "extension": f"loại tệp không đúng hoặc đuôi tệp không khớp với nội dung; chỉ nhận {ACCEPTED}",
    "not_audio": f"không phải tệp âm thanh đọc được; chỉ nhận {ACCEPTED}",
    "video": "tệp có hình ảnh động (video); hãy tải lên phần âm thanh thôi",
    "no_audio": "tệp không có âm thanh",
    "codec": f"kiểu mã hóa âm thanh không được nhận; hãy xuất lại dạng {ACCEPTED}",
    "too_long": "bản ghi dài {minutes} phút, quá giới hạn {limit} phút; hãy cắt ngắn hoặc chia bản tin",
    "no_duration": "tệp không có âm thanh nào (dài 0 giây)",
    "damaged": "âm thanh bị hỏng, không đọc hết được; hãy xuất hoặc ghi lại",
    "truncated": "tệp bị cắt cụt (tải lên chưa hết); hãy tải lại",
    "language": "ngôn ngữ này không cần hoặc không nhận bản ghi cho bản tin này",
}

#: Fragments of intake's English messages → Vietnamese (first match wins).
INTAKE_VI: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), vi)
    for p, vi in (
        (r"is before valid_from", "ngày kết thúc phải sau hoặc bằng ngày bắt đầu"),
        (r"is not \"all\", a group id or a commune code", "nơi nhận không có trong danh sách xã, trung tâm"),
        (r"must be a list such as \[\"all\"\]", "hãy chọn ít nhất một nơi nhận"),
        (r"must be a list such as \[\"vi\"", "hãy chọn ít nhất một ngôn ngữ"),
        (r"unknown language", "ngôn ngữ không hợp lệ"),
        (r"unknown category", "loại tin không hợp lệ; hãy chọn trong danh sách"),
        (r"unknown priority", "mức ưu tiên không hợp lệ; hãy chọn trong danh sách"),
        (r"must be a date", "hãy chọn ngày dạng 2026-12-01"),
        (r"must be a non-empty text", "chưa điền; hãy nhập nội dung"),
        (r"must be a text", "phải là chữ"),
        (r"the body is empty", "nội dung trống; hãy viết nội dung bản tin"),
        (r"the body has \d+ characters, more than", "nội dung quá dài; hãy chia thành nhiều bản tin"),
        (r"title and source are the same", "đã có bản tin cùng tiêu đề và nguồn"),
        (r"unknown field", "có mục không hợp lệ"),
        (r"missing; add", "còn thiếu; hãy điền vào"),
        (r"control character|NFC|character", "có ký tự không hợp lệ; hãy gõ lại"),
        (r"TOML|front matter|\+\+\+", "có dòng không đọc được (ví dụ dấu ngoặc kép); hãy kiểm tra lại"),
        (r"not in the deployment|no such", "không có trong danh sách"),
    )
)
GENERAL_VI = "thông tin chưa đúng; hãy kiểm tra lại"


def recording_refused_vi(exc: RecordingRefused) -> str:
    template = RECORDING_VI.get(exc.reason, GENERAL_VI)
    try:
        text = template.format(**exc.params)
    except (KeyError, IndexError):
        text = template
    if exc.reason == "language":
        lang = str(exc.params.get("language", ""))
        text = f"{LANGUAGES.get(lang, lang)}: {text}"
    return text


def intake_vi(message: str) -> str:
    """Vietnamese for one of intake's English messages about a field."""
    for pattern, vi in INTAKE_VI:
        if pattern.search(message):
            return vi
    return GENERAL_VI


def error_vi(exc: LoaError) -> str:
    """Vietnamese for any Loa error that reaches a page or the API."""
    if isinstance(exc, RecordingRefused):
        return recording_refused_vi(exc)
    if isinstance(exc, NotFoundError):
        return "Không tìm thấy mục này."
    return "Không làm được việc này: " + intake_vi(str(exc)) + "."


_MISSING_RE = re.compile(r"^bulletin (?P<id>\d+) \((?P<title>.*)\): no (?P<lang>\w+) recording$", re.S)


def missing_vi(message: str) -> str:
    """Compose's "bulletin 3 (title): no hmn recording" in Vietnamese."""
    m = _MISSING_RE.match(message)
    if m is None:
        return "một phần của chương trình chưa có"
    lang = m["lang"]
    return f"bản tin #{m['id']} ({m['title']}): chưa có bản ghi {LANGUAGES.get(lang, lang)}"


#: Fragments of a transport's English error → Vietnamese (first match wins).
DELIVERY_VI: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), vi)
    for p, vi in (
        (r"refused", "máy ở xã từ chối kết nối"),
        (r"timed? ?out|timeout", "quá thời gian chờ máy ở xã trả lời"),
        (r"auth|password|key|permission denied", "máy ở xã không chấp nhận khóa đăng nhập hoặc quyền ghi"),
        (r"not a directory|no such file|does not exist", "thư mục nhận ở xã không đúng"),
        (r"no space|disk full|quota", "máy ở xã hết chỗ trống"),
        (r"reset|closed|broken pipe|lost", "mất kết nối giữa chừng"),
        (r"resolve|name or service|unreachable|no route", "không tìm thấy hoặc không đến được máy ở xã"),
        (r"missing|no program|not built", "chưa có chương trình để gửi"),
    )
)


def delivery_error_vi(message: str | None) -> str:
    """A delivery error in Vietnamese (the technical text goes in a tooltip, not the page)."""
    for pattern, vi in DELIVERY_VI:
        if pattern.search(message or ""):
            return f"Lỗi: {vi}."
    return "Lỗi khi gửi; xem chi tiết kỹ thuật hoặc báo cho quản trị viên."
