"""The 29 multimodal personalized prompts of VIP5 (Geng et al., "VIP5: Towards Multimodal
Foundation Models for Recommendation", Findings of EMNLP 2023, appendix Figures 8-10) as data,
and their rendering into (input text, target text, items whose images fill the image slots).

An item mention is the multimodal personalized field of the paper's Eq. (1): the item id
followed by ``image_tokens`` placeholder tokens (``<img>``), whose embeddings the mapping
network later overwrites with the item's visual feature. ``{item_photo}`` slots render as the
image tokens of the template's item; text-only prompts (P5, ``image_tokens = 0``) drop them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IMG = "<img>"

# id: (task, input template, target kind)
TEMPLATES: dict[str, tuple[str, str, str]] = {
    "A-1": (
        "sequential",
        "Given the following purchase history of user_{user_id} : {purchase_history} predict next possible item to be "
        "purchased by the user ?",
        "next_item",
    ),
    "A-2": (
        "sequential",
        "I find the purchase history list of user_{user_id} : {purchase_history} I wonder which is the next item to "
        "recommend to the user . Can you help me decide ?",
        "next_item",
    ),
    "A-3": (
        "sequential",
        "Here is the purchase history list of user_{user_id} : {purchase_history} try to recommend next item to the "
        "user",
        "next_item",
    ),
    "A-4": (
        "sequential",
        "Given the following purchase history of {user_desc} : {purchase_history} predict next possible item for the "
        "user",
        "next_item",
    ),
    "A-5": (
        "sequential",
        "Based on the purchase history of {user_desc} : {purchase_history} Can you decide the next item likely to be "
        "purchased by the user ?",
        "next_item",
    ),
    "A-6": (
        "sequential",
        "Here is the purchase history of {user_desc} : {purchase_history} What to recommend next for the user ?",
        "next_item",
    ),
    "A-7": (
        "sequential",
        "User_{user_id} has the following purchase history : {purchase_history} Does the user likely to buy {item_id} "
        "{item_photo} next ?",
        "yes_no",
    ),
    "A-8": (
        "sequential",
        "According to {user_desc} 's purchase history list : {purchase_history} Predict whether the user will purchase "
        "{item_id} , {item_photo} next ?",
        "yes_no",
    ),
    "A-9": (
        "sequential",
        "According to the purchase history of {user_desc} : {purchase_history} Can you recommend the next possible "
        "item to the user ?",
        "next_item",
    ),
    "B-1": ("direct", "Will user_{user_id} likely to interact with item_{item_id} {item_photo} ?", "yes_no"),
    "B-2": ("direct", "Shall we recommend item_{item_id} {item_photo} to user_{user_id} ?", "yes_no"),
    "B-3": ("direct", "For {user_desc} , do you think it is good to recommend {item_title} {item_photo} ?", "yes_no"),
    "B-4": (
        "direct",
        "I would like to recommend some items for user_{user_id} . Is the following item a good choice ? {item_title} "
        "{item_photo}",
        "yes_no",
    ),
    "B-5": ("direct", "Which item of the following to recommend for {user_desc} ? {candidate_items}", "target_item"),
    "B-6": (
        "direct",
        "Choose the best item from the candidates to recommend for {user_desc} ? {candidate_items}",
        "target_item",
    ),
    "B-7": (
        "direct",
        "Pick the most suitable item from the following list and recommend to user_{user_id} : {candidate_items}",
        "target_item",
    ),
    "B-8": (
        "direct",
        "We want to make recommendation for user_{user_id} . Select the best item from these candidates : "
        "{candidate_items}",
        "target_item",
    ),
    "C-1": (
        "explanation",
        "Generate an explanation for user_{user_id} about this product : {item_title} {item_photo}",
        "explanation",
    ),
    "C-2": (
        "explanation",
        "Given the following review headline {review_headline} can you help generate an explanation of user_{user_id} "
        "for item_{item_id} {item_photo} ?",
        "explanation",
    ),
    "C-3": (
        "explanation",
        "Help user_{user_id} generate a {star_rating} -star explanation about this product : {item_title} {item_photo}",
        "explanation",
    ),
    "C-4": (
        "explanation",
        "Generate an explanation for {user_desc} about this product : {item_title} {item_photo}",
        "explanation",
    ),
    "C-5": (
        "explanation",
        "Based on the following review headline : {review_headline} Generate {user_desc} 's purchase explanation about "
        "{item_title} {item_photo} ?",
        "explanation",
    ),
    "C-6": (
        "explanation",
        "Help {user_desc} generate a {star_rating} -star explanation for item_{item_id} {item_photo} ?",
        "explanation",
    ),
    "C-7": (
        "explanation",
        "Predict the star rating , then use {feature_word} as feature word to generate user_{user_id} 's purchase "
        "explanation for item_{item_id} {item_photo} ?",
        "rating_explanation",
    ),
    "C-8": (
        "explanation",
        "What score will {user_desc} rate item_{item_id} {item_photo} ? Then give an explanation for the rating score "
        ". ( 1 being lowest and 5 being highest )",
        "rating_explanation",
    ),
    "C-9": (
        "explanation",
        "Based on the feature word {feature_word} , generate an explanation for user_{user_id} about this product : "
        "{item_title} {item_photo}",
        "explanation",
    ),
    "C-10": (
        "explanation",
        "Given the word {feature_word} , can you help generate an explanation for {user_desc} about the product : "
        "{item_title} {item_photo}",
        "explanation",
    ),
    "C-11": (
        "explanation",
        "Using the word {feature_word} , write a {star_rating} -star explanation for user_{user_id} about "
        "item_{item_id} {item_photo} ?",
        "explanation",
    ),
    "C-12": (
        "explanation",
        "According to the feature word {feature_word} , generate a {star_rating} -star explanation for {user_desc} "
        "about item_{item_id} {item_photo} ?",
        "explanation",
    ),
}

# held out of training; evaluated as the "unseen" prompt of each task (the paper's protocol)
UNSEEN = {"sequential": "A-9", "direct": "B-8", "explanation": "C-12"}
SEEN_EVAL = {"sequential": "A-3", "direct": "B-5", "explanation": "C-3"}


def train_templates(task: str) -> list[str]:
    return [pid for pid, (t, _, _) in TEMPLATES.items() if t == task and pid != UNSEEN[task]]


def eval_templates(task: str) -> list[str]:
    return [SEEN_EVAL[task], UNSEEN[task]]


@dataclass(frozen=True)
class Prompt:
    text: str  # with IMG placeholders
    target: str
    image_items: tuple[int, ...]  # one entry per item mention that carries image tokens, in order


class PromptRenderer:
    """Fills templates for one dataset: item tokens are ``str(id + 1)`` (P5 numbers from 1)."""

    def __init__(self, data, image_tokens: int, max_history: int = 20, max_title_words: int = 12,
                 user_desc: str = "name"):
        self.data = data
        self.k = image_tokens
        self.max_history = max_history
        self.by_name = user_desc == "name"  # {user_desc}: the user's name (official) or "user_12"
        self.max_title_words = max_title_words

    def item(self, i: int) -> str:
        return str(int(i) + 1)

    def user(self, u: int) -> str:
        return f"user_{int(u) + 1}"

    def id_tokens(self) -> list[str]:
        """Every user id and item id as written in prompts (whole tokens with `id_tokens`). The
        capitalised "User_12" of A-7 stays in pieces, as a template word the model reads."""
        return [self.user(u) for u in range(self.data.n_users)] + [self.item(i) for i in range(self.data.n_items)]

    def parse_item(self, text: str) -> int | None:
        t = text.strip()
        return int(t) - 1 if t.isdigit() and 0 < int(t) <= self.data.n_items else None

    def beam_items(self, texts: list[str], k: int) -> list[int]:
        """Decoded beams (best first) -> the first `k` distinct items they name, then -1 for each beam
        that names no item (the evaluator counts those in `invalid_rate`; they never take a top-k place)."""
        valid: list[int] = []
        invalid = 0
        for text in texts:
            item = self.parse_item(text)
            if item is None:
                invalid += 1  # not an item id
            elif item not in valid:
                valid.append(item)
        return valid[:k] + [-1] * invalid

    def _photo(self) -> str:
        return " ".join([IMG] * self.k)

    def _mention(self, i: int, images: list[int]) -> str:
        """Item id plus its image tokens (the multimodal personalized field)."""
        if self.k == 0:
            return self.item(i)
        images.append(int(i))
        return f"{self.item(i)} {self._photo()}"

    def _user_desc(self, u: int) -> str:
        name = self.data.users[u].name.strip() if self.by_name else ""
        return name if name else self.user(u)

    def _title(self, i: int) -> str:
        words = self.data.items[i].title.split()[: self.max_title_words]
        return " ".join(words) if words else "unknown title"

    def render(self, pid: str, *, user: int, target: str, history=(), item: int | None = None, candidates=(),
               review=None) -> Prompt:
        """Render template `pid`; `item` is the template's single item (yes/no, explanation prompts)."""
        _task, template, _kind = TEMPLATES[pid]
        images: list[int] = []
        fields = {"user_id": str(user + 1), "user_desc": self._user_desc(user)}
        # fields are filled in template order so that image_items follow the token order
        for name in re.findall(r"\{(\w+)\}", template):
            if name == "purchase_history":
                # keep the most recent items (not the official right-truncation)
                hist = list(history)[-self.max_history :]
                fields[name] = " , ".join(self._mention(i, images) for i in hist)
            elif name == "candidate_items":
                fields[name] = " , ".join(self._mention(i, images) for i in candidates)
            elif name == "item_id":
                fields[name] = self.item(item)
            elif name == "item_title":
                fields[name] = self._title(item)
            elif name == "item_photo":
                if self.k:
                    images.append(int(item))
                fields[name] = self._photo()
            elif name == "review_headline":
                fields[name] = (review.headline or "no headline") if review is not None else "no headline"
            elif name == "star_rating":
                fields[name] = str(int(round(review.rating))) if review is not None else "5"
            elif name == "feature_word":
                fields[name] = review.feature if review is not None else ""
        text = " ".join(template.format(**fields).split())  # drop doubled spaces left by empty photo slots
        return Prompt(text, target, tuple(images))

    def target_text(self, pid: str, *, item: int | None = None, label: bool | None = None, review=None) -> str:
        kind = TEMPLATES[pid][2]
        if kind in ("next_item", "target_item"):
            return self.item(item)
        if kind == "yes_no":
            return "yes" if label else "no"
        if kind == "rating_explanation":
            return f"{int(round(review.rating))} , {review.explanation}"
        return review.explanation
