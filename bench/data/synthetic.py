"""The embedded ``synthetic`` dataset: a small shop whose hidden structure is known, so the
benchmark can check that models find it.

Generative story (every draw comes from `seed`, one independent random stream per part, so
the same seed gives byte-identical files):

* **Items.** Each item belongs to one *genre* (outerwear, footwear, ...), has a brand (each
  brand makes one genre), a title "<adjective> <Brand> <noun>" and attributes
  ``brand:<b>``, ``category:<genre>``, ``type:<noun>``.  Each item also has a hidden
  *visual style* (one of ten `STYLES`, each a palette + pattern pair), drawn independently
  of genre and brand, so it can be recovered only from the item's image or its feature
  vector, never from its text.  Items have a skewed (log-normal) base popularity.
* **Images and features.** The style decides an image's palette and pattern (stripes,
  checks, dots, ...); per-item jitter and pixel noise make every image different.  The
  feature set ``synthetic`` is the generator's own "encoder": a fixed random embedding of the
  style plus per-item noise, i.e. a noisy function of what the image shows.
* **Users** have a genre taste (a peaked Dirichlet draw), one preferred visual style, a
  distinct made-up name, a favourite review "voice" and aspects they comment on.
* **Sequences.** A user's first item is a taste-driven draw: softmax of popularity + genre
  taste + a large bonus when the item's style is the user's style.  Each next item follows
  the previous one through its fixed "successors" (three items of the same style, often of
  the same genre) with probability `FOLLOW`, else it is another taste-driven draw.  Items
  never repeat within a user.  So item-to-item transitions are learnable (sequential models
  beat popularity) and which items a user touches depends strongly on the visual match.
  Ten fairly fine styles, each item seen ~10 times in training, are more than plain matrix
  factorisation learns reliably from co-occurrence alone, while the image/feature shows the
  style of every item: image/feature-aware models beat BPR-MF on the direct task.
* **Reviews.** A few interactions per user get a rating (user-item match + brand quality +
  noise), a feature word of the item's genre (chosen by the user's aspect preferences), a
  templated explanation in the user's voice whose adjective follows the rating, and a short
  headline.  Explanations are learnable from (user, item, feature, rating) but not
  memorisable as one sentence.

This module holds the presets and `generate`; the vocabulary and tuned knobs live in
`bench.data.synthetic_vocab`, the hidden World and the sequence samplers in
`bench.data.synthetic_world`, images, features, names and reviews in
`bench.data.synthetic_content`.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.store import Item, User, write_dataset
from bench.data.synthetic_content import make_reviews, render_image, style_features, user_names
from bench.data.synthetic_vocab import ADJECTIVES, BRANDS, GENRE_NAMES, GENRES, SEQ_LEN, STYLES
from bench.data.synthetic_world import (
    World,
    build_world,
    draw_sequences,
    fast_sequences,
    fast_world,
    part_rng,
)

# Presets of `generate` (`bench data generate --preset NAME`): the embedded dense shop, and a
# catalogue shaped like Amazon Clothing 5-core (tens of thousands of users and items, ~7 items
# per user, long-tailed popularity) to check that defaults hold on sparse data. `sparse` is
# drawn by the vectorised sampler (`fast_world`, `fast_sequences`): no images, no reviews.
PRESETS = {
    "synthetic": {"n_users": 600, "n_items": 600, "image_size": 32},
    "sparse": {"n_users": 24_000, "n_items": 14_000, "image_size": 0, "pop_sigma": 1.0,
               "seq_len": (5, 40), "seq_tail": 0.32, "reviews": False, "fast": True},
}
# Version of what `generate` writes for a given (preset, size, seed): bump it whenever a change
# alters the generated files, so that datasets made by an older generator are regenerated.
GENERATOR_VERSION = 1
MIN_ITEMS = 100 + SEQ_LEN[1]


def check_generate_args(n_users: int, n_items: int, preset: str = "synthetic") -> None:
    """One-line usage errors (exit 2) for impossible sizes, before anything is drawn."""
    from bench.errors import UnknownNameError, UsageError

    if preset not in PRESETS:
        raise UnknownNameError("preset", preset, PRESETS)
    if n_users < 1:
        raise UsageError(f"--users {n_users}: the number of users must be a positive integer")
    if n_items < MIN_ITEMS:
        raise UsageError(f"--items {n_items}: the generator needs at least {MIN_ITEMS} items "
                         f"(100 direct-task candidates + up to {SEQ_LEN[1]} items per user); "
                         f"use --items {MIN_ITEMS} or more")


def _items(w: World) -> list[Item]:
    """Titles "<Adjective> <Brand> <noun>" and brand/category/type attributes of every item."""
    items = []
    for i in range(len(w.item_genre)):
        genre = GENRE_NAMES[w.item_genre[i]]
        noun, brand = GENRES[genre][0][w.item_noun[i]], BRANDS[w.item_brand[i]]
        items.append(Item(
            raw_id=f"S{i:05d}",
            title=f"{ADJECTIVES[w.item_adj[i]].capitalize()} {brand.capitalize()} {noun}",
            attributes=[f"brand:{brand}", f"category:{genre}", f"type:{noun}"],
        ))
    return items


def generate(root: Path, name: str = "synthetic", *, n_users: int | None = None, n_items: int | None = None,
             seed: int = 2022, image_size: int | None = None, preset: str = "synthetic") -> Path:
    """Generate the synthetic dataset `name` under `root` (replacing it) and return its directory.
    `preset` gives the shape; explicit `n_users`, `n_items`, `image_size` override its sizes."""
    check_generate_args(n_users or 1, n_items or MIN_ITEMS, preset)
    p = PRESETS[preset]
    n_users = p["n_users"] if n_users is None else n_users
    n_items = p["n_items"] if n_items is None else n_items
    image_size = p["image_size"] if image_size is None else image_size
    check_generate_args(n_users, n_items, preset)
    if p.get("fast"):
        w = fast_world(n_users, n_items, seed, p["pop_sigma"])
        seqs = fast_sequences(w, p["seq_len"], p["seq_tail"], part_rng(seed, 2))
    else:
        w = build_world(n_users, n_items, seed)
        seqs = draw_sequences(w, n_users, part_rng(seed, 2))

    items = _items(w)
    names = user_names(n_users, part_rng(seed, 3))
    users = [User(raw_id=f"U{u:05d}", name=name) for u, name in enumerate(names)]
    img_rng = part_rng(seed, 4)
    images = ({i: render_image(int(w.item_style[i]), image_size, img_rng) for i in range(n_items)}
              if image_size else {})
    features = style_features(w, part_rng(seed, 5))
    reviews = make_reviews(w, seqs, part_rng(seed, 6)) if p.get("reviews", True) else []
    prov = {"generator": "bench.data.synthetic", "n_users": n_users, "n_items": n_items,
            "image_size": image_size, "styles": len(STYLES), "genres": len(GENRES)}
    if preset != "synthetic":
        prov["preset"] = preset
    return write_dataset(
        root, name,
        users=users, items=items, sequences=seqs, reviews=reviews,
        features={"synthetic": features},
        feature_meta={"synthetic": {"encoder": "synthetic",
                                    "weights": "none (generator's own projection of the visual style)",
                                    "image_size": image_size}},
        images=images,
        provenance=prov,
        seed=seed,
        format_version={"by": "bench.data.synthetic", "version": GENERATOR_VERSION},
    )


def hidden_world(manifest: dict) -> World | None:
    """The hidden truth behind a dataset this generator wrote (regenerated from its manifest's
    seed and sizes; the same seed gives the same World), or None for any other dataset."""
    prov = manifest.get("provenance") or {}
    if prov.get("generator") != "bench.data.synthetic":
        return None
    n_users, n_items, seed = int(prov["n_users"]), int(prov["n_items"]), int(manifest["seed"])
    preset = PRESETS.get(prov.get("preset", "synthetic"))
    if preset is None:
        return None
    if preset.get("fast"):
        return fast_world(n_users, n_items, seed, preset["pop_sigma"])
    return build_world(n_users, n_items, seed)
