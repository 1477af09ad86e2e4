"""One multitask training per (model, dataset, seed, config), shared by every task's job, and
VIP5's backbone: the P5 model of that same kind of training.

The paper trains one P5 per dataset on the prompts of all three task families and evaluates it
on each task, and VIP5 starts from that P5 (Geng et al., Findings of EMNLP 2023, Section 4.1).
Here the first job that needs a training does it and caches the network under
``<dataset>/cache/<indexing>/trained/<model>-<key>/``; the key hashes everything the trained
weights depend on — the training config (not the decoding settings), the seed, the data files,
the tokenizer and the source of models/ — so a change to any of them trains anew and a stale
model is never reused. A file lock makes jobs side by side wait for one another instead of
training the same model twice. The P5 row of the tables is therefore exactly VIP5's backbone.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import torch

from bench import distributed
from bench.config import build_config
from bench.errors import UsageError
from bench.io import atomic_torch_save, atomic_write_json, file_lock
from bench.registry import get_model
from bench.tasks import get_task

# config keys that change only how a trained model decodes, never its weights
DECODING_KEYS = frozenset({"beams", "constrained", "scoring", "eval_batch_size"})
BACKBONE_MODEL = "p5"  # the registered model VIP5 is built on (looked up, not imported: models/vip5.py imports this)
# keys VIP5 hands on to the P5 model it is built on (the rest of that P5 config is P5's own defaults)
BACKBONE_KEYS = ("backbone_size", "vocab_size", "max_history", "user_desc", "max_input_len", "max_target_len",
                 "batch_size", "dropout", "seq_samples_per_user", "direct_samples_per_user", "expl_samples_per_review",
                 "train_candidates", "val_queries", "amp")
MODELS_DIR = Path(__file__).resolve().parent


def code_version() -> str:
    """Hash of the source of models/: any change to prompts, tokenizer, network or training."""
    h = hashlib.sha256()
    for p in sorted(MODELS_DIR.glob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()[:12]


def training_config(cfg) -> dict:
    """The config keys the trained weights depend on (unused ones dropped, so that a P5 job and
    VIP5's backbone with the same settings share one training)."""
    out = {k: v for k, v in asdict(cfg).items() if k not in DECODING_KEYS}
    if cfg.train_mode == "full":
        out.pop("adapter_placement", None)
        out.pop("reduction_factor", None)
    if not cfg.image_tokens:
        out.pop("visual_encoder", None)
    if cfg.backbone or cfg.backbone_init == "random":
        out.pop("backbone_epochs", None)
    return out


def training_key(model) -> str:
    data = model.data
    parts = {
        "model": model.name, "config": training_config(model.cfg), "seed": model.seed, "indexing": data.indexing,
        "data": data.manifest.get("files"), "tokenizer": model.tok.fingerprint(), "code": code_version(),
        "backbone": model.training.get("backbone", {}).get("id"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _validate_all(model):
    """Per-epoch validation of a multitask model on every task it trains (the seen prompt, a
    fixed subset of `val_queries`): one score per task, and their mean as the monitor, so the
    kept epoch does not depend on which task's job ran the training."""
    from bench.evaluate import evaluate

    def validate() -> dict[str, float]:
        out = {}
        for task in model.train_tasks:
            m = evaluate(model, model.data, task, "val", model.variants(task)[0], limit=model.cfg.val_queries).metrics
            t = get_task(task)
            out[f"{task}/{t.monitor}"] = m[t.monitor] / (100.0 if t.percent else 1.0)
        out["mean"] = sum(out.values()) / len(out)
        return out

    return validate


def fit_shared(model, log) -> None:
    """Train `model` on every task (validating all of them), or load the same training done by an
    earlier job; either way `log` ends up with that training's history, times and steps."""
    key = training_key(model)
    tid = f"{model.name}-{key}"
    path = model._cache() / "trained" / tid
    lock = nullcontext() if distributed.active() else file_lock(path.with_suffix(".lock"))
    with lock:
        done = distributed.broadcast((path / "net.pt").exists() and (path / "training.json").exists())
        state = _load_cached(model, path, tid, log) if done else None
        done = state is not None
        if done:
            log.adopt(state["log"])
            trained_by, fit_s = state["trained_by"], state.get("fit_time_s")
            log.say(f"reusing the multitask training {tid} (trained by the {state['trained_by']} job)")
        else:
            # as the paper: the whole schedule (linear decay to zero), the last epoch kept; every
            # task is validated each epoch for the learning curve and the still-improving flag
            log.validate, log.monitor, log.keep_last = _validate_all(model), "mean", True
            log.checkpoint_dir = path / "checkpoint"  # whichever task's job runs it next resumes it
            t0 = time.perf_counter()
            model.train(log)
            trained_by, fit_s = model.task, time.perf_counter() - t0
            if distributed.is_main() and not log.time_capped:  # a capped training stays a checkpoint to go on from
                state = {"id": tid, "trained_by": trained_by, "fit_time_s": fit_s, "log": log.state()}
                atomic_torch_save(path / "net.pt", model.net.state_dict())
                atomic_write_json(path / "training.json", state)  # last: its presence means complete
                shutil.rmtree(path / "checkpoint", ignore_errors=True)  # complete: the cached net replaces it
            distributed.barrier()
    model.training |= {"id": tid, "reused": done, "trained_by": trained_by, "optimizer_steps": log.steps,
                       "fit_time_s": fit_s, "time_capped": log.time_capped}


def _load_cached(model, path: Path, tid: str, log) -> dict | None:
    """The cached training's state, its weights loaded into `model.net`; None when it does not load
    (truncated, not plain tensors, another network's keys, a malformed training.json): then it is
    moved aside, not deleted, with one warning line naming it, and the job trains it again."""
    try:
        state = json.loads((path / "training.json").read_text())
        weights = torch.load(path / "net.pt", map_location=model.device, weights_only=True)
        model.net.load_state_dict(weights)
        if not isinstance(state.get("log"), dict) or "trained_by" not in state:
            raise ValueError("training.json lacks its log or trained_by")
        return state
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        why = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]}"
    distributed.barrier()  # every rank has failed to read it before rank 0 moves it
    if distributed.is_main():
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(aside)
        log.say(f"warning: the cached multitask training {tid} does not load ({why}); moved aside to {aside}; "
                "training it again")
    distributed.barrier()
    return None


def backbone_config(vip5_cfg, dataset: str):
    """The P5 config VIP5 builds on: what a P5 job on this dataset gets (P5's own settings for the
    dataset, its optimiser and schedule), with VIP5's data, shape and sample settings and
    `backbone_epochs` — so that with matching settings it *is* the P5 job's training."""
    p5 = get_model(BACKBONE_MODEL)
    own = dict(p5.cls.DATASET_DEFAULTS.get(dataset, {}))
    shared = {k: getattr(vip5_cfg, k) for k in BACKBONE_KEYS}
    # always multitask, as in the paper: one backbone per dataset, whatever VIP5 itself trains on
    return build_config(p5.config, own | shared | {"epochs": vip5_cfg.backbone_epochs, "train_tasks": "all"})


def load_p5_backbone(vip5) -> dict:
    """Load (training it first if no job has yet) the P5 model on the same data into VIP5's
    network. Every backbone weight must be there: only VIP5's mapping network is new."""
    from bench.train import FitLog, rng_state, seed_everything, set_rng_state

    p5_cfg = backbone_config(vip5.cfg, vip5.data.name)
    # the backbone is built (and trained, if no job has yet) from the seed alone, as in a P5 job, and
    # VIP5's own draws (its adapters) go on afterwards as if it had been loaded from the cache: one
    # training key, the same weights whichever job trains it first
    outer = rng_state()
    seed_everything(vip5.seed)
    p5 = get_model(BACKBONE_MODEL).cls(p5_cfg, vip5.data, task=vip5.task, device=vip5.device, seed=vip5.seed)
    print(
        f"[{vip5.name}] P5 backbone: {p5_cfg.epochs} epochs of multitask P5 on {vip5.data.name} (trained once, cached)",
        file=sys.stderr,
        flush=True,
    )
    p5.fit(FitLog(None, "mean", name=f"{vip5.name}/p5-backbone"))
    set_rng_state(outer)
    missing, unexpected = vip5.net.load_state_dict(p5.net.state_dict(), strict=False)
    wrong = [k for k in missing if not k.startswith("mapping.")] + list(unexpected)
    if wrong:
        raise UsageError(
            f"the P5 backbone {p5.training['id']} does not fit VIP5's network "
            f"({len(wrong)} keys differ, e.g. {wrong[0]}); delete {vip5._cache() / 'trained'} and run again"
        )
    return {"id": p5.training["id"], "reused": p5.training["reused"], "optimizer_steps": p5.training["optimizer_steps"]}
