"""What the ``synthetic`` dataset shows of its hidden World (see `bench.data.synthetic`): item
images drawn from their style, the generator's own feature vectors, user names, and reviews
with ratings, feature words, explanations and headlines.
"""

from __future__ import annotations

import io

import numpy as np

from bench.data.store import Review
from bench.data.synthetic_vocab import (
    ADJ_BY_RATING,
    BRANDS,
    FEATURE_DIM,
    FEATURE_NOISE,
    GENERIC_FEATURES,
    GENRE_NAMES,
    GENRES,
    HEADLINES,
    INTENSIFIERS,
    NAME_HEADS,
    NAME_TAILS,
    PALETTES,
    REVIEWS_PER_USER,
    STYLE_NAMES,
    STYLES,
    SURNAMES,
    TEMPLATES,
)
from bench.data.synthetic_world import World, draw_index


def render_image(style: int, size: int, rng: np.random.Generator) -> bytes:
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
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(buf, format="PNG",
                                                                       compress_level=1)
    return buf.getvalue()


def style_features(w: World, rng: np.random.Generator) -> np.ndarray:
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


def make_reviews(w: World, seqs: list[list[int]], rng: np.random.Generator) -> list[Review]:
    out = []
    lo, hi = REVIEWS_PER_USER
    for u, seq in enumerate(seqs):
        n = min(len(seq), int(rng.integers(lo, hi + 1)))
        tpl, inten = TEMPLATES[w.user_voice[u, 0]], INTENSIFIERS[w.user_voice[u, 1]]
        for i in sorted(rng.choice(seq, size=n, replace=False).tolist(), key=seq.index):
            g = GENRE_NAMES[w.item_genre[i]]
            nouns, feats = GENRES[g]
            noun, brand = nouns[w.item_noun[i]], BRANDS[w.item_brand[i]]
            # The feature word follows the user's aspect preferences over this genre's words.
            feature = (*feats, *GENERIC_FEATURES)[draw_index(rng, w.user_aspects[u])]
            rating = _rating(w, u, i, rng)
            adj = f"{inten} {ADJ_BY_RATING[rating][rng.integers(0, 2)]}"
            text = tpl.format(feature=feature, brand=brand, noun=noun, adj=adj)
            headline = HEADLINES[rating][rng.integers(0, len(HEADLINES[rating]))].format(noun=noun)
            out.append(Review(u, i, float(rating), feature, text, headline))
    return out


def user_names(n_users: int, rng: np.random.Generator) -> list[str]:
    """Distinct made-up names "<First> <Surname>". Prompts such as B-5 name the user only by
    this description, so a name shared by several users would make their prompts ambiguous
    (the real Amazon data has that problem; the planted preferences here must be learnable)."""
    n_first = len(NAME_HEADS) * len(NAME_TAILS)
    combos = rng.permutation(n_first * len(SURNAMES))
    out = []
    for u in range(n_users):
        c = int(combos[u % len(combos)])
        first, last = divmod(c, len(SURNAMES))
        name = (NAME_HEADS[first // len(NAME_TAILS)] + NAME_TAILS[first % len(NAME_TAILS)]
                + " " + SURNAMES[last])
        # beyond 4,800 users: numbered
        out.append(name if u < len(combos) else f"{name} {u // len(combos) + 1}")
    return out
