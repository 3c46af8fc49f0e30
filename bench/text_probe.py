"""Text probe: can the text encoder tell a held-out wording apart at all? The ceiling of WorldBench `paraphrase`.

`paraphrase` captions use only held-out words (tenku.vocab: "ruby" for red, "in the direction of the left
border" for left); a DiT trained on the train words can only map them through the text encoder's states. This
bench asks MiniLM directly, per hidden layer (0 = the embedding layer, 6 = the last, which Tenku conditions on by default), and the mean of
several layers (ModelConfig.text_layers):

- nearest word: each held-out word's state (mean over its tokens, inside the same sentence frames as the train
  words) is given the class of the nearest train word's state (cosine);
- linear probe: a logistic regression trained on the train words' states, tested on the held-out words' (what a
  learnt map from states to the attribute could do at best, with the train words as its only examples);
- controls, by the same code: `train words (left out)` probes each train word with a regression fitted on the
  other train words (how well an unseen word of the train vocabulary is read: the floor above chance the
  held-out figures should be compared with), and `shuffled labels` fits the regression to permuted classes
  (the chance level as measured; 1/classes is printed too).

    nice .venv/bin/python bench/text_probe.py [--layers 0 1 2 3 4 5 6] [--mixes 3,6 2,3,4,5] [--threads 1]

`--more-colour-words` adds 8 more colour words per colour (none held out, EXTRA_COLOUR_WORDS) to the train words
of the colour rows: would a caption vocabulary 3.7x as rich let a map learnt from MiniLM's states read the
held-out words?

`--captions TRAIN ID PARAPHRASE` (three Tenku World manifests, e.g. a training set and WorldBench's `id` and
`paraphrase` world/manifest.jsonl of the same seed) asks the same of whole captions: each `id` and `paraphrase`
caption's sentence vector (the mean of MiniLM's last-layer token states, what sentence-transformers outputs) is
given the colour, shape and direction of its nearest training caption's scene. If a pooled sentence vector kept
paraphrases apart, `paraphrase` would score like `id` here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tenku.data.clips import read_records  # noqa: E402
from tenku.models.text import TextEncoder, minilm_path  # noqa: E402
from tenku.vocab import COLOR_WORDS, DIRECTION_WORDS, SHAPE_WORDS  # noqa: E402

# Sentence frames in the style of the world's captions; {} is the probed word or phrase.
FRAMES = {
    "colour": (COLOR_WORDS, ["A {} ball moves to the left.", "There is a {} square that drifts up.",
                             "A small {} triangle falls down and bounces on the floor.", "Moving rightward, a {} box crosses the view.",
                             "A {} sphere bounces down off the walls on a black background.", "A large {} cube glides towards the top."]),
    "shape": (SHAPE_WORDS, ["A red {} moves to the left.", "There is a blue {} that drifts up.",
                            "A small green {} falls down and bounces on the floor.", "Moving rightward, a cyan {} crosses the view.",
                            "A purple {} bounces down off the walls on a black background.", "A large white {} glides towards the top."]),
    "direction": (DIRECTION_WORDS, ["A red ball moves {}.", "There is a blue square that drifts {}.",
                                    "A green triangle bounces {} off the walls.", "A small cyan box glides {} at a slow pace.",
                                    "A purple sphere falls {} and bounces on the floor.", "A white cube slides {} across the frame."]),
}
# More train-side colour words (--more-colour-words): common names of each colour, none of them a held-out word
# of tenku.vocab or a word of another attribute (backgrounds, occluders, shapes).
EXTRA_COLOUR_WORDS = {
    "red": ["vermilion", "blood-red", "cranberry", "carmine", "tomato-red", "cardinal red", "rust-red", "wine-red"],
    "green": ["mint", "leaf-green", "kelly green", "chartreuse", "pea-green", "apple-green", "spring green",
              "olive green"],
    "blue": ["cerulean", "cornflower blue", "ultramarine", "denim", "electric blue", "baby blue", "ocean blue",
             "steel blue"],
    "yellow": ["mustard", "butter-yellow", "saffron", "banana-yellow", "gold", "daffodil", "citrine", "straw-yellow"],
    "orange": ["carrot-orange", "marigold", "peach", "papaya", "copper", "mandarin", "burnt orange", "flame-orange"],
    "purple": ["lavender", "mauve", "grape", "orchid", "aubergine", "mulberry", "heather", "royal purple"],
    "white": ["milky", "alabaster", "bone-white", "porcelain", "cream", "frost-white", "linen", "paper-white"],
    "cyan": ["aquamarine", "seafoam", "glacier-blue", "lagoon", "ice-cyan", "robin's egg blue", "powder cyan",
             "bright aqua"],
}


@torch.no_grad()
def span_states(encoder, frame: str, word: str) -> torch.Tensor:
    """(layers, D): the mean hidden state of `word`'s tokens inside `frame`, at every layer."""
    tok = encoder.tokenizer
    before = len(tok(frame.split("{}")[0], add_special_tokens=False)["input_ids"])
    n = len(tok(word, add_special_tokens=False)["input_ids"])
    batch = tok(frame.format(word), return_tensors="pt")
    out = encoder.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    hidden = torch.stack(out.hidden_states)[:, 0]  # (layers, L, D)
    return hidden[:, 1 + before: 1 + before + n].mean(1)  # skip [CLS]; (layers, D)


def collect(encoder, table: dict, frames: list[str], held: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """States (N, layers, D), class index (N,) and word index (N,) of every (word, frame) of one word list."""
    states, labels, words = [], [], []
    vocabulary = [(c, w) for c, lists in enumerate(table.values()) for w in lists[int(held)]]
    for i, (c, w) in enumerate(vocabulary):
        for frame in frames:
            states.append(span_states(encoder, frame, w))
            labels.append(c)
            words.append(i)
    return torch.stack(states), torch.tensor(labels), torch.tensor(words)


def nearest(train_x, train_y, test_x) -> torch.Tensor:
    sim = F.normalize(test_x, dim=-1) @ F.normalize(train_x, dim=-1).T  # (N_test, N_train)
    return train_y[sim.argmax(1)]


def linear_probe(train_x, train_y, test_x, classes: int, decay: float = 1e-2) -> torch.Tensor:
    """Multinomial logistic regression (LBFGS) on standardised states -> predicted classes of test_x."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(a.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, train_y) + decay * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return (b @ w + bias).argmax(1).detach()


def left_out(x, y, words, classes: int) -> float:
    """Each train word probed by a regression fitted on the other train words."""
    hits = n = 0
    for w in words.unique():
        test = words == w
        hits += int((linear_probe(x[~test], y[~test], x[test], classes) == y[test]).sum())
        n += int(test.sum())
    return hits / n


@torch.no_grad()
def caption_neighbours(encoder, train: Path, splits: dict[str, Path]) -> None:
    """Per split: how often the nearest training caption (cosine of pooled last-layer states) shares the first
    object's colour, shape and direction."""
    def read(path):
        rows = read_records(path)
        return [r["caption"] for r in rows], [r["scene"]["objects"][0] for r in rows]

    def pooled(captions):  # (N, D) unit sentence vectors
        return F.normalize(torch.stack([t.mean(0) for t in encoder.encode_tokens(captions)]), dim=-1)

    train_caps, train_objs = read(train)
    bank = pooled(train_caps)
    print(f"| split | clips | colour | shape | direction |  (nearest of {len(train_caps)} training captions)")
    print("|---|---|---|---|---|")
    for name, path in splits.items():
        caps, objs = read(path)
        nearest_ix = (pooled(caps) @ bank.T).argmax(1).tolist()
        agree = {k: sum(o.get(k) == train_objs[j].get(k) for o, j in zip(objs, nearest_ix)) / len(objs)
                 for k in ("color", "shape", "direction")}
        print(f"| {name} | {len(objs)} | {agree['color']:.3f} | {agree['shape']:.3f} | {agree['direction']:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, nargs="+", default=list(range(7)), help="hidden layers (0 = embeddings)")
    ap.add_argument("--mixes", nargs="*", default=["3,6", "2,3,4,5", "0,1,2,3,4,5,6"],
                    help="also rows for the mean of these layers (comma-separated), as ModelConfig.text_layers reads them")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--more-colour-words", action="store_true",
                    help="colour rows: train on 8 more words per colour (EXTRA_COLOUR_WORDS) besides tenku.vocab's")
    ap.add_argument("--captions", nargs=3, type=Path, metavar=("TRAIN", "ID", "PARAPHRASE"),
                    help="whole captions instead: nearest training caption by pooled sentence vector (manifests)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder = TextEncoder(minilm_path(), 48, backend="transformers")  # span_states reads transformers' model
    if args.captions:
        train, id_, para = args.captions
        return caption_neighbours(encoder, train, {"id": id_, "paraphrase": para})

    print("| attribute | layer | held-out: nearest word | held-out: linear probe | train words (left out) | shuffled labels | 1/classes |")
    print("|---|---|---|---|---|---|---|")
    for name, (table, frames) in FRAMES.items():
        k = len(table)
        hx, hy, _ = collect(encoder, table, frames, held=True)
        if name == "colour" and args.more_colour_words:
            table = {c: (train + EXTRA_COLOUR_WORDS[c], held) for c, (train, held) in table.items()}
            name = "colour (+8 words each)"
        tx, ty, tw = collect(encoder, table, frames, held=False)
        mixes = [(str(i), [i]) for i in args.layers] + [(f"mean {m}", [int(i) for i in m.split(",")]) for m in args.mixes]
        for layer, ix in mixes:
            a, b = tx[:, ix].mean(1), hx[:, ix].mean(1)
            nn_acc = (nearest(a, ty, b) == hy).float().mean().item()
            lin_acc = (linear_probe(a, ty, b, k) == hy).float().mean().item()
            loo = left_out(a, ty, tw, k)
            shuffled = (linear_probe(a, ty[torch.randperm(len(ty))], b, k) == hy).float().mean().item()
            print(f"| {name} | {layer} | {nn_acc:.2f} | {lin_acc:.2f} | {loo:.2f} | {shuffled:.2f} | {1 / k:.2f} |")


if __name__ == "__main__":
    main()
