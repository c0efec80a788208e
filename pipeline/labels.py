"""The one table of what people read for a state: bulletins, deliveries, decisions, tiers, webhooks.

Every page, the agency API, the CLI and the domain's messages take their words from here.
Labels are capitalised as a page shows them alone; ``lower`` gives the form used inside a
sentence ("bản tin #3 đang ở trạng thái đã duyệt"). Nothing here imports anything of Loa.
"""

from __future__ import annotations

from collections.abc import Mapping

#: A bulletin's status (``Bulletin.status``).
BULLETIN: dict[str, str] = {
    "draft": "Nháp",
    "approved": "Đã duyệt",
    "withdrawn": "Đã thu hồi",
    "superseded": "Đã được thay thế",  # by a newer version (a CAP Update)
    "cancelled": "Đã hủy",  # by its issuer (a CAP Cancel)
    "expired": "Đã hết hạn",  # its validity ended
}

#: Where an agency's bulletin stands, as the agency API reports it (``status`` there).
AGENCY_VIEW: dict[str, str] = {
    "awaiting": "Đang chờ trung tâm duyệt",
    "approved": "Đã duyệt, chờ phát",
    "on_air": "Đang phát",
    "withdrawn": BULLETIN["withdrawn"],
    "superseded": BULLETIN["superseded"],
    "cancelled": BULLETIN["cancelled"],
    "expired": BULLETIN["expired"],
}

#: A delivery to an endpoint (``Delivery.status``).
DELIVERY: dict[str, str] = {"delivered": "Đã nhận", "failed": "Lỗi", "pending": "Đang chờ"}

#: A webhook event's delivery to a subscriber.
WEBHOOK: dict[str, str] = {"pending": "Đang chờ gửi lại", "delivered": "Đã nhận", "failed": "Thất bại"}

#: A commune's decision on a normal bulletin (``Decision.decision``).
DECISION: dict[str, str] = {"accepted": "Nhận phát", "deferred": "Hoãn", "declined": "Từ chối"}

#: A bulletin's category (``Bulletin.category``), the topic of the statistics.
CATEGORY: dict[str, str] = {
    "policy": "Chính sách",
    "notice": "Thông báo",
    "emergency": "Khẩn cấp",
    "storm": "Bão",
    "flood": "Lũ, lụt",
}

#: Tiers as Circular 39/2020 names them.
TIER: dict[str, str] = {"emergency": "Khẩn cấp", "priority": "Ưu tiên", "normal": "Thông thường"}


def label(table: Mapping[str, str], key: str) -> str:
    """``key``'s label in ``table``; the key itself when the table does not know it."""
    return table.get(key, key)


def lower(table: Mapping[str, str], key: str) -> str:
    """The label as it reads inside a sentence (the CLI's tables, messages)."""
    return label(table, key).lower()
