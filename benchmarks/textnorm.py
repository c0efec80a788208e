"""Throughput of the Vietnamese text front end on realistic bulletin text.

    .venv/bin/python benchmarks/textnorm.py [--mb 2] [--repeat 3]

Prints MB/s of ``normalize`` (line by line, as the render stage and ``loa text normalize``
use it), and the same as a ratio against a baseline measured in the same run over the same
text: ``unicodedata.normalize("NFC", line).split()``. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import time
import unicodedata
from collections.abc import Callable

from pipeline.textnorm import builtin_lexicon, normalize

BULLETIN = """\
THÔNG BÁO
Thực hiện Chỉ thị số 07/CT-TTg ngày 21/3/2023 của Thủ tướng Chính phủ và Kế hoạch số 158/KH-UBND \
ngày 01/01/2024 của UBND tỉnh Lào Cai, UBND xã Y Tý thông báo tới bà con nhân dân như sau.
Từ ngày 15/12 đến hết quý III/2025, mỗi hộ nghèo được hỗ trợ 1.500.000 đồng/hộ; hộ cận nghèo được \
hỗ trợ 750.000đ/hộ. Tổng kinh phí năm 2024 là 12.345.678.000 VNĐ, tăng 3,5% so với cùng kỳ.
Lịch tiêm chủng: 7h30 - 11h00 và 13h30 - 17 giờ các ngày thứ 2, thứ 4 và thứ 6 tại TYT xã.
Giai đoạn 2022 - 2027, xã phấn đấu trồng mới 120 ha rừng, làm 3,5 km đường bê tông và 2.400 m2 \
sân văn hóa thôn; lượng mưa có nơi trên 150 mm, nhiệt độ thấp nhất -2°C đến 5°C.
Hội nghị BCH Đảng bộ xã lần thứ 4, khóa XV, quán triệt Nghị quyết Đại hội lần thứ XIII của Đảng, \
Quyết định 407/QĐ-TTg và Nghị định 12/2023/NĐ-CP về BHYT, BHXH, CCCD.
Mọi thông tin xin liên hệ Trạm y tế xã, SĐT 0214 3840 123, hoặc gọi đường dây nóng 1022, \
Cảnh sát PCCC 114. Trường THCS và THPT Bát Xát tổ chức tuyên truyền ATGT cho 1.250 học sinh.
Ông Giàng A Páo, bà Lý Thị Mai ở thôn A Mú Sung, Sa Pa cùng CSGT Công an huyện tham gia \
lễ kỷ niệm 30-4-1975 lúc 07:30 ngày 30/4; có 0,05% hộ chưa đăng ký KT-XH.
"""


def _corpus(megabytes: float) -> list[str]:
    lines = BULLETIN.splitlines()
    size = len(BULLETIN.encode("utf-8"))
    copies = max(1, int(megabytes * 1_000_000 / size))
    return lines * copies


def _best(fn: Callable[[list[str]], object], lines: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(lines)
        best = min(best, time.perf_counter() - start)
    return best


def _normalize_all(lines: list[str]) -> None:
    for line in lines:
        normalize(line)


def _baseline(lines: list[str]) -> None:
    for line in lines:
        unicodedata.normalize("NFC", line).split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=2.0, help="size of the text in MB (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported (default 3)")
    args = parser.parse_args()
    builtin_lexicon()  # load once, outside the timing
    lines = _corpus(args.mb)
    mb = sum(len(line.encode("utf-8")) + 1 for line in lines) / 1_000_000
    t_norm = _best(_normalize_all, lines, args.repeat)
    t_base = _best(_baseline, lines, args.repeat)
    print(f"text: {mb:.2f} MB of bulletin text, {len(lines)} lines, best of {args.repeat}")
    print(f"normalize:            {mb / t_norm:8.2f} MB/s  ({t_norm:.3f} s)")
    print(f"baseline NFC+split:   {mb / t_base:8.2f} MB/s  ({t_base:.3f} s)")
    ratio = t_base / t_norm
    print(f"speed ratio normalize / baseline: {ratio:.3f} (the baseline is {1 / ratio:.0f}x faster)")


if __name__ == "__main__":
    main()
