"""Language tags a multilingual model leaked into its output, found and cut out.

A multilingual package (NLLB-200, M2M-100, multi-target OPUS-MT) needs its target language as
a token forced at the start of the output (`swh_Latn`, `__sw__`, `>>swh<<`). Daraja's engine
forces it from the package's metadata; Argos (and so LibreTranslate) ignores that metadata,
and the model then writes the tag itself, which LibreTranslate's post-processing turns into
words: "Swh Latn Kikosi kimefika …" with HTTP 200. Such output is doubtful: the model chose a
language instead of being told, so the reader is warned and shown the original.

Only strict shapes count (a 2-3 letter code joined to a script code Unicode knows, or the
M2M-100 and OPUS-MT markers), and only when the source text does not contain the same tag
(an officer may quote one).
"""

from __future__ import annotations

import re

# ISO 15924 script codes that NLLB-200 and M2M-100 use in their language tags.
_SCRIPTS = (
    "Arab|Armn|Beng|Cyrl|Deva|Ethi|Geor|Grek|Gujr|Guru|Hang|Hans|Hant|Hebr|Jpan|Khmr|Knda|"
    "Laoo|Latn|Mlym|Mymr|Olck|Orya|Sinh|Taml|Tfng|Telu|Thaa|Thai|Tibt"
)
# Script codes that are also words ("an Arab", "the Thai") are not matched in the spaced form.
_WORDLIKE = ("Arab", "Hans", "Thai")
_SPACED_SCRIPTS = "|".join(s for s in _SCRIPTS.split("|") if s not in _WORDLIKE)
_TAG_RE = re.compile(
    r"(?<![\w>])(?:"
    rf"[a-z]{{3}}_(?:{_SCRIPTS})"  # swh_Latn
    rf"|[A-Za-z][a-z]{{2}} (?:{_SPACED_SCRIPTS})"  # "Swh Latn", once post-processed
    r"|__[a-z]{2,3}__"  # M2M-100: __sw__
    r"|>>[a-z]{2,3}(?:_[A-Z][a-z]{3})?<<"  # multi-target OPUS-MT: >>swh<<
    r")(?![\w<])"
)


def leaked_tags(output: str, source: str = "") -> list[str]:
    """The language tags in `output` that `source` does not contain."""
    return [m.group(0) for m in _TAG_RE.finditer(output) if m.group(0) not in source]


def strip_leaked_tags(output: str, source: str = "") -> tuple[str, bool]:
    """`output` without the leaked tags (and the space they leave), and whether any was cut."""
    tags = leaked_tags(output, source)
    if not tags:
        return output, False
    text = output
    for tag in dict.fromkeys(tags):
        text = re.sub(rf"{re.escape(tag)}[ \t]*", "", text)
    text = re.sub(r"(?m)^[ \t]+", "", text)
    return text, True
