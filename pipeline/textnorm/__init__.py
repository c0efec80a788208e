"""Vietnamese text front end: bulletins as written → the words a loudspeaker should say.

    >>> normalize("Chỉ thị số 07/CT-TTg ngày 21/3/2023")
    'Chỉ thị số bảy chỉ thị thủ tướng ngày hai mươi mốt tháng ba năm hai nghìn không trăm hai mươi ba'

Modules: unicode (clean-up), numbers (integer reader and parser), dates, units,
references (document codes, telephones), spoken (numbers in text, Roman numerals,
capitals), letters, lexicon, sentences; normalize puts them in order.
"""

from pipeline.textnorm.lexicon import Lexicon, builtin_lexicon, load_lexicon, parse_lexicon
from pipeline.textnorm.normalize import normalize, normalize_lines
from pipeline.textnorm.numbers import read_int, words_to_int
from pipeline.textnorm.sentences import split_sentences

__all__ = [
    "Lexicon",
    "builtin_lexicon",
    "load_lexicon",
    "normalize",
    "normalize_lines",
    "parse_lexicon",
    "read_int",
    "split_sentences",
    "words_to_int",
]
