"""OccVLAProcessor and the offline tokenizer: prompt layout, labels, padding, persistence, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from occvla.commands import Command
from occvla.meta_actions import META_ACTIONS
from occvla.processor import PROCESSOR_FILE, OccVLAProcessor
from occvla.tokenizer import IMAGE_TOKEN, build_tokenizer

SIZE, TOKENS = 64, 16


@pytest.fixture(scope="module")
def proc() -> OccVLAProcessor:
    return OccVLAProcessor(build_tokenizer(), image_size=SIZE, image_tokens_per_camera=TOKENS)


def _sample(rng, **kw) -> dict:
    s = {
        "images": rng.integers(0, 256, (6, SIZE, SIZE, 3), dtype=np.uint8),
        "speed": 7.25,
        "command": int(Command.LEFT),
        "meta_action": "turn left, decelerate",
        "trajectory": np.zeros((6, 2), np.float32),
    }
    s.update(kw)
    return s


def test_every_meta_action_is_two_tokens_and_round_trips(proc):
    tok = proc.tokenizer
    for meta in META_ACTIONS:
        ids = tok.encode(meta, add_special_tokens=False)
        assert len(ids) == 2, (meta, tok.convert_ids_to_tokens(ids))
        assert tok.decode(ids) == meta
    text = "question: is there a zebra crossing? answer: yes"  # unseen words still tokenize (ASCII alphabet)
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.unk_token_id not in ids and tok.decode(ids) == text


def test_special_token_ids_and_determinism():
    a, b = build_tokenizer(), build_tokenizer()
    assert [a.convert_tokens_to_ids(t) for t in ("<pad>", "<eos>", "<bos>", "<unk>", IMAGE_TOKEN)] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert a.get_vocab() == b.get_vocab()
    assert len(a) <= 512


def test_training_batch_layout(proc):
    rng = np.random.default_rng(0)
    samples = [_sample(rng), _sample(rng, meta_action="keep lane, keep speed", speed=12.0, command=4)]
    batch = proc(samples)
    _, t = batch["input_ids"].shape
    assert batch["pixel_values"].shape == (2 * 6, 3, SIZE, SIZE)
    assert batch["pixel_values"].min() >= -1.0 and batch["pixel_values"].max() <= 1.0
    for i, s in enumerate(samples):
        ids, lab, tt = batch["input_ids"][i], batch["labels"][i], batch["token_type_ids"][i]
        real = batch["attention_mask"][i].bool()
        assert int((ids == proc.image_token_id).sum()) == 6 * TOKENS
        prefix = real & (tt == 0)
        assert bool((lab[prefix] == -100).all())  # no loss on the prompt
        target = lab[tt == 1]
        assert proc.decode(target) == s["meta_action"] and int(target[-1]) == proc.eos_id
        end = int(batch["meta_end_index"][i])
        assert int(ids[end + 1]) == proc.eos_id  # meta_end is the last meta-action token
        assert proc.decode(ids[real][6 * TOKENS :]).startswith(proc.prompt_text(s["speed"], s["command"]))
        # left padding; positions count real tokens only (1-indexed like PaliGemma)
        n = int(real.sum())
        assert bool(real[t - n :].all()) and batch["position_ids"][i, -1] == n
    assert torch.equal(batch["ego_velocity"], torch.tensor([[7.25, 0.0], [12.0, 0.0]]))
    assert batch["trajectory"].shape == (2, 6, 2)


def test_prompt_only_batch_for_generation(proc):
    batch = proc([_sample(np.random.default_rng(1))], train=False)
    assert "labels" not in batch and "meta_end_index" not in batch
    assert int(batch["token_type_ids"].sum()) == 0
    assert proc.tokenizer.decode(batch["input_ids"][0, -1:]) == "\n"


def test_qa_targets_only_on_answers():
    questions = ["is the road ahead clear?", "how many cars?", "What should the ego vehicle do next?"]
    qa = [(questions[2], "turn left, decelerate"), (questions[0], "yes"), (questions[1], "two")]
    for tok, pair_tokens in ((build_tokenizer(), None), (build_tokenizer(questions=questions), 2)):
        proc = OccVLAProcessor(tok, SIZE, TOKENS, include_qa=True)
        batch = proc([_sample(np.random.default_rng(2), qa=qa)])
        lab = batch["labels"][0]
        assert proc.decode(lab[lab != -100]) == "turn left, decelerate yes two"
        suffix = batch["input_ids"][0][batch["token_type_ids"][0] == 1]
        # the pair repeating the meta-action is dropped; each other pair is "\n<question> <answer>"
        assert [line.strip() for line in proc.decode(suffix).split("\n")] == [
            "turn left, decelerate",
            "is the road ahead clear? yes",
            "how many cars? two",
        ]
        if pair_tokens:  # questions known to the tokenizer: one token each, so a pair is question + answer
            assert len(suffix) == 2 + 2 * pair_tokens + 1  # meta-action (2) + 2 pairs + <eos>


def test_occupancy_passthrough(proc):
    rng = np.random.default_rng(3)
    occ = rng.integers(0, 18, (8, 8, 4)).astype(np.uint8)
    batch = proc([_sample(rng, occupancy=occ, mask_camera=occ < 9)])
    assert batch["occupancy"].dtype == torch.long and batch["occupancy"].shape == (1, 8, 8, 4)
    assert batch["mask_camera"].dtype == torch.bool


def test_save_load_round_trip(proc, tmp_path):
    proc.save_pretrained(tmp_path)
    again = OccVLAProcessor.from_pretrained(tmp_path)
    rng = np.random.default_rng(4)
    s = _sample(rng)
    a, b = proc([s]), again([s])
    assert all(torch.equal(a[k], b[k]) for k in a)
    (tmp_path / PROCESSOR_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="processor config missing"):
        OccVLAProcessor.from_pretrained(tmp_path)


def test_speed_reaches_the_prompt_only_when_asked_and_the_choice_persists(tmp_path):
    """Without speed in the prompt two samples that differ only in speed give the same LM input (the LM must decide
    from what it sees), yet the planning head still gets each one's velocity; processors saved before the option
    existed keep writing the speed."""
    import json

    tok = build_tokenizer()
    rng = np.random.default_rng(5)
    still, moving = _sample(rng, speed=0.0), _sample(rng, speed=9.0)
    blind = OccVLAProcessor(tok, image_size=SIZE, image_tokens_per_camera=TOKENS, speed_in_prompt=False)
    told = OccVLAProcessor(tok, image_size=SIZE, image_tokens_per_camera=TOKENS)
    a, b = blind([still]), blind([moving])
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert a["ego_velocity"][0, 0] == 0.0 and b["ego_velocity"][0, 0] == 9.0
    assert "speed" not in blind.prompt_text(9.0, int(Command.LEFT))
    assert "speed: 9.0 m/s" in told.prompt_text(9.0, int(Command.LEFT))
    assert not torch.equal(told([still])["input_ids"], told([moving])["input_ids"])
    blind.save_pretrained(tmp_path)
    assert OccVLAProcessor.from_pretrained(tmp_path).speed_in_prompt is False
    cfg = json.loads((tmp_path / PROCESSOR_FILE).read_text())
    del cfg["speed_in_prompt"]
    (tmp_path / PROCESSOR_FILE).write_text(json.dumps(cfg))
    assert OccVLAProcessor.from_pretrained(tmp_path).speed_in_prompt is True


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s.update(images=s["images"][:5]), "expected 6 camera images, got 5"),
        (
            lambda s: s.update(images=np.zeros((6, 32, 48, 3), np.uint8)),
            "expected images of 64x64 pixels .* got 32x48",
        ),
        (lambda s: s.update(images=np.full((6, SIZE, SIZE, 3), np.nan, np.float32)), "NaN/inf pixel values"),
        (lambda s: s.update(images=np.full((6, SIZE, SIZE, 3), 200.0, np.float32)), r"must lie in \[0, 1\]"),
        (lambda s: s.update(images=np.zeros((6, SIZE, SIZE), np.uint8)), "must be \\(cameras, H, W, 3\\)"),
        (lambda s: s.update(images=np.zeros((6, SIZE, SIZE, 3), np.int32)), "dtype int32"),
        (lambda s: s.update(speed=float("nan")), "speed must be a finite"),
        (lambda s: s.update(command=42), "unknown navigation command 42"),
        (lambda s: s.update(meta_action=""), "non-empty 'meta_action'"),
    ],
)
def test_bad_inputs_give_one_line_errors(proc, change, message):
    s = _sample(np.random.default_rng(5))
    change(s)
    with pytest.raises(ValueError, match=message) as err:
        proc([s])
    assert "\n" not in str(err.value)
