"""The one table of what Loa says to people, keyed by error code.

An error's English text is its own message (the CLI prints it); what the web pages, the
agency API and the public API show comes from ``VI`` here, filled from the error's
``fields``. A code missing from the table gets its class's general sentence, never the
English text. Nothing here matches message text: a code is the contract.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from loa_protocol.errors import ProtocolError

from pipeline.errors import LoaError
from pipeline.models import LANGUAGES, Gap

ACCEPTED_AUDIO = "WAV, MP3, M4A/AAC, OGG/Opus, FLAC, WebM, AMR hoặc 3GP"

#: A field an error names (``fields["field"]``) → its name on the form, for ``{field_vi}``.
FIELD_VI: dict[str, str] = {
    "title": "Tiêu đề",
    "category": "Loại tin",
    "priority": "Mức ưu tiên",
    "source": "Nguồn (cơ quan ban hành)",
    "reference": "Số, ký hiệu văn bản",
    "valid_from": "Ngày bắt đầu",
    "valid_until": "Ngày kết thúc",
    "targets": "Nơi nhận",
    "languages": "Ngôn ngữ",
    "body": "Nội dung",
    "replay_every_minutes": "Chu kỳ phát lại",
    "public": "Công khai",
    "policy": "Chính sách",
    "stage": "Giai đoạn chính sách",
    "consultation": "Lấy ý kiến",
    "consultation.code": "Mã lấy ý kiến",
    "consultation.opens": "Ngày mở lấy ý kiến",
    "consultation.closes": "Ngày đóng lấy ý kiến",
    "consultation.agency": "Cơ quan soạn thảo",
    "consultation.question": "Câu hỏi lấy ý kiến",
    "consultation.answer": "Phản hồi của cơ quan soạn thảo",
    "front_matter": "Phần đầu (giữa hai dòng +++)",
    "recording": "Bản ghi",
    "language": "Ngôn ngữ",
    "info/headline": "Tiêu đề cảnh báo (headline)",
    "info/description": "Mô tả cảnh báo (description)",
    "info/instruction": "Hướng dẫn (instruction)",
    "info/senderName": "Cơ quan phát cảnh báo (senderName)",
    "identifier": "Mã cảnh báo (identifier)",
}
_QUESTION_RE = re.compile(r"^consultation\.question\[(\d+)\](?:\.(text|kind|choices))?$")
_QUESTION_PART_VI = {"text": "nội dung", "kind": "loại câu hỏi", "choices": "các lựa chọn"}

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
    "store.newer_schema": "Cơ sở dữ liệu đã được một phiên bản Loa mới hơn nâng cấp (bản nâng cấp {unknown}); "
    "hãy cài lại phiên bản đó hoặc khôi phục bản sao lưu trước khi nâng cấp.",
    "delivery": "Không gửi được tới thiết bị.",
    "delivery.transient": "Tạm thời không gửi được tới thiết bị; hệ thống sẽ thử lại.",
    # a push delivery (pipeline/transports, pipeline/deliver.py); kept with the delivery record
    "delivery.host_key_missing": (
        "Chưa ghi khóa nhận dạng (host key) của thiết bị {endpoint} trong cấu hình; chưa thể tin thiết bị "
        "này. Hãy báo quản trị viên."
    ),
    "delivery.host_key_invalid": (
        "Khóa nhận dạng (host key) của thiết bị {endpoint} trong cấu hình sai dạng; hãy báo quản trị viên."
    ),
    "delivery.host_key_mismatch": (
        "Thiết bị {endpoint} ({host}) trình ra khóa nhận dạng khác với khóa đã ghi; hệ thống từ chối kết nối. "
        "Nếu thiết bị vừa được cài lại, hãy đối chiếu khóa mới với xã; nếu không, có thể có người chặn đường truyền."
    ),
    "delivery.ssh_incompatible": (
        "Máy chủ SSH của thiết bị {endpoint} không kết nối được theo cách hệ thống yêu cầu; hãy báo quản trị viên."
    ),
    "delivery.auth_refused": (
        "Thiết bị {endpoint} không chấp nhận khóa đăng nhập của người dùng {user}; hãy thêm khóa công khai "
        "của máy chủ vào thiết bị."
    ),
    "delivery.key_file": "Không dùng được tệp khóa đăng nhập để gửi tới {endpoint}; hãy báo quản trị viên.",
    "delivery.endpoint_config": "Cấu hình của điểm nhận {endpoint} chưa đủ hoặc sai; hãy báo quản trị viên.",
    "delivery.no_remote_dir": "Thư mục nhận ở điểm nhận {endpoint} không có hoặc không phải thư mục.",
    "delivery.permission": "Không có quyền ghi vào thư mục nhận ở điểm nhận {endpoint}.",
    "delivery.no_space": "Điểm nhận {endpoint} hết chỗ trống; hãy xóa bớt chương trình, tệp cũ rồi gửi lại.",
    "delivery.server_refused": "Điểm nhận {endpoint} từ chối ghi hoặc đọc tệp.",
    "delivery.path_refused": "Đường dẫn tệp ở điểm nhận {endpoint} bị từ chối vì dẫn ra ngoài thư mục nhận.",
    "delivery.too_large": "Tệp ở điểm nhận {endpoint} quá lớn để đọc.",
    "delivery.outbox": "Chưa có chương trình đầy đủ để gửi tới {endpoint}; hãy tạo lại chương trình.",
    "delivery.timeout": "Quá thời gian chờ điểm nhận {endpoint} trả lời.",
    "delivery.connection_refused": "Điểm nhận {endpoint} từ chối kết nối (máy tắt hoặc dịch vụ SSH chưa chạy).",
    "delivery.link_lost": "Mất kết nối tới điểm nhận {endpoint} giữa chừng.",
    "delivery.incomplete": "Tệp gửi tới điểm nhận {endpoint} chưa đến đủ.",
    "delivery.io": "Không ghi, đọc được tệp ở điểm nhận {endpoint}.",
    "outbound.refused": "Địa chỉ {host} là địa chỉ nội bộ hoặc không công khai; hệ thống không gửi yêu cầu tới đó.",
    "agency.not_found": "Không tìm thấy cơ quan này; xem danh sách cơ quan gửi tin.",
    "outbound.unix": "Hệ thống chỉ gửi yêu cầu ra ngoài tới địa chỉ mạng (TCP), không tới tệp socket trên máy.",
    "pull.token_refused": "Máy chủ từ chối mã truy cập của thiết bị; hãy xin mã mới trên trang Thiết bị.",
    "partial": "Một phần công việc chưa xong; xem danh sách xã, thiết bị bị lỗi.",
    # a bulletin's life (pipeline/lifecycle)
    "lifecycle.not_allowed": "Không thể {action_vi} khi bản tin {state_vi} (vai trò: {role_vi}); chưa có gì thay đổi.",
    "lifecycle.alert_cancelled": "Cảnh báo này đã bị cơ quan phát hành hủy; không thể duyệt hay thay đổi lại.",
    "lifecycle.not_found": "Không tìm thấy bản tin này.",
    "lifecycle.language_not_yours": "Bạn không được giao đọc tiếng «{language}» cho bản tin này; chưa có gì được lưu.",
    "user.reader_languages": "Người đọc phải đọc ít nhất một thứ tiếng.",
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
    "enroll.too_many": "Đã nhập sai mã đăng ký quá nhiều lần; xin chờ {minutes} phút rồi thử lại.",
    "enroll.no_endpoint": "Điểm nhận của mã này không còn trong danh sách; hãy báo quản trị viên.",
    "signature.key": "Khóa công khai không đọc được hoặc không phải khóa Ed25519.",
    # --- operations (pipeline/ops/, loa ready, loa alerts, loa backup)
    "ops.unready": "Hệ thống chưa sẵn sàng; xem các mục kiểm tra bị lỗi.",
    "ops.alert_send": "Không gửi được cảnh báo tới mọi địa chỉ đã cấu hình; xem nhật ký để biết chi tiết.",
    "backup": "Bản sao lưu không dùng được; chưa có gì thay đổi.",
    "phrase.unknown": "Không có câu mẫu này trong danh mục (voices/catalog.toml).",
    "phrase.not_allowed": "Bạn không có quyền thu hoặc duyệt câu mẫu này.",
    "phrase.nothing_awaiting": "Câu mẫu này không có bản thu nào đang chờ duyệt.",
    "reminder.email": "Địa chỉ e-mail không hợp lệ.",
    "reminder.smtp": "Không gửi được e-mail nhắc việc qua máy chủ SMTP; sẽ thử lại ở lần kiểm tra sau.",
    "backup.target_not_empty": "Thư mục đích không trống; hãy chọn một thư mục mới cho bản sao lưu.",
    "backup.partial": "Bản sao lưu bị thiếu tệp (chưa sao lưu xong hoặc không phải bản sao lưu của Loa).",
    "backup.damaged": "Bản sao lưu bị hỏng hoặc đã bị sửa; không dùng được.",
    "backup.newer": "Bản sao lưu do phiên bản Loa mới hơn tạo ra; hãy khôi phục bằng phiên bản đó.",
    "backup.database_kind": "Bản sao lưu là của loại cơ sở dữ liệu khác với loại trong cấu hình.",
    "backup.restore_not_empty": (
        "Nơi khôi phục đã có dữ liệu; hãy khôi phục vào thư mục dữ liệu và cơ sở dữ liệu trống."
    ),
    "backup.restore_failed": (
        "Khôi phục bị dừng giữa chừng; hãy làm trống thư mục dữ liệu (và cơ sở dữ liệu) rồi chạy lại."
    ),
    # --- a bulletin: the file, the form, the agency API, CAP, the follow-up (pipeline/intake.py)
    "bulletin.front_matter.missing": (
        "Bản tin phải bắt đầu bằng dòng +++, rồi các trường (TOML), rồi dòng +++, rồi nội dung."
    ),
    "bulletin.front_matter.unclosed": "Phần đầu mở bằng +++ ở dòng 1 nhưng chưa có dòng +++ đóng lại.",
    "bulletin.toml": "Phần đầu có dòng không đọc được (ví dụ thiếu dấu ngoặc kép); hãy kiểm tra lại.",
    "bulletin.field.unknown": "Mục «{field_vi}» không có trong mẫu bản tin.",
    "bulletin.field.missing": "Còn thiếu mục «{field_vi}»; hãy điền vào.",
    "bulletin.field.empty": "Mục «{field_vi}» chưa điền; hãy nhập nội dung.",
    "bulletin.field.not_text": "Mục «{field_vi}» phải là chữ.",
    "bulletin.field.not_date": "Mục «{field_vi}» phải là một ngày, dạng 2026-12-01.",
    "bulletin.field.not_bool": "Mục «{field_vi}» phải là true hoặc false (không có ngoặc kép).",
    "bulletin.field.control_char": (
        "Mục «{field_vi}» có ký tự điều khiển ẩn ({char}) ở vị trí {position}; hãy xóa ký tự đó hoặc gõ lại."
    ),
    "bulletin.field.bidi": (
        "Mục «{field_vi}» có ký tự đảo chiều văn bản ({char}) ở vị trí {position}, làm chữ hiện khác với "
        "nội dung thật; hãy xóa ký tự đó hoặc gõ lại."
    ),
    "bulletin.field.invisible": (
        "Mục «{field_vi}» có ký tự vô hình ({char}) ở vị trí {position}; hãy xóa ký tự đó hoặc gõ lại."
    ),
    "bulletin.field.not_nfc": (
        "Mục «{field_vi}» chưa được chuẩn hóa Unicode (NFC); hãy gửi lại qua biểu mẫu hoặc tệp bản tin."
    ),
    "bulletin.field.newline": "Mục «{field_vi}» chỉ được viết trên một dòng; hãy bỏ dấu xuống dòng.",
    "bulletin.field.too_long": ("Mục «{field_vi}» dài {length} ký tự, quá giới hạn {limit} ký tự; hãy viết ngắn lại."),
    "bulletin.category.unknown": "Loại tin «{value}» không hợp lệ; hãy chọn trong danh sách ({allowed}).",
    "bulletin.priority.unknown": "Mức ưu tiên «{value}» không hợp lệ; hãy chọn trong danh sách ({allowed}).",
    "bulletin.replay.range": "Chu kỳ phát lại phải là số phút nguyên, từ {low} đến {high}.",
    "bulletin.replay.not_emergency": "Chỉ bản tin khẩn cấp mới được phát lại theo chu kỳ.",
    "bulletin.dates.order": "Ngày kết thúc ({value}) đứng trước ngày bắt đầu ({valid_from}).",
    "bulletin.targets.not_list": "Hãy chọn ít nhất một nơi nhận (toàn tỉnh, một trung tâm hoặc một xã).",
    "bulletin.targets.unknown": "Nơi nhận «{value}» không có trong danh sách trung tâm, xã.",
    "bulletin.languages.not_list": "Hãy chọn ít nhất một ngôn ngữ.",
    "bulletin.languages.unknown": "Ngôn ngữ «{value}» không hợp lệ; dùng {allowed}.",
    "bulletin.body.empty": "Nội dung trống; hãy viết nội dung bản tin.",
    "bulletin.file.too_large": "Tệp bản tin quá lớn ({size} byte, giới hạn {limit} byte).",
    "bulletin.file.not_utf8": "Tệp bản tin không phải chữ UTF-8; hãy lưu lại tệp dạng UTF-8.",
    "bulletin.file.unreadable": "Không đọc được tệp bản tin.",
    "bulletin.file.not_json": "Nội dung gửi lên không phải JSON hợp lệ.",
    "bulletin.json.not_object": "Hãy gửi một đối tượng JSON gồm các trường của bản tin và nội dung (body).",
    "bulletin.json.value": "Mục «{field_vi}» phải là chữ, ngày, danh sách hoặc true/false.",
    "bulletin.duplicate": "Đã có bản tin cùng tiêu đề và nguồn.",
    "policy.stage.unknown": "Giai đoạn chính sách «{value}» không hợp lệ; dùng {allowed}.",
    "policy.stage.no_policy": "Giai đoạn chỉ dùng khi bản tin thuộc một chính sách; hãy điền tên chính sách.",
    "consultation.not_table": "Phần lấy ý kiến phải là một bảng [consultation] với các mục của nó.",
    "consultation.not_draft": "Chỉ lấy ý kiến trên dự thảo; giai đoạn phải là draft.",
    "consultation.code.format": "Mã lấy ý kiến phải gồm 1–4 chữ in hoa rồi 1–4 chữ số, ví dụ GY27.",
    "consultation.dates.order": "Ngày đóng lấy ý kiến ({value}) đứng trước ngày mở ({opens}).",
    "consultation.question.none": "Cần ít nhất một câu hỏi lấy ý kiến.",
    "consultation.question.too_many": "Có {count} câu hỏi; nhiều nhất {limit} câu.",
    "consultation.question.not_table": "Mỗi câu hỏi phải là một bảng [[consultation.question]].",
    "consultation.question.kind": "Loại câu hỏi «{value}» không hợp lệ; dùng {allowed}.",
    "consultation.choices.count": "Câu hỏi lựa chọn cần từ 2 đến {limit} lựa chọn.",
    "consultation.choices.twice": "Có một lựa chọn bị lặp lại.",
    "consultation.choices.not_choice": "Chỉ câu hỏi loại lựa chọn (choice) mới có các lựa chọn.",
    "consultation.merge.self": "Không thể gộp một ý kiến vào chính nó.",
    "consultation.merge.chain": "Ý kiến #{answer} đã được gộp vào ý kiến #{into}; hãy gộp vào ý kiến đó.",
    "consultation.values.count": "Có {count} câu trả lời cho {questions} câu hỏi của đợt lấy ý kiến {consultation}.",
    "consultation.values.yesno": "Câu {question}: hãy trả lời có (yes) hoặc không (no), không phải «{value}».",
    "consultation.values.choice": "Câu {question}: «{value}» không có trong các lựa chọn.",
    "consultation.phone": "Số điện thoại chưa đúng: 10 hoặc 11 chữ số, bắt đầu bằng số 0.",
    "consultation.answer.empty": "Hãy viết nội dung phản hồi của cơ quan soạn thảo.",
    # --- what a composed script lacks (pipeline.models.Gap) and why compose refused
    "compose.gap.recording": "bản tin #{bulletin} ({title}): chưa có bản ghi {language_vi}",
    "script.missing_recordings": (
        "Chương trình {name} còn thiếu {count} bản ghi và cấu hình không cho phát khi thiếu "
        '(on_missing_recording = "fail").'
    ),
    "script.missing_clips": "Chương trình {name} còn thiếu {count} đoạn âm thanh mẫu; hãy báo quản trị viên.",
    # --- a commune's decision on a normal bulletin (pipeline/broadcast/decisions.py)
    "decision.not_normal": (
        "bản tin #{bulletin}: chỉ bản tin thông thường mới do xã quyết định; bản tin ưu tiên và khẩn cấp phải phát"
    ),
    "decision.not_targeted": "bản tin #{bulletin}: bản tin này không gửi cho xã {commune_name}",
    "decision.not_approved": "bản tin #{bulletin}: bản tin chưa được duyệt hoặc đã thôi phát; chưa thể quyết định",
    "decision.expired": "bản tin #{bulletin}: bản tin đã hết hiệu lực ngày {valid_until}",
    "decision.unknown": "bản tin #{bulletin}: quyết định '{value}' không hợp lệ; chọn nhận, hoãn hoặc từ chối",
    "decision.reason.too_long": "bản tin #{bulletin}: lý do dài quá {limit} ký tự; hãy viết ngắn lại",
    "decision.reason.missing": "bản tin #{bulletin}: hãy ghi lý do từ chối",
    "decision.until.missing": "bản tin #{bulletin}: hãy chọn ngày phát (hoãn đến ngày nào)",
    "decision.until.past": "bản tin #{bulletin}: ngày hoãn đến phải sau hôm nay ({today})",
    "decision.until.after_validity": (
        "bản tin #{bulletin}: bản tin chỉ có hiệu lực đến {valid_until}; hãy chọn ngày sớm hơn hoặc từ chối bản tin"
    ),
    # --- a CAP 1.2 alert (pipeline/broadcast/cap.py, cap_import.py); its text follows the bulletin rules
    "cap.xml.invalid": "Cảnh báo CAP không phải tệp XML đọc được.",
    "cap.xml.entities": "Cảnh báo CAP khai báo DTD hoặc thực thể XML; hệ thống không nhận loại tệp này.",
    "cap.xml.not_alert": "Tệp không phải cảnh báo CAP (phần tử gốc không phải <alert>).",
    "cap.xml.namespace": "Cảnh báo không theo chuẩn CAP 1.2 mà hệ thống đọc.",
    "cap.element.missing": "Cảnh báo CAP thiếu phần tử <{field}>.",
    "cap.element.time": (
        "Phần tử <{field}> của cảnh báo CAP không phải thời gian hợp lệ (ví dụ 2026-12-01T08:00:00+07:00)."
    ),
    "cap.element.chars": (
        "Phần tử <{field}> của cảnh báo CAP có dấu cách, dấu phẩy, < hoặc &, chuẩn CAP 1.2 không cho phép."
    ),
    "cap.references.format": "Một mục trong <alert/references> không có dạng người gửi,mã cảnh báo,thời gian.",
    "cap.not_actual": "Cảnh báo ở trạng thái «{value}»; chỉ cảnh báo thật (Actual) mới được phát.",
    "cap.not_public": "Cảnh báo có phạm vi «{value}»; chỉ cảnh báo công khai (Public) mới được phát.",
    "cap.msg_type": "Loại tin CAP «{value}» không được nhận; hệ thống nhận {allowed}.",
    "cap.no_vietnamese": "Cảnh báo CAP không có phần tiếng Việt (vi-VN); hệ thống chỉ phát tiếng Việt.",
    "cap.expired": "Cảnh báo CAP đã hết hạn.",
    "cap.area.unmapped": "Vùng cảnh báo «{value}» không ứng với xã nào; hãy thêm dòng [[cap_area]] trong cấu hình.",
    "cap.export.not_emergency": "Chỉ bản tin khẩn cấp mới được xuất thành cảnh báo CAP.",
    "cap.too_large": "Cảnh báo CAP quá lớn (giới hạn {limit} byte).",
    # --- a recording (pipeline/audio.py, pipeline/intake.py, the upload routes): "recording.<reason>"
    "recording.no_file": "Chưa chọn tệp âm thanh.",
    "recording.name": "Tên tệp không hợp lệ: hãy chọn một tệp âm thanh có tên bình thường.",
    "recording.name_chars": "Tên tệp có ký tự lạ; hãy đổi tên tệp (chữ, số, dấu gạch) rồi tải lên lại.",
    "recording.missing": "Không thấy tệp đã tải lên; hãy chọn tệp rồi tải lại.",
    "recording.empty": "Tệp rỗng (0 byte); hãy tải lại bản ghi.",
    "recording.playlist": "Đây là danh sách phát (playlist), không phải bản ghi; hãy tải lên chính tệp âm thanh.",
    "recording.concat": "Đây là danh sách ghép tệp, không phải bản ghi; hãy tải lên chính tệp âm thanh.",
    "recording.image": "Đây là tệp ảnh, không phải bản ghi âm thanh.",
    "recording.reference": (
        "Tệp có chứa đường dẫn tới tệp khác hoặc địa chỉ mạng; hãy xuất lại bản ghi từ máy ghi âm."
    ),
    "recording.extension": (f"Loại tệp không đúng hoặc đuôi tệp không khớp với nội dung; chỉ nhận {ACCEPTED_AUDIO}."),
    "recording.not_audio": f"Không phải tệp âm thanh đọc được; chỉ nhận {ACCEPTED_AUDIO}.",
    "recording.video": "Tệp có hình ảnh động (video); hãy tải lên phần âm thanh thôi.",
    "recording.no_audio": "Tệp không có âm thanh.",
    "recording.codec": f"Kiểu mã hóa âm thanh không được nhận; hãy xuất lại dạng {ACCEPTED_AUDIO}.",
    "recording.too_long": "Bản ghi dài {minutes} phút, quá giới hạn {limit} phút; hãy cắt ngắn hoặc chia bản tin.",
    "recording.no_duration": "Tệp không có âm thanh nào (dài 0 giây).",
    "recording.damaged": "Âm thanh bị hỏng, không đọc hết được; hãy xuất hoặc ghi lại.",
    "recording.truncated": "Tệp bị cắt cụt (tải lên chưa hết); hãy tải lại.",
    "recording.language": "{language_vi}: ngôn ngữ này không cần hoặc không nhận bản ghi cho bản tin này.",
}


def field_vi(field: object) -> str:
    """A field's Vietnamese name: ``title`` → Tiêu đề, ``consultation.question[2].text`` → Câu hỏi 2 (nội dung)."""
    name = str(field)
    if name in FIELD_VI:
        return FIELD_VI[name]
    if m := _QUESTION_RE.match(name):
        part = f" ({_QUESTION_PART_VI[m.group(2)]})" if m.group(2) else ""
        return f"Câu hỏi {m.group(1)}{part}"
    return name


def vietnamese(err: LoaError | ProtocolError) -> str:
    """The Vietnamese sentence for ``err``: its code's template, else its class's, filled from its fields.

    Besides the error's own fields a template may use ``{field_vi}`` (the field's Vietnamese
    name) and ``{language_vi}`` (the language's).
    """
    classes = [getattr(cls, "code", None) for cls in type(err).__mro__]  # its own, then its classes'
    return render(err.code, err.fields, *(c for c in classes if isinstance(c, str)))


def render(code: str | None, fields: Mapping[str, object], *fallbacks: str) -> str:
    """The Vietnamese sentence of a code and its fields (an error raised now, or one kept in a record).

    The first of ``code`` and ``fallbacks`` whose template fills from ``fields`` wins; else the
    general ``VI["error"]``.
    """
    given = dict(fields)
    if "field" in given:
        given.setdefault("field_vi", field_vi(given["field"]))
    if "language" in given:
        lang = str(given["language"])
        given.setdefault("language_vi", LANGUAGES.get(lang, lang))
    for each in (code, *fallbacks):
        template = VI.get(each) if each else None
        if template is not None:
            try:
                return template.format(**given)
            except (KeyError, IndexError, ValueError):
                continue
    return VI["error"]


#: A delivery recorded before errors had codes: its English text is not translated.
DELIVERY_UNCODED = "Lỗi khi gửi; xem chi tiết kỹ thuật hoặc báo cho quản trị viên."


def delivery_error_vi(code: str | None, fields: Mapping[str, object] | None = None) -> str:
    """A recorded delivery failure in Vietnamese, from its stored code and fields.

    A record without a code (kept before codes were stored, or a unit that never ran)
    gets a general sentence; the technical English text belongs in a tooltip.
    """
    if not code:
        return DELIVERY_UNCODED
    return "Lỗi: " + render(code, fields or {}, "delivery")


def gap_vi(gap: Gap) -> str:
    """What a composed script lacks, in Vietnamese (``bản tin #3 (…): chưa có bản ghi Tiếng Mông``)."""
    return render(gap.code, gap.fields)


def vietnamese_protocol(err: ProtocolError) -> str:
    """The Vietnamese sentence for an error of the protocol package (same table, by code)."""
    return vietnamese(err)
