"""Text metrics: meta-action accuracy (exact and per axis) and VQA exact-match accuracy.

VQA normalisation (like the VQA-v2/SQuAD habit): lower case, punctuation removed, articles (a, an, the) removed,
number words zero..twenty mapped to digits, whitespace collapsed. A prediction is correct when it equals any of
the reference answers after normalisation.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from occvla.meta_actions import parse_meta_action

_NUMBERS = {w: str(i) for i, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def normalize_answer(text: str) -> str:
    """Canonical form of a short answer for exact matching."""
    t = _PUNCT.sub(" ", str(text).lower())
    words = [_NUMBERS.get(w, w) for w in t.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def vqa_accuracy(preds: Sequence[str], refs: Sequence[str | Sequence[str]]) -> float:
    """Fraction of predictions equal (after ``normalize_answer``) to their reference or any of its alternatives."""
    if len(preds) != len(refs):
        raise ValueError(f"vqa_accuracy got {len(preds)} predictions for {len(refs)} references")
    if not preds:
        return float("nan")
    hits = 0
    for p, r in zip(preds, refs, strict=True):
        alts = [r] if isinstance(r, str) else list(r)
        hits += normalize_answer(p) in {normalize_answer(a) for a in alts}
    return hits / len(preds)


def meta_action_accuracy(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """``meta_exact``, ``meta_lateral``, ``meta_longitudinal`` accuracies; unparseable predictions count wrong."""
    if len(preds) != len(refs):
        raise ValueError(f"meta_action_accuracy got {len(preds)} predictions for {len(refs)} references")
    if not preds:
        nan = float("nan")
        return {"meta_exact": nan, "meta_lateral": nan, "meta_longitudinal": nan}
    exact = lat = lon = 0
    for p, r in zip(preds, refs, strict=True):
        gr = parse_meta_action(r)
        if gr is None:
            raise ValueError(f"reference meta-action {r!r} is not in the vocabulary")
        pr = parse_meta_action(p)
        if pr is None:
            continue
        lat += pr[0] == gr[0]
        lon += pr[1] == gr[1]
        exact += pr == gr
    n = len(preds)
    return {"meta_exact": exact / n, "meta_lateral": lat / n, "meta_longitudinal": lon / n}
