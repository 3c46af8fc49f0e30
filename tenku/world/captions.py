"""Captions from a scene, with varied wording and word order.

Every caption names each object's colour and shape and its direction of motion (as the viewer sees it);
size, speed and background appear sometimes. Each vocabulary entry has two disjoint word lists: TRAIN
wordings, used by every split but `paraphrase`, and HELD wordings plus held-out sentence templates, used only
by `paraphrase`. Every paraphrase caption contains a held-out colour word, so no paraphrase caption can
coincide with a training caption.
"""

from __future__ import annotations

import numpy as np

# name -> (train words, held-out words), shared with WorldBench's caption parser.
from tenku.vocab import (BACKGROUND_WORDS, BAR_WORDS, COLOR_WORDS, DIRECTION_WORDS, OCCLUDER_WORDS,  # noqa: F401
                     SHAPE_WORDS, SIZE_WORDS, SPEED_WORDS, STILL_PHRASES)

# Motion verbs (singular, plural); "rolls" only for balls.
MOVE_VERBS = ([("moves", "move"), ("drifts", "drift"), ("glides", "glide"), ("slides", "slide"),
               ("travels", "travel")], [("cruises", "cruise"), ("coasts", "coast"), ("sails", "sail")])
# Sentence templates per motion: (train, held). Fields: {s} subject noun phrase(s), {v}/{vp} verb singular/
# plural, {d} direction, {sp} speed phrase (may be empty), {bg} background phrase (may be empty), {occ}
# occluder noun phrase, {still} still phrase. Templates are filled then tidied (spaces, capital, full stop).
TEMPLATES = {
    "uniform1": (["{s} {v} {d}{sp}{bg}", "{bg0}{s} {v}{sp} {d}", "{s} {v} {d} across the frame{bg}",
                  "moving {d}, {s} crosses the view{sp}{bg}"],
                 ["{bg0}we watch {s} as it {v} {d}{sp}", "there is {s} that {v} {d}{bg}"]),
    "uniformN": (["{s} {vp} {d}{sp}{bg}", "{bg0}{s} all {vp} {d}{sp}", "{s} {vp} side by side {d}{bg}"],
                 ["{bg0}we watch {s} as they {vp} {d}{sp}", "there are {s} that {vp} {d}{bg}"]),
    "still": (["{s} {still}{bg}", "{bg0}{s} {still}", "a still scene: {s} {still}{bg}"],
              ["{bg0}nothing happens: {s} {still}", "a frozen frame where {s} {still}{bg}"]),
    "bounce": (["{s} bounces {d} off the walls{sp}{bg}", "{bg0}{s} {v} {d}{sp} and bounces off the walls",
                "{s} heads {d} and ricochets off the edges{bg}"],
               ["{bg0}{s} sets off {d} and rebounds from the borders", "there is {s} that ricochets around, first {d}{bg}"]),
    "fall": (["{s} falls {d} and bounces on the floor{bg}", "{bg0}{s} drops {d} in an arc, bouncing on the ground",
              "{s} is thrown and falls {d}{sp}, bouncing{bg}"],
             ["{bg0}{s} tumbles {d} and rebounds off the floor", "there is {s} that plunges {d} and hops on the ground{bg}"]),
    "fall_down": (["{s} falls straight {d} and bounces on the floor{bg}", "{bg0}{s} drops {d} and bounces"],
                  ["{bg0}{s} plunges {d} and rebounds off the floor", "there is {s} that tumbles {d} onto the ground{bg}"]),
    "collide": (["two balls collide: {s}{bg}", "{bg0}{s}, and they collide", "{s} and they bump into each other{bg}"],
                ["{bg0}a pair of orbs crash together: {s}", "there is an impact between two orbs: {s}{bg}"]),
    "occlude": (["{s} {v} {d}{sp}, passes behind {occ} and comes out the other side{bg}",
                 "{bg0}{s} {v} {d} behind {occ} and reappears", "{s} goes {d} behind {occ}, hidden for a moment{bg}"],
                ["{bg0}{s} {v} {d}, vanishing behind {occ} before emerging again",
                 "there is {s} that {v} {d} and is briefly hidden by {occ}{bg}"]),
    "pan": (["the camera pans and {s} {vp2} {d}{sp}{bg}", "{bg0}as the camera pans, {s} {vp2} {d}",
             "the whole scene shifts {d}{sp} as the camera moves: {s}{bg}"],
            ["{bg0}the viewpoint sweeps, so {s} {vp2} {d}", "there is a camera sweep: {s} {vp2} {d}{bg}"]),
}
BG_TRAIN = (["on a {b} background", "against a {b} backdrop", "over a {b} background"],
            ["set against a {b} backdrop", "with a {b} backdrop behind"])


def _pick(rng, words):
    return words[rng.integers(len(words))]


class _Wording:
    """Picks words from the train or held-out lists."""

    def __init__(self, rng, held: bool):
        self.rng, self.col = rng, 1 if held else 0

    def __call__(self, table, key=None):
        return _pick(self.rng, (table[key] if key is not None else table)[self.col])


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _noun(w: _Wording, o, with_size: bool) -> str:
    parts = [w(SIZE_WORDS, o.size)] if with_size and o.size in SIZE_WORDS else []
    return _article(" ".join(parts + [w(COLOR_WORDS, o.color), w(SHAPE_WORDS, o.shape)]))


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption(scene, rng: np.random.Generator, split: str = "train") -> str:
    """A caption for the scene. `split == "paraphrase"` uses only held-out wordings and templates."""
    w = _Wording(rng, held=split == "paraphrase")
    objs = scene.objects
    with_size = rng.random() < 0.4
    nouns = [_noun(w, o, with_size) for o in objs]
    lead = objs[0]
    speed = lead.speed if lead.speed in SPEED_WORDS and rng.random() < 0.4 else None
    sp = " " + w(SPEED_WORDS, speed) if speed else ""
    bg, bg0 = "", ""
    if rng.random() < 0.3:
        phrase = _pick(rng, BG_TRAIN[w.col]).format(b=w(BACKGROUND_WORDS, scene.background.name))
        bg, bg0 = (" " + phrase, "") if rng.random() < 0.5 else ("", phrase + ", ")
    verbs = MOVE_VERBS[w.col] + ([("rolls", "roll")] if not w.col and lead.shape == "ball" else [])
    v, vp = _pick(rng, verbs)
    fields = dict(s=_join(nouns), v=v, vp=vp, vp2=vp if len(objs) > 1 else v, d="", sp=sp, bg=bg, bg0=bg0,
                  occ="", still="")

    motion = scene.motion
    key = motion
    if motion == "uniform":
        key = "uniform1" if len(objs) == 1 else "uniformN"
    if motion in ("uniform", "bounce", "fall", "occlude", "pan"):
        fields["d"] = w(DIRECTION_WORDS, lead.direction) if lead.direction in DIRECTION_WORDS else "down"
    if motion == "fall" and lead.direction == "down":
        key = "fall_down"
    if motion == "still":
        fields["still"] = _pick(rng, STILL_PHRASES[w.col])[0 if len(objs) == 1 else 1]
    if motion == "occlude":
        c = scene.occluders[0].color if scene.occluders else "silver"
        fields["occ"] = _article(f"{w(OCCLUDER_WORDS, c)} {w(BAR_WORDS)}")
    if motion == "collide":
        fields["s"] = _join([_collider(w, n, o) for n, o in zip(nouns, objs)])
        fields["sp"] = ""
    text = _pick(rng, TEMPLATES[key][w.col]).format(**fields)
    return _tidy(text)


def _collider(w: _Wording, noun: str, o) -> str:
    if o.direction in DIRECTION_WORDS:
        return f"{noun} moving {w(DIRECTION_WORDS, o.direction)}"
    return f"{noun} {'at rest' if not w.col else 'waiting motionless'}"


def _tidy(text: str) -> str:
    text = " ".join(text.replace(" ,", ",").split())
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")
