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
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.store import Item, Review, User, write_dataset

# ---------------------------------------------------------------------------- vocabulary

# Hidden visual styles: name -> (palette, pattern). Five palettes x five patterns, each palette
# used by two styles and each pattern by two, so neither colour nor pattern alone names a style.
# These words never occur in titles, attributes or reviews (a test asserts it): text alone
# cannot reveal a style.
PALETTES = {
    "warm": ((200, 40, 30), (250, 160, 40)),
    "cold": ((30, 70, 200), (225, 235, 250)),
    "green": ((40, 150, 60), (230, 220, 70)),
    "sand": ((150, 100, 50), (235, 205, 150)),
    "purple": ((130, 40, 160), (245, 150, 200)),
}
STYLES = {
    "ember": ("warm", "hstripes"), "cinder": ("warm", "dots"),
    "glacier": ("cold", "checks"), "lagoon": ("cold", "diagonal"),
    "meadow": ("green", "dots"), "moss": ("green", "rings"),
    "dune": ("sand", "diagonal"), "canyon": ("sand", "hstripes"),
    "orchid": ("purple", "rings"), "plum": ("purple", "checks"),
}
STYLE_NAMES = tuple(STYLES)

# genre -> (nouns, feature words reviewers talk about)
GENRES = {
    "outerwear": (("jacket", "coat", "parka", "vest"), ("fit", "warmth", "zipper", "fabric")),
    "footwear": (("sneaker", "boot", "sandal", "loafer"), ("sole", "comfort", "laces", "grip")),
    "kitchen": (("mug", "kettle", "skillet", "teapot"), ("handle", "lid", "weight", "finish")),
    "audio": (("headphones", "speaker", "earbuds", "radio"), ("sound", "bass", "battery", "volume")),
    "bags": (("backpack", "tote", "satchel", "wallet"), ("strap", "pockets", "stitching", "leather")),
    "lighting": (("lamp", "lantern", "sconce", "nightlight"), ("brightness", "switch", "shade", "cord")),
}
GENRE_NAMES = tuple(GENRES)
GENERIC_FEATURES = ("price", "quality")
BRANDS_PER_GENRE = 4
BRANDS = (  # made-up words; brand b makes genre b // BRANDS_PER_GENRE
    "acmeo", "brisko", "calvan", "dorrin", "elkwood", "fenwick", "gorvak", "helio",
    "ivrel", "jandor", "kestra", "lumio", "morvel", "nexa", "orbel", "pravo",
    "quenta", "rilko", "solva", "tarvin", "ulmar", "vexo", "wendle", "zanthe",
)
ADJECTIVES = ("classic", "compact", "deluxe", "rugged", "sleek", "everyday",
              "premium", "vintage", "modern", "portable", "sturdy", "lightweight")
NAME_HEADS = ("Al", "Bri", "Cor", "Da", "El", "Fen", "Ga", "Hal", "Is", "Jo", "Ka", "Li", "Mo",
              "Ne", "Or", "Pe", "Qui", "Ro", "Sa", "Ti", "Ul", "Ve", "Wy", "Ya", "Zo")
NAME_TAILS = ("na", "ric", "lo", "vin", "sa", "ra", "den", "mi", "th", "ly", "ko", "ria")
SURNAMES = ("Ash", "Bell", "Crane", "Dale", "Frost", "Gray", "Hale", "Lane",
            "Marsh", "North", "Reed", "Stone", "Vale", "Wood", "York", "Brook")

# Explanation templates (a user's "voice" is one of them) and a vocabulary per rating.
TEMPLATES = (
    "the {feature} of this {brand} {noun} is {adj}",
    "i think the {feature} is {adj} for a {noun} like this",
    "honestly the {feature} on my new {noun} is {adj}",
    "my {brand} {noun} arrived and the {feature} feels {adj}",
    "if you care about {feature} this {noun} is {adj}",
    "after a month the {feature} of the {brand} {noun} is still {adj}",
    "the {noun} came quickly and the {feature} is {adj}",
    "for me the {feature} matters and this {noun} is {adj} there",
)
INTENSIFIERS = ("really", "very", "quite", "pretty", "super", "so")
ADJ_BY_RATING = {  # two synonyms per rating: sampled per review, so a little noise remains
    5: ("excellent", "perfect"), 4: ("good", "nice"), 3: ("okay", "average"),
    2: ("disappointing", "weak"), 1: ("terrible", "awful"),
}
HEADLINES = {
    5: ("love it", "five stars", "excellent {noun}", "highly recommend"),
    4: ("good {noun}", "solid buy", "happy with it"),
    3: ("it is okay", "average {noun}", "not bad"),
    2: ("disappointed", "meh {noun}", "expected more"),
    1: ("do not buy", "waste of money", "returned it"),
}

# ---------------------------------------------------------------------------- knobs (tuned)

STYLE_BONUS = 4.0      # logit bonus for an item in the user's style (the planted visual signal)
TASTE_WEIGHT = 1.0     # weight of log genre-taste in the choice logit
POP_SIGMA = 1.0        # spread of log base popularity (skew: a few items are much more popular)
TASTE_ALPHA = 0.3      # Dirichlet concentration of genre taste (small = one or two genres)
FOLLOW = 0.5           # probability that the next item is a successor of the previous one
SUCC_PROBS = (0.6, 0.3, 0.1)  # how often each of an item's three successors follows it
SEQ_LEN = (5, 20)      # sequence length range (the direct task needs n_items > 99 + SEQ_LEN[1])
REVIEWS_PER_USER = (2, 5)
FEATURE_DIM = 64
FEATURE_NOISE = 1.5    # per-dimension noise relative to the unit-variance style embedding


@dataclass
class World:
    """The hidden truth behind a generated dataset (not stored on disk; handy in tests)."""

    item_genre: np.ndarray   # [n_items] genre index
    item_brand: np.ndarray   # [n_items] brand index
    item_style: np.ndarray   # [n_items] hidden style index
    item_noun: np.ndarray    # [n_items] index into the genre's nouns
    item_adj: np.ndarray     # [n_items] title adjective index
    log_pop: np.ndarray      # [n_items] log base popularity
    successors: np.ndarray   # [n_items, 3] items that tend to follow each item
    brand_quality: np.ndarray  # [n_brands] rating offset
    user_taste: np.ndarray   # [n_users, n_genres] genre taste (rows sum to 1)
    user_style: np.ndarray   # [n_users] preferred hidden style
    user_bias: np.ndarray    # [n_users] rating offset
    user_voice: np.ndarray   # [n_users, 2] template index, intensifier index
    user_aspects: np.ndarray  # [n_users, 6] weights over 4 genre feature words + price + quality


def _rng(seed: int, part: int) -> np.random.Generator:
    # One independent stream per part: changing how one part is drawn leaves the others alone.
    return np.random.default_rng([seed, 2022, part])


def _draw(rng: np.random.Generator, weights: np.ndarray) -> int:
    """One index with probability proportional to `weights` (much faster than rng.choice(p=...))."""
    c = np.cumsum(weights)
    return int(np.searchsorted(c, rng.random() * c[-1], side="right"))


def _drawn_first(rng: np.random.Generator, n_items: int, pop_sigma: float):
    """-> genre, brand, style, log popularity per item: what both generators draw first, in this order.
    Style is drawn independently of genre and brand: text carries no information about it."""
    genre = rng.integers(0, len(GENRES), n_items)
    brand = genre * BRANDS_PER_GENRE + rng.integers(0, BRANDS_PER_GENRE, n_items)
    style = rng.integers(0, len(STYLES), n_items)
    return genre, brand, style, rng.normal(0.0, pop_sigma, n_items)


def _drawn_after_successors(rng: np.random.Generator, n_items: int, n_users: int) -> dict:
    """The World fields both generators draw last, in this order (the same seed, the same dataset)."""
    return dict(
        item_noun=rng.integers(0, len(GENRES[GENRE_NAMES[0]][0]), n_items),
        item_adj=rng.integers(0, len(ADJECTIVES), n_items),
        brand_quality=rng.normal(0.0, 0.4, len(BRANDS)),
        user_taste=rng.dirichlet(np.full(len(GENRES), TASTE_ALPHA), n_users),
        user_style=rng.integers(0, len(STYLES), n_users),
        user_bias=rng.normal(0.0, 0.4, n_users),
        user_voice=np.column_stack([rng.integers(0, len(TEMPLATES), n_users),
                                    rng.integers(0, len(INTENSIFIERS), n_users)]),
        user_aspects=rng.dirichlet(np.full(4 + len(GENERIC_FEATURES), 0.5), n_users),
    )


def build_world(n_users: int, n_items: int, seed: int) -> World:
    rng = _rng(seed, 1)
    genre, brand, style, log_pop = _drawn_first(rng, n_items, POP_SIGMA)
    # Successors: same style (so chains stay visually coherent), same genre 4x as likely, and
    # popular items more likely; never the item itself.
    successors = np.empty((n_items, len(SUCC_PROBS)), np.int64)
    for i in range(n_items):
        w = np.exp(log_pop) * np.where(genre == genre[i], 4.0, 1.0) * (style == style[i])
        w[i] = 0.0
        if np.count_nonzero(w) < len(SUCC_PROBS):  # tiny catalogues: fall back to any item
            w = np.exp(log_pop).copy()
            w[i] = 0.0
        successors[i] = rng.choice(n_items, size=len(SUCC_PROBS), replace=False, p=w / w.sum())
    return World(item_genre=genre, item_brand=brand, item_style=style, log_pop=log_pop, successors=successors,
                 **_drawn_after_successors(rng, n_items, n_users))


def _choice_logits(w: World, u: int) -> np.ndarray:
    taste = np.log(w.user_taste[u][w.item_genre] + 1e-3)
    return w.log_pop + TASTE_WEIGHT * taste + STYLE_BONUS * (w.item_style == w.user_style[u])


def _sequences(w: World, n_users: int, rng: np.random.Generator) -> list[list[int]]:
    n_items = len(w.item_genre)
    lo, hi = SEQ_LEN
    seqs = []
    for u in range(n_users):
        # Lengths skew short (like real data): lo + a geometric tail, capped at hi.
        length = min(hi, lo + int(rng.geometric(0.15)) - 1)
        logits = _choice_logits(w, u)
        p_all = np.exp(logits - logits.max())
        seen = np.zeros(n_items, bool)
        seq: list[int] = []
        while len(seq) < length:
            nxt = -1
            if seq and rng.random() < FOLLOW:
                cand = int(w.successors[seq[-1], _draw(rng, np.asarray(SUCC_PROBS))])
                if not seen[cand]:
                    nxt = cand
            if nxt < 0:  # taste-driven draw among unseen items
                nxt = _draw(rng, np.where(seen, 0.0, p_all))
            seen[nxt] = True
            seq.append(nxt)
        seqs.append(seq)
    return seqs


def _render(style: int, size: int, rng: np.random.Generator) -> bytes:
    from PIL import Image

    palette, pattern = STYLES[STYLE_NAMES[style]]
    c1, c2 = PALETTES[palette]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    period = rng.uniform(0.15, 0.3)  # per-item pattern scale and phase
    phase = rng.uniform(0, 1)
    if pattern == "hstripes":
        mask = ((yy / period + phase) % 1.0) < 0.5
    elif pattern == "checks":
        mask = (np.floor(xx / period + phase) + np.floor(yy / period + phase)) % 2 == 0
    elif pattern == "dots":
        fx, fy = (xx / period + phase) % 1.0 - 0.5, (yy / period + phase) % 1.0 - 0.5
        mask = fx**2 + fy**2 < 0.09
    elif pattern == "diagonal":
        mask = (((xx + yy) / period + phase) % 1.0) < 0.5
    else:  # rings around a jittered centre
        cx, cy = rng.uniform(0.3, 0.7, 2)
        mask = ((np.hypot(xx - cx, yy - cy) / period + phase) % 1.0) < 0.5
    jitter = rng.normal(0, 15, (2, 3))  # per-item colour shift
    img = np.where(mask[..., None], np.add(c1, jitter[0]), np.add(c2, jitter[1]))
    img = img + rng.normal(0, 10, img.shape)  # pixel noise
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _features(w: World, rng: np.random.Generator) -> np.ndarray:
    n_styles = len(STYLES)
    emb = rng.normal(0, 1, (n_styles, FEATURE_DIM))
    x = emb[w.item_style] + FEATURE_NOISE * rng.normal(0, 1, (len(w.item_style), FEATURE_DIM))
    # Scale rows to norm ~1, like normalised CLIP embeddings.
    return (x / np.sqrt(FEATURE_DIM * (1 + FEATURE_NOISE**2))).astype(np.float32)


def _rating(w: World, u: int, i: int, rng: np.random.Generator) -> int:
    taste = np.log(w.user_taste[u, w.item_genre[i]] * len(GENRES) + 1e-3)  # > 0 for liked genres
    score = (3.3 + 0.5 * np.clip(taste, -3, 1.5) + 0.8 * (w.item_style[i] == w.user_style[u])
             + w.brand_quality[w.item_brand[i]] + w.user_bias[u] + rng.normal(0, 0.6))
    return int(np.clip(np.rint(score), 1, 5))


def _reviews(w: World, seqs: list[list[int]], rng: np.random.Generator) -> list[Review]:
    reviews = []
    lo, hi = REVIEWS_PER_USER
    for u, seq in enumerate(seqs):
        n = min(len(seq), int(rng.integers(lo, hi + 1)))
        tpl, inten = TEMPLATES[w.user_voice[u, 0]], INTENSIFIERS[w.user_voice[u, 1]]
        for i in sorted(rng.choice(seq, size=n, replace=False).tolist(), key=seq.index):
            g = GENRE_NAMES[w.item_genre[i]]
            nouns, feats = GENRES[g]
            noun, brand = nouns[w.item_noun[i]], BRANDS[w.item_brand[i]]
            # The feature word follows the user's aspect preferences over this genre's words.
            feature = (*feats, *GENERIC_FEATURES)[_draw(rng, w.user_aspects[u])]
            rating = _rating(w, u, i, rng)
            adj = f"{inten} {ADJ_BY_RATING[rating][rng.integers(0, 2)]}"
            text = tpl.format(feature=feature, brand=brand, noun=noun, adj=adj)
            headline = HEADLINES[rating][rng.integers(0, len(HEADLINES[rating]))].format(noun=noun)
            reviews.append(Review(u, i, float(rating), feature, text, headline))
    return reviews


def _names(n_users: int, rng: np.random.Generator) -> list[str]:
    """Distinct made-up names "<First> <Surname>". Prompts such as B-5 name the user only by
    this description, so a name shared by several users would make their prompts ambiguous
    (the real Amazon data has that problem; the planted preferences here must be learnable)."""
    n_first = len(NAME_HEADS) * len(NAME_TAILS)
    combos = rng.permutation(n_first * len(SURNAMES))
    out = []
    for u in range(n_users):
        c = int(combos[u % len(combos)])
        first, last = divmod(c, len(SURNAMES))
        name = NAME_HEADS[first // len(NAME_TAILS)] + NAME_TAILS[first % len(NAME_TAILS)] + " " + SURNAMES[last]
        out.append(name if u < len(combos) else f"{name} {u // len(combos) + 1}")  # beyond 4,800 users: numbered
    return out


# Presets of `generate` (`bench data generate --preset NAME`): the embedded dense shop, and a
# catalogue shaped like Amazon Clothing 5-core (tens of thousands of users and items, ~7 items
# per user, long-tailed popularity) to check that defaults hold on sparse data. `sparse` is
# drawn by the vectorised sampler (`_fast_world`, `_fast_sequences`): no images, no reviews.
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
        raise UsageError(f"--items {n_items}: the generator needs at least {MIN_ITEMS} items (100 direct-task "
                         f"candidates + up to {SEQ_LEN[1]} items per user); use --items {MIN_ITEMS} or more")


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
        w = _fast_world(n_users, n_items, seed, p["pop_sigma"])
        seqs = _fast_sequences(w, p["seq_len"], p["seq_tail"], _rng(seed, 2))
    else:
        w = build_world(n_users, n_items, seed)
        seqs = _sequences(w, n_users, _rng(seed, 2))

    items = []
    for i in range(n_items):
        genre = GENRE_NAMES[w.item_genre[i]]
        noun, brand = GENRES[genre][0][w.item_noun[i]], BRANDS[w.item_brand[i]]
        items.append(Item(
            raw_id=f"S{i:05d}",
            title=f"{ADJECTIVES[w.item_adj[i]].capitalize()} {brand.capitalize()} {noun}",
            attributes=[f"brand:{brand}", f"category:{genre}", f"type:{noun}"],
        ))
    users = [User(raw_id=f"U{u:05d}", name=name) for u, name in enumerate(_names(n_users, _rng(seed, 3)))]
    img_rng = _rng(seed, 4)
    images = {i: _render(int(w.item_style[i]), image_size, img_rng) for i in range(n_items)} if image_size else {}
    features = _features(w, _rng(seed, 5))
    reviews = _reviews(w, seqs, _rng(seed, 6)) if p.get("reviews", True) else []
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


# ---------------------------------------------------------------------------- vectorised sampler (large presets)


def _fast_world(n_users: int, n_items: int, seed: int, pop_sigma: float) -> World:
    """`build_world` without its per-item loop: successors are drawn group-wise (same style and
    genre with probability 0.8, else same style), popularity-weighted."""
    rng = _rng(seed, 1)
    n_genres = len(GENRES)
    genre, brand, style, log_pop = _drawn_first(rng, n_items, pop_sigma)
    pop = np.exp(log_pop)
    successors = np.empty((n_items, len(SUCC_PROBS)), np.int64)
    same_genre = rng.random((n_items, len(SUCC_PROBS))) < 0.8
    for keys in (style * n_genres + genre, style):
        sampler = _GroupSampler(keys, pop)
        draw = sampler.draw(np.repeat(keys, len(SUCC_PROBS)), rng).reshape(n_items, -1)
        mask = same_genre if keys is not style else ~same_genre
        successors[mask] = draw[mask]
    return World(item_genre=genre, item_brand=brand, item_style=style, log_pop=log_pop, successors=successors,
                 **_drawn_after_successors(rng, n_items, n_users))


class _GroupSampler:
    """Draws items within a group (items sharing a key) with probability proportional to weight."""

    def __init__(self, keys: np.ndarray, weights: np.ndarray):
        self.order = np.argsort(keys, kind="stable")  # items grouped by key
        self.cum = np.cumsum(weights[self.order])  # [n_items]
        n_keys = int(keys.max()) + 1
        ends = np.searchsorted(keys[self.order], np.arange(n_keys), side="right")
        self.hi = np.where(ends > 0, self.cum[np.maximum(ends - 1, 0)], 0.0)  # [n_keys] cumulative weight at group end
        self.lo = np.concatenate([[0.0], self.hi[:-1]])
        self.mass = self.hi - self.lo  # [n_keys] total weight per group

    def draw(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r = self.lo[keys] + rng.random(len(keys)) * self.mass[keys]
        pos = np.minimum(np.searchsorted(self.cum, r, side="right"), len(self.cum) - 1)
        return self.order[pos]


def _fast_sequences(w: World, seq_len: tuple[int, int], tail: float, rng: np.random.Generator) -> list[list[int]]:
    """The story of `_sequences`, drawn for all users at once, one position at a time: a taste draw
    picks a (genre, style) group (its popularity mass x genre taste x style bonus), then an item
    in it by popularity; an item already in the user's sequence is drawn again."""
    n_users, n_genres, n_styles = len(w.user_style), len(GENRES), len(STYLES)
    lo, hi = seq_len
    lengths = np.minimum(hi, lo + rng.geometric(tail, n_users) - 1)
    keys = w.item_style * n_genres + w.item_genre  # group of each item: style-major
    sampler = _GroupSampler(keys, np.exp(w.log_pop))
    mass = np.zeros(n_styles * n_genres)
    mass[: len(sampler.mass)] = sampler.mass
    taste = (w.user_taste + 1e-3) ** TASTE_WEIGHT  # [U, G]
    bonus = np.exp(STYLE_BONUS * (np.arange(n_styles)[None] == w.user_style[:, None]))  # [U, S]
    group_w = (bonus[:, :, None] * taste[:, None, :]).reshape(n_users, -1) * mass  # [U, S*G]
    group_cum = np.cumsum(group_w, 1)  # [U, S*G]
    seqs = np.full((n_users, hi), -1, np.int64)
    for t in range(hi):
        act = np.flatnonzero(lengths > t)
        nxt = np.full(len(act), -1)
        if t:
            follow = rng.random(len(act)) < FOLLOW
            pick = np.searchsorted(np.cumsum(SUCC_PROBS), rng.random(len(act)) * sum(SUCC_PROBS), side="right")
            cand = w.successors[seqs[act, t - 1], np.minimum(pick, len(SUCC_PROBS) - 1)]
            nxt = np.where(follow & ~(seqs[act, :t] == cand[:, None]).any(1), cand, -1)
        todo = np.flatnonzero(nxt < 0)
        while len(todo):
            u = act[todo]
            r = rng.random(len(u)) * group_cum[u, -1]
            g = np.minimum((group_cum[u] < r[:, None]).sum(1), group_cum.shape[1] - 1)
            nxt[todo] = sampler.draw(g, rng)
            todo = todo[(seqs[u, :t] == nxt[todo][:, None]).any(1)]  # repeats: draw again
        seqs[act, t] = nxt
    return [row[:n].tolist() for row, n in zip(seqs, lengths, strict=True)]
