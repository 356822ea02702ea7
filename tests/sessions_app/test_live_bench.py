"""The live bench's viewers keep their frames and read them after the measure (``_frames_read``):
what it finds in them is what reading each frame as it came would have found."""

from __future__ import annotations

from collections import Counter

from bench.live import _frames_read, _seq_marker


def _delta(cid: int, text: str) -> str:
    return f'<div hx-swap-oob="beforeend:#text-{cid}" data-at="0">{text}</div>'


def _event(seq: int) -> str:
    return f'<div id="card-1"></div><div id="live-seq" hx-swap-oob="true" {_seq_marker(seq)} hidden></div>'


def test_stamps_and_events_are_found_with_their_arrival():
    frames = [
        (1.0, _event(7)),  # read during the resume: found, not counted
        (2.0, _delta(5, "[ts:100] a [ts:1") + _delta(6, "[ts:100] b ")),
        (3.0, _delta(5, "01] c ") + _event(8) + _event(9)),
        (4.0, _event(8) + _delta(6, "[ts:100] b again ")),
    ]
    stats: Counter = Counter()
    seqs, stamps = _frames_read([frames], stats, since=[1])
    assert seqs == [{7: 1.0, 8: 3.0, 9: 3.0}]
    # a stamp cut between two fragments of its card is joined; the same stamp on two cards is two stamps
    assert stamps == [{("5", 100): 2.0, ("5", 101): 3.0, ("6", 100): 2.0}]
    assert stats["frames"] == 3
    assert stats["duplicate_seqs"] == 1 and stats["duplicate_stamps"] == 1
    assert stats["multi_event_frames"] == 1


def test_the_marker_of_a_seq_is_not_found_in_a_longer_one():
    assert _seq_marker(10) not in _event(100)
    assert _seq_marker(100) in _event(100)
