"""Vocabulary and tuned knobs of the embedded ``synthetic`` dataset (see `bench.data.synthetic`
for the generative story): styles, genres, brands, names, review templates, and the weights
that decide how strongly each hidden signal shows in the data.
"""

from __future__ import annotations

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
