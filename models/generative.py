"""The generative recommender behind `vip5` and `p5`: prompts in, item ids or explanations out.

Geng et al., "VIP5: Towards Multimodal Foundation Models for Recommendation", Findings of
EMNLP 2023; Geng et al., "Recommendation as Language Processing (P5)", RecSys 2022.

Training: as in the paper, one model per (dataset, seed, config) learns every task family
from mixed prompts (``train_tasks="all"``, the default) and is evaluated on each task: the job
of the first task trains it and caches it under a key of its config, the data, the tokenizer and
this code; the other tasks' jobs, and VIP5 (whose backbone is exactly that P5), reuse it.
Per epoch: `seq_samples_per_user` sequential samples per user (distinct target positions while
the sequence has enough), `direct_samples_per_user` direct ones, `expl_samples_per_review`
per training explanation record, each with a template drawn uniformly from the task's training
templates (the unseen ones held out); negatives come from the user's training items only, like
every baseline's. AdamW, warm-up then linear decay, gradient clipping, CUDA mixed precision (bf16 if supported).
Under torchrun every process draws the same samples and batches (same seed) and trains on its
own share of the batches, with DistributedDataParallel averaging the gradients (`batch_size` per process).
Evaluation: sequential = beam search (20 beams, beam score = the sequence's log-likelihood) constrained
by a prefix trie to valid item ids, less the user's history (`RankQuery.exclude`); direct = exact scoring
of the query's 100 candidates by each candidate id's log-likelihood (``scoring="beam"``: trie-constrained
beam search, ``constrained=False`` the official unconstrained one); greedy decoding for explanations.
"""

from __future__ import annotations

import math
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from bench import distributed
from bench.data import BenchData
from bench.model import TrainingCheckpoint, torch_param_counts
from bench.progress import progress
from bench.tasks import DIRECT, EXPLANATION, SEQUENTIAL
from models.network import MAX_WORDS, VIP5Net, build_backbone
from models.prompts import TEMPLATES, Prompt, PromptRenderer, eval_templates, train_templates
from models.tokenizer import PromptTokenizer
from models.trie import Trie, allowed_tokens_fn

# transformers 4.57 warns on every generate() step about the `adapters` library's legacy cache tuples (harmless)
warnings.filterwarnings("ignore", message=r".*past_key_value.*", category=FutureWarning)


class GenerativeRecommender(TrainingCheckpoint):
    """Shared engine; `vip5` and `p5` differ only in their config defaults (models/vip5.py).
    Resumable: `train` keeps its optimizer, schedule and grad scaler in `_train_state`, which
    TrainingCheckpoint saves after every epoch with the network and `self.rng`."""

    DISTRIBUTED = True  # trains under torchrun with DDP (bench/distributed.py); the runner refuses other models there

    def __init__(self, cfg, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        self.cfg, self.data, self.task, self.device, self.seed = cfg, data, task, device, seed
        self.name = getattr(type(self), "registered_name", "generative")
        self.k = cfg.image_tokens
        self.feats = None
        if self.k:
            data.require("features", self.name)
            self.feats = torch.from_numpy(data.features(cfg.visual_encoder)).to(device)  # [n_items, f]
        self.render = PromptRenderer(data, self.k, cfg.max_history, user_desc=cfg.user_desc)
        self.train_tasks = [task] if cfg.train_tasks == "task" else list(data.tasks)
        self.rng = np.random.default_rng(seed)
        self.review_of = {(r.user, r.item): r for r in data.reviews}
        # each user's training items (validation and test targets excluded): the negatives'
        # exclusion set, as for every baseline — no test information reaches training
        self.seen = [set(s.tolist()) for s in data.train_sequences()]
        self.tok = self._tokenizer()
        t5 = build_backbone(cfg.backbone, cfg.backbone_size, self.tok.vocab_size, cfg.dropout)
        self.net = VIP5Net(t5, self.tok.img_id, self.k, None if self.feats is None else self.feats.shape[1])
        self.training = {"tasks": self.train_tasks}  # what trained this model: shown in every record
        if cfg.backbone is None and cfg.backbone_init == "p5":
            from models.shared import load_p5_backbone

            self.training["backbone"] = load_p5_backbone(self)
        if cfg.train_mode == "adapters":
            self.net.add_adapters(cfg.adapter_placement, cfg.reduction_factor)
        self.net.to(device)
        # token ids of every item's id string (+ end of sequence): the constrained decoding alphabet
        self.item_tokens = [self.tok.encode(self.render.item(i)) + [self.tok.eos_id] for i in range(data.n_items)]
        self.full_trie = Trie(self.item_tokens)
        self.max_item_tokens = max(len(t) for t in self.item_tokens)

    # ------------------------------------------------------------------ set-up

    def _cache(self) -> Path:
        return self.data.path / "cache" / self.data.indexing

    def _tokenizer(self) -> PromptTokenizer:
        if self.cfg.backbone:
            tok = PromptTokenizer.from_backbone(Path(self.cfg.backbone))
            if tok is not None:
                return tok
        # a text-only corpus of every task's prompts, independent of the run seed and of
        # image_tokens, so that P5 and VIP5 on one dataset share one cached tokenizer
        rng = np.random.default_rng(0)
        text = PromptRenderer(self.data, 0, self.cfg.max_history, user_desc=self.cfg.user_desc)
        users = rng.permutation(self.data.n_users)[:3000]
        corpus = [s for p in self._samples(rng, text, list(self.data.tasks), users) for s in (p.text, p.target)]
        corpus += [it.title for it in self.data.items if it.title]
        ids = text.id_tokens() if self.cfg.id_tokens else []
        return PromptTokenizer.train(corpus, self._cache() / "tokenizers", self.cfg.vocab_size, ids)

    # ------------------------------------------------------------------ samples

    def _negatives(self, u: int, rng, n: int = 1, also: int | None = None) -> list[int]:
        """`n` items outside user `u`'s training items (and not `also`), drawn uniformly with
        repeats (as the official code). A user who has seen (nearly) every item gets any other item."""
        seen = self.seen[u] | ({also} if also is not None else set())
        if len(seen) >= self.data.n_items:
            seen = {also} if also is not None else set()
        out: list[int] = []
        for _ in range(50 * n):  # rejection sampling: fast while most items are unseen
            i = int(rng.integers(self.data.n_items))
            if i not in seen:
                out.append(i)
                if len(out) == n:
                    return out
        pool = np.setdiff1d(np.arange(self.data.n_items), np.fromiter(seen, dtype=np.int64))  # a dense user
        return out + rng.choice(pool, size=n - len(out)).tolist()

    def _positions(self, rng, length: int, n: int) -> list[int]:
        """`n` target positions in a training sequence of `length` items: distinct while there are
        enough (each transition is seen once before any is seen twice), then drawn again."""
        choices = np.arange(1, length)
        picks = []
        while len(picks) < n:
            picks += rng.permutation(choices)[: n - len(picks)].tolist()
        return picks

    def _samples(self, rng, render: PromptRenderer, tasks, users=None) -> list[Prompt]:
        cfg, out = self.cfg, []
        train = self.data.train_sequences()
        users = range(self.data.n_users) if users is None else users
        for task in (SEQUENTIAL, DIRECT):
            if task not in tasks:
                continue
            pids = train_templates(task)
            n = cfg.seq_samples_per_user if task == SEQUENTIAL else cfg.direct_samples_per_user
            for u in users:
                s = train[u]
                if task == SEQUENTIAL and len(s) < 2:
                    continue
                spots = self._positions(rng, len(s), n) if task == SEQUENTIAL else rng.integers(len(s), size=n)
                for j in spots:
                    pid = pids[rng.integers(len(pids))]
                    hist, pos = (s[:j], int(s[j])) if task == SEQUENTIAL else (s, int(s[j]))
                    if TEMPLATES[pid][2] == "yes_no":  # 50% the true item ("yes"), 50% a never-interacted one
                        label = bool(rng.random() < 0.5)
                        item = pos if label else self._negatives(u, rng)[0]
                        out.append(render.render(pid, user=u, history=hist, item=item, target="yes" if label else "no"))
                    elif task == SEQUENTIAL:
                        out.append(render.render(pid, user=u, history=hist, target=render.item(pos)))
                    else:
                        cands = [pos] + self._negatives(u, rng, cfg.train_candidates - 1, also=pos)
                        rng.shuffle(cands)
                        out.append(render.render(pid, user=u, candidates=cands, target=render.item(pos)))
        if EXPLANATION in tasks:
            pids = train_templates(EXPLANATION)
            for r in self.data.review_split("train"):
                for pid in [pids[rng.integers(len(pids))] for _ in range(cfg.expl_samples_per_review)]:
                    out.append(render.render(pid, user=r.user, item=r.item, review=r,
                                             target=render.target_text(pid, review=r)))
        return out

    def _encode_inputs(self, prompts: list[Prompt]):
        """-> input_ids, word_ids, attention_mask [B, L] on device, image_feats [M, f] or None."""
        cfg, tok = self.cfg, self.tok
        rows, words, feats_idx = [], [], []
        for p in prompts:
            ids = tok.encode(p.text)[: cfg.max_input_len - 1] + [tok.eos_id]
            # whole-word ids step at each word-initial piece and at each image token
            w, n, wid = 0, 0, []
            for t in ids:
                if t == tok.img_id or tok.is_word_start(t):
                    w += 1
                wid.append(min(w, MAX_WORDS - 1))  # never reached: a prompt has fewer words than tokens
                n += t == tok.img_id
            if self.k:
                feats_idx.extend(p.image_items[: n // self.k])  # fewer if truncation cut mentions off
            rows.append(ids)
            words.append(wid)
        L = max(len(r) for r in rows)
        ids_t = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
        word_t = torch.zeros((len(rows), L), dtype=torch.long)
        for b, (r, w) in enumerate(zip(rows, words, strict=True)):
            ids_t[b, : len(r)], word_t[b, : len(w)] = torch.tensor(r), torch.tensor(w)
        mask = (ids_t != tok.pad_id).long()
        feats = self.feats[torch.tensor(feats_idx, dtype=torch.long, device=self.device)] if self.k else None
        return ids_t.to(self.device), word_t.to(self.device), mask.to(self.device), feats

    def _encode_targets(self, prompts: list[Prompt]) -> torch.Tensor:
        rows = [self.tok.encode(p.target)[: self.cfg.max_target_len - 1] + [self.tok.eos_id] for p in prompts]
        labels = torch.full((len(rows), max(map(len, rows))), -100, dtype=torch.long)  # -100: ignored by the loss
        for b, r in enumerate(rows):
            labels[b, : len(r)] = torch.tensor(r)
        return labels.to(self.device)

    def _batches(self, samples: list[Prompt]) -> list[np.ndarray]:
        """Shuffled batches of similar prompt length: a direct prompt lists 100 candidates
        (~750 tokens) and a yes/no prompt ~30, so random batches would pad everything to the
        longest. Sort within shuffled chunks of 50 batches, then shuffle the batches."""
        bs = self.cfg.batch_size
        order = self.rng.permutation(len(samples))
        length = np.array([len(p.text) for p in samples])
        batches = []
        for c in range(0, len(order), 50 * bs):
            chunk = order[c : c + 50 * bs]
            chunk = chunk[np.argsort(length[chunk], kind="stable")]
            batches += [chunk[i : i + bs] for i in range(0, len(chunk), bs)]
        return [batches[i] for i in self.rng.permutation(len(batches))]

    def _autocast(self):
        if not (self.device.startswith("cuda") and self.cfg.amp):
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)

    # ------------------------------------------------------------------ training

    def fit(self, log) -> None:
        """Train, or — multitask (``train_tasks="all"``) — reuse the training another task's job
        of the same model, config, data and seed already did (models/shared.py)."""
        if self.cfg.train_tasks == "all":
            from models.shared import fit_shared

            fit_shared(self, log)
        else:
            self.train(log)

    def optimizer(self, steps: int):
        """-> (AdamW, its warm-up/decay schedule over `steps`, the grad scaler, trainable params)."""
        from transformers import get_linear_schedule_with_warmup

        cfg = self.cfg
        params = [p for p in self.net.parameters() if p.requires_grad]
        emb = self.net.t5.get_input_embeddings().weight  # tied with the output layer
        groups = [{"params": [p for p in params if p is not emb], "lr": cfg.lr}]
        if emb.requires_grad:  # a randomly initialised embedding learns faster (config comment)
            scale = 1.0 if cfg.backbone else cfg.embedding_lr_scale  # a pretrained one keeps the paper's lr
            groups.append({"params": [emb], "lr": cfg.lr * scale, "betas": (0.9, cfg.embedding_beta2)})
        opt = torch.optim.AdamW(groups, lr=cfg.lr, eps=1e-6, weight_decay=cfg.weight_decay)
        sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * steps), steps)
        scaler = torch.amp.GradScaler("cuda", enabled=self.device.startswith("cuda") and cfg.amp
                                      and not torch.cuda.is_bf16_supported())
        return opt, sched, scaler, params

    def train_step(self, net, batch: list[Prompt], opt, sched, scaler, params) -> float:
        """One optimizer step on `batch` (forward, backward, clipping, AdamW, schedule) -> the loss."""
        ids, words, mask, feats = self._encode_inputs(batch)
        with self._autocast():
            loss = net(ids, words, mask, feats, self._encode_targets(batch))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, self.cfg.clip)
        scaler.step(opt)
        scaler.update()
        sched.step()
        return loss.item()

    def train(self, log) -> None:
        cfg = self.cfg
        samples = self._samples(self.rng, self.render, self.train_tasks)
        steps = distributed.shard_len(math.ceil(len(samples) / cfg.batch_size)) * cfg.epochs  # this process's
        opt, sched, scaler, params = self.optimizer(steps)
        self._train_state = {"opt": opt, "sched": sched, "scaler": scaler}  # checkpointed with the net each epoch
        # the net itself in one process; under torchrun, DDP. Prompts without an item image leave
        # the mapping network out of the graph, which DDP must be told it may see.
        net = distributed.wrap(self.net, self.device, find_unused_parameters=self.net.mapping is not None)
        for epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            if epoch > 1:  # fresh samples (positions, negatives, templates) every epoch
                samples = self._samples(self.rng, self.render, self.train_tasks)
            self.net.train()
            batches = distributed.shard(self._batches(samples))
            total, done = 0.0, 0
            for idx in progress(batches, desc=f"{self.name} epoch {epoch}"):  # ends early at a --time-limit
                total += self.train_step(net, [samples[i] for i in idx], opt, sched, scaler, params)
                done += 1
            log.add_steps(done)
            log.loss(distributed.mean(total, max(done, 1)))  # over every process's batches

    # ------------------------------------------------------------------ inference

    def variants(self, task: str) -> list[str]:
        """Evaluation prompts: the seen one, then the unseen one (a record per prompt)."""
        return eval_templates(task)

    def decoding(self, task: str) -> str:
        """How this model ranks or writes for `task` (kept in each record, shown under the tables)."""
        if task == EXPLANATION:
            return "greedy"
        if task == DIRECT and self.cfg.scoring == "exact":
            return "exact candidate log-likelihood"
        how = "trie-constrained" if self.cfg.constrained else "unconstrained"
        return f"beam search ({self.cfg.beams} beams, {how})"

    def _prompts(self, pid: str, queries) -> list[Prompt]:
        return [self.render.render(pid, user=q.user, history=q.history,
                                   candidates=() if q.candidates is None else q.candidates.tolist(), target="")
                for q in queries]

    @torch.no_grad()
    def _generate(self, prompts: list[Prompt], **kw):
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # the same legacy-cache notice, logged instead of warned
        self.net.eval()
        ids, words, mask, feats = self._encode_inputs(prompts)
        with self._autocast():
            emb = self.net.embed(ids, words, feats)
            return self.net.t5.generate(inputs_embeds=emb, attention_mask=mask, **kw)

    def rank(self, queries, k: int, variant: str | None = None) -> list[list[int]]:
        """Top items per query: the `k` best valid items; with beam search, beams that decoded to
        no valid item follow as -1 (the evaluator ranks only the valid ones and counts these in
        `invalid_rate`), so an invalid beam never takes a place in the top k. The trie leaves a
        query's `exclude` items out; unconstrained beams may decode them (the evaluator drops them)."""
        pid = variant or eval_templates(self.task)[0]
        if self.cfg.scoring == "exact" and queries and queries[0].candidates is not None:
            return self._rank_exact(pid, queries, k)
        return self._rank_beam(pid, queries, k)

    @torch.no_grad()
    def _rank_exact(self, pid: str, queries, k: int) -> list[list[int]]:
        from models.scoring import candidate_log_likelihoods

        self.net.eval()
        out: list[list[int]] = []
        for start in progress(range(0, len(queries), self.cfg.eval_batch_size), desc=f"{self.name} {pid} scoring"):
            batch = queries[start : start + self.cfg.eval_batch_size]
            ids, words, mask, feats = self._encode_inputs(self._prompts(pid, batch))
            with self._autocast():
                enc = self.net.t5.get_encoder()(inputs_embeds=self.net.embed(ids, words, feats),
                                                attention_mask=mask).last_hidden_state  # [B, L, d]
                scores = candidate_log_likelihoods(self.net.t5, enc, mask,
                                                   [[self.item_tokens[c] for c in q.candidates] for q in batch],
                                                   self.tok.pad_id)
            for q, s in zip(batch, scores, strict=True):
                best = torch.argsort(-s, stable=True)[:k]  # ties keep the stored candidate order
                out.append([int(q.candidates[i]) for i in best])
        return out

    def _rank_beam(self, pid: str, queries, k: int) -> list[list[int]]:
        cfg = self.cfg
        beams = max(cfg.beams, k)
        out: list[list[int]] = []
        for start in progress(range(0, len(queries), cfg.eval_batch_size), desc=f"{self.name} {pid} beam search"):
            batch = queries[start : start + cfg.eval_batch_size]
            # length_penalty 0: a beam scores its summed log-likelihood (Hugging Face's 1.0 favours longer ids)
            kw = dict(num_beams=beams, num_return_sequences=beams, max_new_tokens=self.max_item_tokens,
                      early_stopping=True, length_penalty=0.0)
            if cfg.constrained:
                tries = [self.full_trie if q.candidates is None else Trie(self.item_tokens[c] for c in q.candidates)
                         for q in batch]
                gone = [None if q.exclude is None else [self.item_tokens[i] for i in q.exclude] for q in batch]
                kw["prefix_allowed_tokens_fn"] = allowed_tokens_fn(tries, self.tok.eos_id, self.tok.pad_id, gone)
            seqs = self._generate(self._prompts(pid, batch), **kw).view(len(batch), beams, -1)  # [B, beams, T] best 1st
            out += [self.render.beam_items([self.tok.decode(s.tolist()) for s in row], k) for row in seqs]
        return out

    def explain(self, queries, variant: str | None = None) -> list[str]:
        cfg = self.cfg
        pid = variant or eval_templates(EXPLANATION)[0]
        out: list[str] = []
        for start in progress(range(0, len(queries), cfg.eval_batch_size * 4), desc=f"{self.name} {pid} decoding"):
            batch = queries[start : start + cfg.eval_batch_size * 4]
            prompts = [self.render.render(pid, user=q.user, item=q.item, review=self.review_of.get((q.user, q.item)),
                                          target="") for q in batch]
            seqs = self._generate(prompts, num_beams=1, do_sample=False, max_new_tokens=cfg.max_target_len)
            out.extend(self.tok.decode(s.tolist()) for s in seqs)
        return out

    # ------------------------------------------------------------------ state

    def record_extras(self, task: str) -> dict:
        """Fields this model adds to each record: how it decoded, its real vocabulary, its training."""
        return {"decoding": self.decoding(task), "tokenizer": self.tok.describe(self.cfg.vocab_size),
                "training": self.training}

    def id_embeddings(self) -> dict[str, np.ndarray]:
        """Each user's and item's id vector: the mean input embedding of its id's tokens (one with id_tokens)."""
        emb = self.net.t5.get_input_embeddings().weight.detach().float().cpu().numpy()  # [vocab, d]
        users = [self.tok.encode(self.render.user(u)) for u in range(self.data.n_users)]
        return {"users": np.stack([emb[t].mean(0) for t in users]),
                "items": np.stack([emb[t[:-1]].mean(0) for t in self.item_tokens])}  # t[-1]: end of sequence

    def save(self, path: Path) -> None:
        from bench.io import atomic_torch_save

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(path / "net.pt", self.net.state_dict())  # a kill mid-write leaves the old file whole
        self.tok.save(path)

    def load(self, path: Path) -> None:
        self.net.load_state_dict(torch.load(Path(path) / "net.pt", map_location=self.device, weights_only=True))

    def num_params(self) -> tuple[int, int]:
        return torch_param_counts(self.net)
