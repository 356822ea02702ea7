"""Rendering untrusted text: markdown from specialists and users is sanitised with an allow-list."""

from __future__ import annotations

import re

import nh3
from django import template
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

register = template.Library()

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "strong", "em", "del", "code", "pre",
    "blockquote", "a", "table", "thead", "tbody", "tr", "th", "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}

# A masked secret (``amqp://shop:***@rabbitmq``, ``PASSWORD=***``) is a run of asterisks with no
# letter or digit on either side; emphasis always touches a word (``***both***``). Two masks on
# one line would otherwise pair up as bold-italic and swallow the text between them. The run is
# swapped for a private-use character markdown ignores, then put back (code spans included).
_MASK_RUN = re.compile(r"(?<![A-Za-z0-9*\\])\*{3,}(?![A-Za-z0-9*])")
_MASK_HOLDER = "\ue000"
_HELD = re.compile("\ue000|%EE%80%80")  # as written, or percent-encoded inside a link target
_RULE_LINE = re.compile(r"[ \t]*\*{3,}[ \t]*")  # a line of asterisks alone is a horizontal rule


def render_markdown(text: str) -> str:
    text = (text or "").replace(_MASK_HOLDER, "")
    masks: list[str] = []

    def hold(match: re.Match) -> str:
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.end())
        if _RULE_LINE.fullmatch(text, start, len(text) if end < 0 else end):
            return match.group(0)
        masks.append(match.group(0))
        return _MASK_HOLDER

    html = _md.render(_MASK_RUN.sub(hold, text))
    if masks:
        runs = iter(masks)
        html = _HELD.sub(lambda _m: next(runs, "***"), html)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@register.filter(name="markdown")
def markdown_filter(text: str) -> str:
    return mark_safe(render_markdown(text))  # noqa: S308 - sanitised by nh3 above


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def percent(value) -> int:
    try:
        return int(round(float(value) * 100))
    except (TypeError, ValueError):
        return 0
