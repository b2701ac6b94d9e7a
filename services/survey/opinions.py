"""The common opinions in the owners' free text: 「业主/用户对物业服务、管理的意见(共性的意见)」.

Each comment is cut into words with jieba (Chinese word segmentation) when it
arrives; the words that carry meaning (two characters or more, not a stop
word) are stored with the response and counted in the round × estate tally,
once per comment. The report then names the most frequent words per category
with how many comments raised them and a few comments quoted as examples.

The examples of a word are its shortest distinct comments: the ones most about that
word, and quick to read on a notice board. A comment that is the word alone ("电梯！")
says nothing the count does not, so it is quoted only when there is nothing else.
Each round × estate tally keeps the ``QUOTES_PER_TERM`` best per word as responses
arrive, so a report reads a bounded number of quotes whatever the number of comments.
Pure Python: no nameko, no store.
"""
import logging
import re
from collections.abc import Iterable, Mapping, Sequence

import jieba

from shared.masking import mask_text

jieba.setLogLevel(logging.WARNING)

# Words of the trade jieba's general dictionary would split ("垃圾桶" -> "垃圾" "桶").
TRADE_WORDS = (
    "物业费", "停车位", "车位", "停车场", "地下车库", "垃圾桶", "垃圾分类", "电梯", "门禁",
    "单元门", "楼道", "化粪池", "下水道", "外墙", "屋面", "漏水", "渗水", "绿化带", "草坪",
    "保安", "巡逻", "监控", "路灯", "健身器材", "儿童乐园", "快递柜", "充电桩", "装修",
    "噪音", "异味", "保洁", "维修工", "报修", "投诉", "消防通道", "电动车",
)
for _word in TRADE_WORDS:
    jieba.add_word(_word)

# Words any comment may contain that say nothing about what owners think of the service.
_STOP_WORDS_TEXT = """
一些 一下 一个 一点 一直 一般 一定 一样 上面 下面 不过 不是 不要 为了 为什么 什么 今天 以后 以前
以及 但是 你们 其他 其实 再次 出来 别人 到底 前面 可以 可是 各位 同时 后面 因为 因此 多次 大家
如果 如何 她们 它们 对于 已经 希望 应该 建议 怎么 总是 感觉 所以 所有 我们 或者 这个 这些 这样
这里 那个 那些 那里 需要 非常 有点 有些 有时 时候 明显 是否 是不是 最近 比较 没有 然后 特别
现在 目前 真的 确实 经常 而且 能够 自己 虽然 认为 觉得 还是 还有 进行 还要 问题 情况 方面 物业
小区 业主 住户 我家 的话 谢谢 感谢 麻烦 整体 基本 满意 不错 工作 服务 管理 加强 提高 改进
注意 能否 是否是 之前 之后 希望能 可能 等等 一次 每次 还得 有人 这么 那么 怎样 不能 不会 不够
回来 地方 尽快 东西 事情 办法 看看 一些 老是
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())   # single characters never count anyway

MIN_TERM_LENGTH = 2
TERM = re.compile(r"^[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]*$")
QUOTE_LENGTH = 120
QUOTES_PER_TERM = 2
# How kept quotes are ordered (MongoDB's $push … $sort uses the same): best first. One
# string key, "<rank> <text>", since the embedded store sorts a $push by one key only;
# it sorts the same in Python and in MongoDB (code point order).
QUOTE_ORDER = {"order": 1}
# Puts a comment that is just the word behind every comment that says more.
BARE_WORD_RANK = 1_000_000
NOT_A_WORD = re.compile(r"[\W_]+")


def terms_of(text: str) -> list[str]:
    """The distinct meaningful words of one comment, in the order they first appear."""
    seen: list[str] = []
    for token in jieba.lcut(text):
        word = token.strip().lower()
        if len(word) >= MIN_TERM_LENGTH and TERM.match(word) and word not in STOP_WORDS \
                and word not in seen:
            seen.append(word)
    return seen


def terms_by_topic(comments: Mapping[str, str]) -> dict[str, list[str]]:
    """{category or "general": [words]} of one questionnaire's comments."""
    return {topic: words for topic, text in comments.items() if (words := terms_of(text))}


def top_terms(term_counts: Mapping[str, int], limit: int) -> list[tuple[str, int]]:
    """The ``limit`` most frequent words of {word: comments mentioning it}, ties by word."""
    ranked = sorted(((word, count) for word, count in term_counts.items() if count > 0),
                    key=lambda item: (-item[1], item[0]))
    return ranked[:limit]


def quote(text: str) -> str:
    """A comment as it may be shown to staff and on the notice board: phone numbers and
    e-mail addresses masked (an owner may write one in), whitespace tidied, long ones
    shortened."""
    text = mask_text(" ".join(text.split()))
    return text if len(text) <= QUOTE_LENGTH else text[:QUOTE_LENGTH - 1] + "…"


def quote_entry(text: str, word: str) -> dict[str, str]:
    """A comment as a candidate quote for ``word``: its text and where it ranks (shorter
    first, the word alone last, then by text)."""
    bare = NOT_A_WORD.sub("", text).lower() == word
    return {"order": f"{len(text) + (BARE_WORD_RANK if bare else 0):07d} {text}", "text": text}


def quote_candidates(comments: Mapping[str, str], terms: Mapping[str, list[str]],
                     ) -> list[tuple[str, str, dict[str, str]]]:
    """(topic, word, entry) for each word of each comment of one questionnaire."""
    return [(topic, word, quote_entry(comments[topic], word))
            for topic, words in terms.items() if comments.get(topic) for word in words]


def _order(entry: Mapping[str, str]) -> str:
    return entry["order"]


def keep_quote(kept: Sequence[dict[str, str]], entry: dict[str, str],
               limit: int = QUOTES_PER_TERM) -> list[dict[str, str]]:
    """The kept quotes of a word once ``entry`` is offered: the ``limit`` best distinct
    comments (what the store's guarded $push … $sort … $slice leaves)."""
    if any(item["text"] == entry["text"] for item in kept):
        return list(kept)
    return sorted([*kept, entry], key=_order)[:limit]


def improves(kept: Sequence[dict[str, str]], entry: dict[str, str],
             limit: int = QUOTES_PER_TERM) -> bool:
    """Whether offering ``entry`` changes the kept quotes (else the store is not written)."""
    return keep_quote(kept, entry, limit) != list(kept)


def best_quotes(kept: Iterable[str | dict[str, str]], word: str,
                limit: int = QUOTES_PER_TERM) -> list[str]:
    """The texts to quote for ``word`` from quotes kept per estate (or older tallies'
    plain texts), best first, each once."""
    entries = [quote_entry(item, word) if isinstance(item, str) else item for item in kept]
    chosen: list[str] = []
    for entry in sorted(entries, key=_order):
        if entry["text"] not in chosen:
            chosen.append(entry["text"])
    return chosen[:limit]
