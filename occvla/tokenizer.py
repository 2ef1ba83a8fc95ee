"""Offline tokenizer for the tiny/small presets (no hub): a BPE over the fixed prompt / meta-action / QA text.

Why project-built: no pretrained tokenizer is reachable here, and the small presets need a small vocabulary
(embedding size) anyway. Choices:
- Llama-style normalisation (spaces become "▁", one "▁" prepended) so decoding restores the exact text.
- The initial alphabet is printable ASCII, so any ASCII text (unseen QA words) still tokenizes, letter by letter.
- Digits are split one per token (speeds read as digits, like Gemma's tokenizer).
- Each lateral phrase ("turn left") and each ", <longitudinal>" phrase (", decelerate") is ONE token: a
  meta-action "turn left, decelerate" is 2 tokens, so greedy decoding at inference costs 2 LM steps (README
  latency table). The bare longitudinal phrases are single tokens too, for QA text.
- The fixed prompt phrase of each command ("command: go straight.") and each driving-QA question the data asks
  ("\n<question>", with its separator) are ONE token each: the prompt is 6 tokens shorter and a QA pair costs
  two or three tokens instead of ~20 (fewer wasted LM positions in training, see benchmarks/train_step.py).
- Special tokens PaliGemma needs: <pad>=0, <eos>=1, <bos>=2, <unk>=3, <image>=4.
The paper preset uses the checkpoint's own (Gemma) tokenizer instead; the processor treats both alike.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from occvla.commands import COMMAND_TEXT
from occvla.config import OccVLAConfig
from occvla.meta_actions import LATERAL, LONGITUDINAL

SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<image>")
IMAGE_TOKEN = "<image>"

# Words of the prompt template and common driving-QA phrasing; trained merges make these single tokens.
_BASE_TEXT = (
    "command: {cmd}. speed: {speed} m/s\n",
    "question: what should the ego vehicle do? answer: {meta}",
    (
        "question: is there a car, truck, bus, pedestrian, cyclist, motorcycle, barrier, traffic cone or trailer "
        "in front of the ego vehicle? answer: yes no"
    ),
    "question: how many vehicles are on the left, right, front or back? answer: zero one two three four five",
    "question: what is the traffic light state? answer: red yellow green none",
    "the ego vehicle is stopped, moving slowly, driving fast, at an intersection, on a straight road",
    "drivable surface sidewalk terrain vegetation manmade building other flat free occupied",
)


def _corpus(extra_texts: Iterable[str]) -> list[str]:
    metas = [f"{lat}, {lon}" for lat in LATERAL for lon in LONGITUDINAL]
    texts: list[str] = []
    for i, cmd in enumerate(sorted(set(COMMAND_TEXT.values()))):
        for j, meta in enumerate(metas):
            speed = f"{(i * 7 + j) % 30}.{j % 10}"
            texts.append(_BASE_TEXT[0].format(cmd=cmd, speed=speed))
            texts.append(_BASE_TEXT[1].format(meta=meta))
    texts.extend(_BASE_TEXT[2:] * 10)
    texts.extend(extra_texts)
    return texts


def command_phrase(command_text: str) -> str:
    """The prompt's command phrase (one token in the offline tokenizer)."""
    return f"command: {command_text}."


def question_phrase(question: str) -> str:
    """A QA question as it follows the previous target: separator + question (one offline token)."""
    return f"\n{question}"


def build_tokenizer(
    extra_texts: Iterable[str] = (), vocab_size: int = 512, questions: Iterable[str] = ()
) -> PreTrainedTokenizerFast:
    """Train the offline BPE tokenizer (deterministic for a given corpus) and wrap it for transformers.

    Args:
        extra_texts: more text to learn merges from (e.g. the driving-QA questions and answers of a dataset).
        vocab_size: upper bound on the vocabulary (the model's ``text.vocab_size`` must be >= ``len(tokenizer)``).
        questions: QA questions that become single tokens (``question_phrase``).
    """
    if vocab_size < 200:
        raise ValueError(f"vocab_size {vocab_size} is too small for the ASCII alphabet; use >= 200")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # the leading space of text that follows a phrase token is the "▁" Prepend adds (not a second "▁")
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex("^ "), ""), normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Split("▁", behavior="merged_with_next"),
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    phrases = [command_phrase(c) for c in sorted(set(COMMAND_TEXT.values()))]
    phrases += sorted({question_phrase(q) for q in questions})
    alphabet = list(string.ascii_letters + string.digits + string.punctuation + "\n") + ["▁"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(LATERAL) - 2 * len(LONGITUDINAL) - len(phrases),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(extra_texts), trainer)
    # normalized=True: matched after "▁" normalisation, i.e. as whole words; normalized=False: matched on the raw
    # text first (", keep speed" must win over the bare "keep speed").
    tok.add_tokens([AddedToken(f", {p}", normalized=False) for p in LONGITUDINAL])
    tok.add_tokens([AddedToken(p, normalized=True) for p in (*LATERAL, *LONGITUDINAL)])
    # raw-text phrases, matched before normalisation; the text after them gets its own leading "▁"
    tok.add_tokens([AddedToken(p, normalized=False) for p in phrases])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        additional_special_tokens=[IMAGE_TOKEN],
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )


def tokenizer_for_config(cfg: OccVLAConfig, extra_texts: Iterable[str] = ()) -> PreTrainedTokenizerBase:
    """The tokenizer an ``OccVLAConfig`` needs: the checkpoint's own (from ``cfg.pretrained_path``, local files
    only) when set, else the offline BPE sized to ``cfg.text.vocab_size``."""
    if cfg.pretrained_path:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(cfg.pretrained_path), local_files_only=True)
    if cfg.text.vocab_size >= 50_000:
        raise ValueError(
            f"preset {cfg.preset!r} (vocab {cfg.text.vocab_size}) needs its checkpoint's tokenizer: set pretrained_path"
        )
    return build_tokenizer(extra_texts, vocab_size=cfg.text.vocab_size)
