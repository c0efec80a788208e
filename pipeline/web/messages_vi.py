"""The web's Vietnamese for texts stored in English: a delivery's error, a compose gap.

These are records kept as text (a delivery row's ``error``, a run's failures), not errors
raised now: an error raised now is shown by ``pipeline.messages.vietnamese`` from its code.
A text that is not recognised gets a general Vietnamese sentence, never the English one.
"""

from __future__ import annotations

import re

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
