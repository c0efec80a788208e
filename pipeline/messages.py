"""The one table of what Loa says to people, keyed by error code.

An error's English text is its own message (the CLI prints it); what the web pages, the
agency API and the public API show comes from ``VI`` here, filled from the error's
``fields``. A code missing from the table gets its class's general sentence, never the
English text. Nothing here matches message text: a code is the contract.
"""

from __future__ import annotations

from loa_protocol.errors import ProtocolError

from pipeline.errors import LoaError

#: code → Vietnamese message template (``str.format`` with the error's fields).
VI: dict[str, str] = {
    "error": "Đã có lỗi; thao tác chưa hoàn tất. Hãy thử lại hoặc báo quản trị viên.",
    "usage": "Dữ liệu chưa hợp lệ; chưa có gì thay đổi.",
    "config": "Cấu hình chưa hợp lệ; hãy báo quản trị viên.",
    "bulletin": "Bản tin chưa hợp lệ; chưa có gì thay đổi.",
    "cap": "Cảnh báo CAP chưa hợp lệ; chưa có gì thay đổi.",
    "script": "Kịch bản chương trình chưa hợp lệ.",
    "not_found": "Không tìm thấy.",
    "token.not_found": "Không tìm thấy mã truy cập này.",
    "report.refused": "Không nhận được báo cáo này; hãy bấm nút trên trang chương trình.",
    "report.kind": "Loại báo cáo không hợp lệ; hãy bấm nút «Đã phát» hoặc «Báo sự cố» trên trang chương trình.",
    "report.other_commune": "Chương trình {program} không phải của xã này; chỉ báo cáo chương trình của xã mình.",
    "report.no_slot": "Xã không có buổi phát «{slot}» vào ngày {date}; không có chương trình này để báo cáo.",
    "report.no_program": "Chưa có chương trình này; chỉ báo cáo được chương trình đã có trên trang của xã.",
    "report.not_started": (
        "Chương trình {program} chưa đến giờ phát ({start}); chỉ báo «Đã phát» hoặc báo sự cố "
        "sau khi buổi phát đã bắt đầu."
    ),
    "render": "Không tạo được âm thanh.",
    "render.transient": "Dịch vụ giọng nói tạm thời không trả lời; hệ thống sẽ thử lại.",
    "store": "Cơ sở dữ liệu tạm thời không đọc, ghi được; hãy thử lại sau.",
    "delivery": "Không gửi được tới thiết bị.",
    "delivery.transient": "Tạm thời không gửi được tới thiết bị; hệ thống sẽ thử lại.",
    "outbound.refused": "Địa chỉ {host} là địa chỉ nội bộ hoặc không công khai; hệ thống không gửi yêu cầu tới đó.",
    "partial": "Một phần công việc chưa xong; xem danh sách xã, thiết bị bị lỗi.",
    # a bulletin's life (pipeline/lifecycle)
    "lifecycle.not_allowed": "Không thể {action_vi} khi bản tin {state_vi} (vai trò: {role_vi}); chưa có gì thay đổi.",
    "lifecycle.alert_cancelled": "Cảnh báo này đã bị cơ quan phát hành hủy; không thể duyệt hay thay đổi lại.",
    "lifecycle.not_found": "Không tìm thấy bản tin này.",
    "lifecycle.out_of_scope": "Nơi nhận «{target}» nằm ngoài phạm vi được giao; chưa có gì được lưu.",
    "lifecycle.title_taken": "Đã có bản tin #{bulletin} cùng tiêu đề và nguồn; hãy sửa bản tin đó hoặc đổi tiêu đề.",
    "lifecycle.key_reused": "Idempotency-Key này đã dùng cho một bản tin khác; hãy dùng khóa mới.",
    "lifecycle.renamed": "Bản sửa phải giữ nguyên tiêu đề và nguồn của bản tin.",
    "lifecycle.no_recording": "Bản tin chưa có bản ghi tiếng {language} để gỡ.",
    # the protocol (loa_protocol): manifests, receipts, the pull API
    "protocol": "Dữ liệu gửi lên hoặc nhận về không đúng giao thức của Loa.",
    "manifest": "Tệp kê khai chương trình (manifest) không đọc được hoặc không khớp với các tệp.",
    "manifest.unsigned": "Chương trình {folder} không có chữ ký; không nhận.",
    "manifest.bad_signature": "Chữ ký của chương trình {folder} không đúng (có thể đã bị sửa); không nhận.",
    "manifest.other_endpoint": "Chương trình {folder} là của thiết bị khác; không nhận.",
    "manifest.expired": "Chương trình {folder} đã hết hạn; không nhận.",
    "receipt": "Biên nhận sai định dạng.",
    "receipt.forged": "Biên nhận không hợp lệ (sai chữ ký hoặc không phải của điểm nhận này).",
    "receipt.replayed": "Biên nhận này đã được nhận trước đó; không nhận lại.",
    "server": "Máy chủ trả lời không như mong đợi.",
    "server.link": "Không kết nối được tới máy chủ; sẽ thử lại sau.",
    "server.token_refused": "Mã truy cập bị từ chối; hãy xin mã mới.",
    "enroll": "Mã đăng ký thiết bị không dùng được.",
    "enroll.wrong": "Mã đăng ký không đúng; hãy kiểm tra lại từng chữ, hoặc xin mã mới trên trang Thiết bị.",
    "enroll.used": "Mã đăng ký này đã được dùng; mỗi mã chỉ dùng một lần. Hãy xin mã mới trên trang Thiết bị.",
    "enroll.expired": "Mã đăng ký đã hết hạn; hãy xin mã mới trên trang Thiết bị.",
    "enroll.no_endpoint": "Điểm nhận của mã này không còn trong danh sách; hãy báo quản trị viên.",
    "signature.key": "Khóa công khai không đọc được hoặc không phải khóa Ed25519.",
}


def vietnamese(err: LoaError | ProtocolError) -> str:
    """The Vietnamese sentence for ``err``: its code's template, else its class's, filled from its fields."""
    for cls in type(err).__mro__:
        code = err.code if cls is type(err) else getattr(cls, "code", None)
        template = VI.get(code) if isinstance(code, str) else None
        if template is not None:
            try:
                return template.format(**err.fields)
            except (KeyError, IndexError, ValueError):
                continue
    return VI["error"]


def vietnamese_protocol(err: ProtocolError) -> str:
    """The Vietnamese sentence for an error of the protocol package (same table, by code)."""
    return vietnamese(err)
