"""VIP5 and P5: one T5-based generative recommender, two training regimes.

VIP5 — Geng, Tan, Liu, Fu, Zhang, "VIP5: Towards Multimodal Foundation Models for
Recommendation", Findings of EMNLP 2023: multimodal personalized prompts (item ids followed
by image tokens from a mapping network over CLIP features), bottleneck adapters on a frozen
backbone (itself a P5 checkpoint trained on the same data).
P5 — Geng, Liu, Fu, Ge, Zhang, "Recommendation as Language Processing (RLP): A Unified
Pretrain, Personalized Prompt & Predict Paradigm (P5)", RecSys 2022: text-only prompts,
every parameter trained.

The paper's Table 5 variants are configurations: ``adapter_placement=self`` (self-attention
adapters only), ``self+cross``, and ``train_mode=full`` (full fine-tuning, same network).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.data.store import N_CANDIDATES
from bench.registry import register_model
from models.generative import GenerativeRecommender


@dataclass
class VIP5Config:
    image_tokens: int = 2  # image tokens per item mention; 0 = text-only prompts
    visual_encoder: str | None = None  # feature set (python -m bench features); None = the dataset's default
    adapter_placement: Literal["self", "self+cross"] = "self+cross"
    reduction_factor: int = 8  # adapter bottleneck d -> d / r
    train_mode: Literal["adapters", "full"] = "adapters"
    backbone: str | None = None  # local Hugging Face T5 directory (t5-small, a P5 checkpoint); never downloaded
    backbone_size: Literal["tiny", "small"] = "tiny"  # random-init shape when no backbone path: small = t5-small
    backbone_init: Literal["p5", "random"] = "p5"  # no backbone path: train P5 on this data first (cached), or random
    backbone_epochs: int = 10  # epochs of that P5 backbone
    beams: int = 20
    constrained: bool = True  # trie-constrained beam search (False: the official unconstrained decoding)
    scoring: Literal["exact", "beam"] = "exact"  # direct task: every candidate's log-likelihood, or beam search
    # all three task families in one training, shared by every task's job (the paper), or the
    # evaluated task's prompts only (one training per task)
    train_tasks: Literal["task", "all"] = "all"
    seq_samples_per_user: int = 4  # the official code uses 10; fewer keeps CPU epochs short
    direct_samples_per_user: int = 2  # idem (each direct prompt lists 100 candidates)
    expl_samples_per_review: int = 1  # the official code: 1 (each with its own template draw)
    # candidates listed in a training B-5..B-7 prompt (evaluation always lists 100)
    train_candidates: int = N_CANDIDATES
    max_history: int = 20  # most recent items kept in a prompt
    # how a template's {user_desc} names the user (B-5, B-6, B-3, A-4..A-6, A-8, A-9): by name, as the official
    # code (user_id2name), or "user_12" like the other templates. Names split into pieces shared between users
    # and are learned far more slowly than the id (results/long-budget/README.md: B-5 HR@10 0.265 by name vs
    # 0.483 by id, P5 seed 1 at 9,960 steps); a dataset without names always gets the id.
    user_desc: Literal["name", "id"] = "name"
    max_input_len: int = 1024
    max_target_len: int = 64
    vocab_size: int = 4000  # SentencePiece vocabulary when the backbone has no tokenizer
    # every user id ("user_12") and item id ("457") one whole token of that SentencePiece vocabulary
    # (Hua et al., "How to Index Item IDs for Recommendation Foundation Models", SIGIR-AP 2023:
    # independent indexing). The paper's P5/VIP5 split ids into T5's shared sub-word pieces
    # (id_tokens=False); on a CPU budget that is what keeps P5 from learning users (README.md, "Second
    # deviation": the command and what it measured). A backbone directory's own tokenizer is kept as
    # it is (the paper's setting).
    id_tokens: bool = True
    lr: float = 1e-3
    # learning-rate multiplier for a randomly initialised token embedding, when it trains (P5, full
    # fine-tuning; a `backbone` directory's pretrained embedding keeps lr). T5 initialises embeddings
    # with std 1.0 while Adam moves a weight by ~lr per step, so at lr 1e-3 an item id's embedding
    # needs ~1,000 steps to move by its own scale: the long flat start of a generative
    # recommender's learning curve. Not in the paper's recipe (1 = the official optimiser).
    embedding_lr_scale: float = 30.0
    # Adam's beta2 for that embedding: an id token gets a gradient only in the few prompts that name
    # it, and at 0.999 the second moment of those rare large gradients damps its steps for ~1,000
    # steps after; 0.98 (Vaswani et al.'s Transformer) forgets within ~50. 0.999 = the official optimiser.
    embedding_beta2: float = 0.999
    warmup: float = 0.1  # share of steps with linear warm-up
    weight_decay: float = 0.01
    clip: float = 5.0
    dropout: float = 0.1
    batch_size: int = 32
    eval_batch_size: int = 16  # queries per beam search call
    val_queries: int | None = 300  # per-epoch validation on a fixed subset of users / records (None = all)
    epochs: int = 10
    patience: int = 3
    amp: bool = True  # mixed precision on CUDA (bf16 where supported)


@dataclass
class P5Config(VIP5Config):
    image_tokens: int = 0
    train_mode: Literal["adapters", "full"] = "full"
    backbone_init: Literal["p5", "random"] = "random"
    warmup: float = 0.05
    clip: float = 1.0


# The embedded dataset is the laptop demo: every task x every model within ~10 minutes on 2 CPU cores
# (`python -m bench run`). The runner applies these settings on `synthetic` only, below tuned
# values and --set, and records them. One multitask P5 training (its epochs are also VIP5's
# backbone_epochs, so that the P5 row is VIP5's backbone) and one short VIP5 training on top of
# it (multitask trainings run their whole schedule and keep the last epoch; validation on 50
# users / records per task only draws their learning curves).
# - 8 sequential prompts per user and 3 per training explanation (each with its own template)
#   per epoch: with 1 per explanation the explanations stay far below the retrieval reference
#   in this budget, while the sequential prompts already get most of the steps.
# - VIP5 trains one epoch: its adapters start as the identity on a backbone that is the P5 row
#   itself, and the budget is better spent on that backbone.
# - Beam search keeps 10 beams (enough for a top-10 list; the paper's 20 on real data); training
#   lists 20 candidates per direct prompt (evaluation always lists the stored 100).
# - No dropout: at this budget the tiny network is under-fitted, so dropout regularises nothing
#   yet and slows learning (tests/models/test_generative.py memorises with dropout 0), and on a
#   CPU it costs about a third of every step (torch draws dropout masks element by element).
_SYNTHETIC = {"beams": 10, "val_queries": 50, "train_candidates": 20, "dropout": 0.0, "seq_samples_per_user": 8,
              "expl_samples_per_review": 3}
P5_SYNTHETIC_EPOCHS = 6
# and a faster embedding still: the CPU budget ends near where item ids start to be learned. Its
# Adam beta2 0.98: P5 seeds 1 and 2 at 6 epochs, test A-3 HR@10 0.132 / 0.175 at 0.999 and 0.157 / 0.203
# at 0.98, A-9 0.163 / 0.090 and 0.163 / 0.198 (direct unchanged, below pop either way; C-3 BLEU-4
# 67.4 -> 69.3, C-12 24.7 -> 21.0, above the retrieval reference's 14.1): results/README.md.
P5_SYNTHETIC = _SYNTHETIC | {"epochs": P5_SYNTHETIC_EPOCHS, "embedding_lr_scale": 100.0, "embedding_beta2": 0.98}
VIP5_SYNTHETIC = _SYNTHETIC | {"epochs": 1, "backbone_epochs": P5_SYNTHETIC_EPOCHS}


@register_model("vip5", tasks={"sequential", "direct", "explanation"}, config=VIP5Config)
class VIP5(GenerativeRecommender):
    """VIP5 (Geng et al., EMNLP Findings 2023): multimodal prompts, adapters on a frozen P5 backbone."""

    REQUIRES_IF = {"features": "image_tokens"}  # visual features unless image_tokens=0 (bench/registry.py)
    DATASET_DEFAULTS = {"synthetic": VIP5_SYNTHETIC}
    RUN_COST = 4  # the longest job of a task (its P5 backbone, then itself): started first by `bench run --jobs`
    SHARED_TRAININGS = ("p5", "vip5")  # cached trainings it may run (bench/run/runner.py schedules around them)

    # one task's prompts keep the contract test short; multitask training has tests of its own
    # (20 candidates per training prompt, as on the embedded dataset: evaluation still lists 100)
    CONTRACT_OVERRIDES = {"backbone_init": "random", "beams": 10, "epochs": 1, "seq_samples_per_user": 1,
                          "direct_samples_per_user": 1, "vocab_size": 300, "train_tasks": "task",
                          "train_candidates": 20}


@register_model("p5", tasks={"sequential", "direct", "explanation"}, config=P5Config)
class P5(GenerativeRecommender):
    """P5 (Geng et al., RecSys 2022): text-only prompts, full fine-tuning of the same T5 network."""

    REQUIRES_IF = {"features": "image_tokens"}  # text-only by default (image_tokens=0): no features
    DATASET_DEFAULTS = {"synthetic": P5_SYNTHETIC}
    RUN_COST = 2
    SHARED_TRAININGS = ("p5",)

    CONTRACT_OVERRIDES = VIP5.CONTRACT_OVERRIDES
