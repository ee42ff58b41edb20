"""Final-answer extraction shared by every task checker and by generation."""

from __future__ import annotations

import re

_ANSWER = re.compile(r"answer\s*(?:\*\*|__)?\s*[:：]\s*(.*)", re.IGNORECASE)


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


# Markdown and LaTeX wrappers models put around a final answer: **bold**, `code`, $...$, \(...\), \[...\]
_WRAPPER = re.compile(
    r"^(?:(\*{1,3}|_{1,2}|`+|\$+)\s*(.*?)\s*\1|\\\((.*?)\\\)|\\\[(.*?)\\\])$", re.DOTALL
)


def extract_answer(response: str) -> str | None:
    """The final answer in a response: the last ``\\boxed{...}``, else the text after the last
    ``Answer:`` up to the end of its line. Surrounding whitespace, markdown emphasis and code
    marks (``**Answer:** 101``, ``Answer: **101**``, a backticked answer), ``$``/``\\(…\\)``
    math delimiters and a final period are stripped. ``None`` when the response states no answer."""
    found = _last_boxed(response)
    if found is None:
        matches = _ANSWER.findall(response)
        if not matches:
            return None
        found = matches[-1].splitlines()[0] if matches[-1] else ""
        found = re.sub(
            r"^\s*(?:\*\*|__)(?=\s|$)", "", found
        )  # the closing marks of a bold "**Answer:**"
    found = found.strip()
    if found.endswith("."):
        found = found[:-1].rstrip()
    while match := _WRAPPER.fullmatch(found):
        found = next(g for g in match.groups()[1:] if g is not None).strip()
        if found.endswith("."):
            found = found[:-1].rstrip()
    return found or None


def exact_match(response: str, answer: str) -> bool:
    """Default checker: the extracted answer equals the reference, ignoring case and spaces."""
    got = extract_answer(response)
    return got is not None and got.replace(" ", "").lower() == answer.replace(" ", "").lower()
