"""The hidden truth of the ``synthetic`` dataset and its interaction sequences: item genres,
brands, styles and popularity, item successors, user tastes, and the sequences users follow
(see `bench.data.synthetic` for the story).

Two samplers tell the same story: `build_world` and `draw_sequences` loop per item and per user
(the dense embedded shop), `fast_world` and `fast_sequences` draw group-wise for all users at
once (large presets such as ``sparse``). Both draw the shared World fields in the same order,
so the same seed gives the same dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.synthetic_vocab import (
    ADJECTIVES,
    BRANDS,
    BRANDS_PER_GENRE,
    FOLLOW,
    GENERIC_FEATURES,
    GENRE_NAMES,
    GENRES,
    INTENSIFIERS,
    POP_SIGMA,
    SEQ_LEN,
    STYLE_BONUS,
    STYLES,
    SUCC_PROBS,
    TASTE_ALPHA,
    TASTE_WEIGHT,
    TEMPLATES,
)


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


def part_rng(seed: int, part: int) -> np.random.Generator:
    # One independent stream per part: changing how one part is drawn leaves the others alone.
    return np.random.default_rng([seed, 2022, part])


def draw_index(rng: np.random.Generator, weights: np.ndarray) -> int:
    """One index with probability proportional to `weights` (much faster than rng.choice(p=...))."""
    c = np.cumsum(weights)
    return int(np.searchsorted(c, rng.random() * c[-1], side="right"))


def _drawn_first(rng: np.random.Generator, n_items: int, pop_sigma: float):
    """-> genre, brand, style, log popularity per item: what both generators draw first, in this
    order. Style is drawn independently of genre and brand: text carries no information about it."""
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
    rng = part_rng(seed, 1)
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
    return World(item_genre=genre, item_brand=brand, item_style=style, log_pop=log_pop,
                 successors=successors, **_drawn_after_successors(rng, n_items, n_users))


def _choice_logits(w: World, u: int) -> np.ndarray:
    taste = np.log(w.user_taste[u][w.item_genre] + 1e-3)
    return w.log_pop + TASTE_WEIGHT * taste + STYLE_BONUS * (w.item_style == w.user_style[u])


def draw_sequences(w: World, n_users: int, rng: np.random.Generator) -> list[list[int]]:
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
                cand = int(w.successors[seq[-1], draw_index(rng, np.asarray(SUCC_PROBS))])
                if not seen[cand]:
                    nxt = cand
            if nxt < 0:  # taste-driven draw among unseen items
                nxt = draw_index(rng, np.where(seen, 0.0, p_all))
            seen[nxt] = True
            seq.append(nxt)
        seqs.append(seq)
    return seqs


# ---------------------------------------------------------------------- vectorised sampler (large presets)


def fast_world(n_users: int, n_items: int, seed: int, pop_sigma: float) -> World:
    """`build_world` without its per-item loop: successors are drawn group-wise (same style and
    genre with probability 0.8, else same style), popularity-weighted."""
    rng = part_rng(seed, 1)
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
    return World(item_genre=genre, item_brand=brand, item_style=style, log_pop=log_pop,
                 successors=successors, **_drawn_after_successors(rng, n_items, n_users))


class _GroupSampler:
    """Draws items within a group (items sharing a key) with probability proportional to weight."""

    def __init__(self, keys: np.ndarray, weights: np.ndarray):
        self.order = np.argsort(keys, kind="stable")  # items grouped by key
        self.cum = np.cumsum(weights[self.order])  # [n_items]
        n_keys = int(keys.max()) + 1
        ends = np.searchsorted(keys[self.order], np.arange(n_keys), side="right")
        # [n_keys] cumulative weight at group end
        self.hi = np.where(ends > 0, self.cum[np.maximum(ends - 1, 0)], 0.0)
        self.lo = np.concatenate([[0.0], self.hi[:-1]])
        self.mass = self.hi - self.lo  # [n_keys] total weight per group

    def draw(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        r = self.lo[keys] + rng.random(len(keys)) * self.mass[keys]
        pos = np.minimum(np.searchsorted(self.cum, r, side="right"), len(self.cum) - 1)
        return self.order[pos]


def fast_sequences(w: World, seq_len: tuple[int, int], tail: float,
                   rng: np.random.Generator) -> list[list[int]]:
    """The story of `draw_sequences`, drawn for all users at once, one position at a time: a taste draw
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
            pick = np.searchsorted(np.cumsum(SUCC_PROBS), rng.random(len(act)) * sum(SUCC_PROBS),
                                   side="right")
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
