"""The generative recommender behind `vip5` and `p5`: prompts in, item ids or explanations out.

Geng et al., "VIP5: Towards Multimodal Foundation Models for Recommendation", Findings of
EMNLP 2023; Geng et al., "Recommendation as Language Processing (P5)", RecSys 2022.

Training: per epoch, `seq_samples_per_user` sequential and `direct_samples_per_user` direct
samples per user and one sample per training explanation record, each with a template drawn
uniformly from the task's training templates (the unseen ones held out); AdamW, linear
warm-up then linear decay, gradient clipping, mixed precision on CUDA (bf16 where supported).
Under torchrun every process draws the same samples and batches (same seed) and trains on its
own share of the batches, with DistributedDataParallel averaging the gradients: `batch_size` is
per process.
Evaluation: beam search (20 beams) constrained by a prefix trie to valid item ids (all items
for sequential, the query's 100 candidates for direct); greedy decoding for explanations.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import warnings
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bench import distributed
from bench.data import BenchData
from bench.io import file_lock
from bench.model import torch_param_counts
from bench.train import progress
from models.network import VIP5Net, build_backbone
from models.prompts import TEMPLATES, Prompt, PromptRenderer, eval_templates, train_templates
from models.tokenizer import PromptTokenizer
from models.trie import Trie, allowed_tokens_fn

# transformers 4.57 warns on every generate() step about the `adapters` library's legacy cache
# tuples (harmless; it converts them); keep the per-epoch progress readable
warnings.filterwarnings("ignore", message=r".*past_key_value.*", category=FutureWarning)


class GenerativeRecommender:
    """Shared engine; `vip5` and `p5` differ only in their config defaults (models/vip5.py)."""

    DISTRIBUTED = True  # trains under torchrun with DDP (bench/distributed.py); the runner refuses other models there

    def __init__(self, cfg, data: BenchData, *, task: str, device: str = "cpu", seed: int = 0):
        self.cfg, self.data, self.task, self.device, self.seed = cfg, data, task, device, seed
        self.name = getattr(type(self), "registered_name", "generative")
        self.k = cfg.image_tokens
        self.feats = None
        if self.k:
            data.require("features", self.name)
            self.feats = torch.from_numpy(data.features(cfg.visual_encoder)).to(device)  # [n_items, f]
        self.render = PromptRenderer(data, self.k, cfg.max_history)
        self.train_tasks = [task] if cfg.train_tasks == "task" else list(data.tasks)
        self.rng = np.random.default_rng(seed)
        self.review_of = {(r.user, r.item): r for r in data.reviews}
        self.tok = self._tokenizer()
        t5 = build_backbone(cfg.backbone, cfg.backbone_size, self.tok.vocab_size, cfg.dropout)
        self.net = VIP5Net(t5, self.tok.img_id, self.k, None if self.feats is None else self.feats.shape[1])
        if cfg.backbone is None and cfg.backbone_init == "p5":
            self.net.load_state_dict(self._p5_backbone_state(), strict=False)  # mapping network stays new
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
        text = PromptRenderer(self.data, 0, self.cfg.max_history)
        users = rng.permutation(self.data.n_users)[:3000]
        corpus = [s for p in self._samples(rng, text, list(self.data.tasks), users) for s in (p.text, p.target)]
        corpus += [it.title for it in self.data.items if it.title]
        return PromptTokenizer.train(corpus, self._cache() / "tokenizers", self.cfg.vocab_size)

    def _p5_backbone_state(self) -> dict:
        """VIP5's default backbone: a P5 model trained on the same data (on demand, cached)."""
        from models.vip5 import P5Config

        c = self.cfg
        # the backbone sees what VIP5 would see in training: same sample budget, every task's prompts
        p5_cfg = P5Config(backbone_size=c.backbone_size, epochs=c.backbone_epochs, train_tasks="all",
                          vocab_size=c.vocab_size, max_history=c.max_history, batch_size=c.batch_size, dropout=c.dropout,
                          seq_samples_per_user=c.seq_samples_per_user, direct_samples_per_user=c.direct_samples_per_user,
                          train_candidates=c.train_candidates)
        key = hashlib.sha256(json.dumps([asdict(p5_cfg), self.data.manifest.get("created"), self.seed]).encode()).hexdigest()[:12]
        path = self._cache() / "p5-backbone" / f"{c.backbone_size}-{key}" / "net.pt"
        # jobs side by side (bench run --jobs) wait for one another instead of training it twice
        lock = nullcontext() if distributed.active() else file_lock(path.parent.with_suffix(".lock"))
        with lock:
            return self._p5_backbone_train_or_load(p5_cfg, path)

    def _p5_backbone_train_or_load(self, p5_cfg, path: Path) -> dict:
        from models.vip5 import P5

        # under torchrun every rank must take the same branch: training the backbone is collective
        if not distributed.broadcast(path.exists()):
            if distributed.is_main():
                print(f"[{self.name}] training its P5 backbone ({p5_cfg.epochs} epochs, cached at {path.parent})",
                      file=sys.stderr, flush=True)
            from bench.train import FitLog

            p5 = P5(p5_cfg, self.data, task=self.task, device=self.device, seed=self.seed)
            p5.fit(FitLog(None, "loss", name=f"{self.name}/p5-backbone"))
            if distributed.is_main():
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save(p5.net.state_dict(), tmp)
                tmp.replace(path)
            distributed.barrier()  # the file is there before any rank reads it
        return torch.load(path, map_location="cpu", weights_only=True)

    # ------------------------------------------------------------------ samples

    def _negatives(self, u: int, rng, n: int = 1) -> list[int]:
        """`n` items user `u` never interacted with, drawn uniformly (repeats possible, as in the official code)."""
        seen = set(self.data.sequences[u].tolist())  # once per prompt, not once per negative
        out: list[int] = []
        while len(out) < n:
            i = int(rng.integers(self.data.n_items))
            if i not in seen:
                out.append(i)
        return out

    def _samples(self, rng, render: PromptRenderer, tasks, users=None) -> list[Prompt]:
        cfg, out = self.cfg, []
        train = self.data.train_sequences()
        users = range(self.data.n_users) if users is None else users
        for task in ("sequential", "direct"):
            if task not in tasks:
                continue
            pids = train_templates(task)
            n = cfg.seq_samples_per_user if task == "sequential" else cfg.direct_samples_per_user
            for u in users:
                s = train[u]
                for _ in range(n):
                    pid = pids[rng.integers(len(pids))]
                    if task == "sequential":
                        if len(s) < 2:
                            break
                        j = int(rng.integers(1, len(s)))
                        hist, pos = s[:j], int(s[j])
                    else:
                        hist, pos = s, int(s[rng.integers(len(s))])
                    if TEMPLATES[pid][2] == "yes_no":  # 50% the true item ("yes"), 50% a never-interacted one
                        label = bool(rng.random() < 0.5)
                        item = pos if label else self._negatives(u, rng)[0]
                        out.append(render.render(pid, user=u, history=hist, item=item, target="yes" if label else "no"))
                    elif task == "sequential":
                        out.append(render.render(pid, user=u, history=hist, target=render.item(pos)))
                    else:
                        cands = [pos] + self._negatives(u, rng, cfg.train_candidates - 1)
                        rng.shuffle(cands)
                        out.append(render.render(pid, user=u, candidates=cands, target=render.item(pos)))
        if "explanation" in tasks:
            pids = train_templates("explanation")
            for r in self.data.review_split("train"):
                pid = pids[rng.integers(len(pids))]
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
                wid.append(min(w, 511))
                n += t == tok.img_id
            if self.k:
                feats_idx.extend(p.image_items[: n // self.k])  # fewer if truncation cut mentions off
            rows.append(ids)
            words.append(wid)
        L = max(len(r) for r in rows)
        ids_t = torch.full((len(rows), L), tok.pad_id, dtype=torch.long)
        word_t = torch.zeros((len(rows), L), dtype=torch.long)
        for b, (r, w) in enumerate(zip(rows, words, strict=True)):
            ids_t[b, : len(r)] = torch.tensor(r)
            word_t[b, : len(w)] = torch.tensor(w)
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
        if self.device.startswith("cuda") and self.cfg.amp:
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return nullcontext()

    # ------------------------------------------------------------------ training

    def fit(self, log) -> None:
        from transformers import get_linear_schedule_with_warmup

        cfg = self.cfg
        params = [p for p in self.net.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, eps=1e-6, weight_decay=cfg.weight_decay)
        samples = self._samples(self.rng, self.render, self.train_tasks)
        steps = distributed.shard_len(math.ceil(len(samples) / cfg.batch_size)) * cfg.epochs  # this process's
        sched = get_linear_schedule_with_warmup(opt, int(cfg.warmup * steps), steps)
        scaler = torch.amp.GradScaler("cuda", enabled=self.device.startswith("cuda") and cfg.amp
                                      and not torch.cuda.is_bf16_supported())
        self._train_state = {"opt": opt, "sched": sched, "scaler": scaler}  # checkpointed with the net each epoch
        # the net itself in one process; under torchrun, DDP. Prompts without an item image leave
        # the mapping network out of the graph, which DDP must be told it may see.
        net = distributed.wrap(self.net, self.device, find_unused_parameters=self.net.mapping is not None)
        for epoch in log.epochs(self, max_epochs=cfg.epochs, patience=cfg.patience):
            if epoch > 1:  # fresh samples (positions, negatives, templates) every epoch
                samples = self._samples(self.rng, self.render, self.train_tasks)
            self.net.train()
            batches = distributed.shard(self._batches(samples))
            total = 0.0
            for idx in progress(batches, desc=f"{self.name} epoch {epoch}"):
                batch = [samples[i] for i in idx]
                ids, words, mask, feats = self._encode_inputs(batch)
                with self._autocast():
                    loss = net(ids, words, mask, feats, self._encode_targets(batch))
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, cfg.clip)
                scaler.step(opt)
                scaler.update()
                sched.step()
                total += loss.item()
            log.loss(distributed.mean(total, len(batches)))  # over every process's batches

    # ------------------------------------------------------------------ inference

    def variants(self, task: str) -> list[str]:
        """Evaluation prompts: the seen one, then the unseen one (a record per prompt)."""
        return eval_templates(task)

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
        cfg = self.cfg
        pid = variant or eval_templates(self.task)[0]
        beams = max(cfg.beams, k)
        out: list[list[int]] = []
        for start in progress(range(0, len(queries), cfg.eval_batch_size), desc=f"{self.name} {pid} beam search"):
            batch = queries[start : start + cfg.eval_batch_size]
            prompts = [self.render.render(pid, user=q.user, history=q.history,
                                          candidates=() if q.candidates is None else q.candidates.tolist(), target="")
                       for q in batch]
            kw = dict(num_beams=beams, num_return_sequences=beams, max_new_tokens=self.max_item_tokens, early_stopping=True)
            if cfg.constrained:
                tries = [self.full_trie if q.candidates is None else Trie(self.item_tokens[c] for c in q.candidates)
                         for q in batch]
                kw["prefix_allowed_tokens_fn"] = allowed_tokens_fn(tries, self.tok.eos_id, self.tok.pad_id)
            seqs = self._generate(prompts, **kw).view(len(batch), beams, -1)  # [B, beams, T], best beam first
            for b in range(len(batch)):
                ranked: list[int] = []
                for s in seqs[b]:
                    item = self.render.parse_item(self.tok.decode(s.tolist()))
                    item = -1 if item is None else item  # not an item id: counted as invalid by the evaluator
                    if item == -1 or item not in ranked:
                        ranked.append(item)
                out.append(ranked[:k])
        return out

    def explain(self, queries, variant: str | None = None) -> list[str]:
        cfg = self.cfg
        pid = variant or eval_templates("explanation")[0]
        out: list[str] = []
        for start in progress(range(0, len(queries), cfg.eval_batch_size * 4), desc=f"{self.name} {pid} decoding"):
            batch = queries[start : start + cfg.eval_batch_size * 4]
            prompts = [self.render.render(pid, user=q.user, item=q.item, review=self.review_of.get((q.user, q.item)),
                                          target="") for q in batch]
            seqs = self._generate(prompts, num_beams=1, do_sample=False, max_new_tokens=cfg.max_target_len)
            out.extend(self.tok.decode(s.tolist()) for s in seqs)
        return out

    # ------------------------------------------------------------------ state

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.net.state_dict(), path / "net.pt")
        self.tok.save(path)

    def load(self, path: Path) -> None:
        self.net.load_state_dict(torch.load(Path(path) / "net.pt", map_location=self.device, weights_only=True))

    def save_training_state(self, path: Path) -> None:
        """Everything needed to resume training after this epoch (FitLog calls it every epoch)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.state_dict() for k, v in self._train_state.items()}
        state |= {"net": self.net.state_dict(), "rng": self.rng.bit_generator.state}
        tmp = path / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(path / "state.pt")

    def load_training_state(self, path: Path) -> None:
        state = torch.load(Path(path) / "state.pt", map_location=self.device, weights_only=False)
        self.net.load_state_dict(state["net"])
        for k, v in self._train_state.items():
            v.load_state_dict(state[k])
        self.rng.bit_generator.state = state["rng"]

    def num_params(self) -> tuple[int, int]:
        return torch_param_counts(self.net)
