"""RecBole 1.2.1 side of the sequential cross-checks (SASRec, S3-Rec, HGN).

The dataset is exported to RecBole's atomic files (``.inter``: user, item, timestamp = the
position in the user's sequence, so RecBole's leave-one-out split ordered by time gives
exactly our val/test targets and histories, which `recbole_scores` checks; ``.item``: the
item attributes as one token sequence, for S3-Rec). RecBole is driven through Config /
create_dataset / data_preparation / model / Trainer directly (its ``quick_start`` imports ray
and reloads checkpoints with a plain ``torch.load``).

Workarounds, each for a stated reason:
* importing RecBole's sequential models runs ``torch.autograd.set_detect_anomaly(True)``
  (module ``sine.py``): it is switched off again right after, or every backward pass is
  ~35% slower;
* RecBole saves its checkpoints with its Config object inside, and torch >= 2.6 refuses to
  unpickle that by default (``weights_only=True``): the best-validation checkpoint is reloaded
  here with ``weights_only=False`` (a file this process has just written), and S3-Rec's
  fine-tuning stage, which ``torch.load``s its pre-trained model inside the model's
  constructor, is built with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 for that call only;
* RecBole writes logs and tensorboard files under the working directory: each run works in
  a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

from bench.data import BenchData
from reference.common import RunResult, ScoreTable, test_result

DATASET = "refsynth"


def export_atomic(data: BenchData, root: Path) -> Path:
    """Write ``root/refsynth/refsynth.{inter,item}``; tokens are our user and item ids."""
    d = Path(root) / DATASET
    d.mkdir(parents=True, exist_ok=True)
    rows = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u, seq in enumerate(data.sequences):
        rows += [f"{u}\t{i}\t{t}" for t, i in enumerate(seq.tolist())]
    (d / f"{DATASET}.inter").write_text("\n".join(rows) + "\n")
    rows = ["item_id:token\tclass:token_seq"]
    # token_seq values are space separated: attributes keep their words joined by "_"
    rows += [f"{i}\t{' '.join(a.replace(' ', '_') for a in it.attributes)}" for i, it in enumerate(data.items)]
    (d / f"{DATASET}.item").write_text("\n".join(rows) + "\n")
    return d


def base_config(root: Path, seed: int, epochs: int, patience: int) -> dict:
    """What every RecBole run here shares: our leave-one-out split (time order = sequence
    order), full ranking, validation NDCG@10 for early stopping."""
    return {
        "data_path": str(root), "dataset": DATASET,
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG"], "topk": [5, 10], "valid_metric": "NDCG@10",
        # RecBole stops after stopping_step + 1 epochs without improvement, our FitLog after `patience`
        "epochs": epochs, "stopping_step": patience - 1, "eval_step": 1,
        "eval_batch_size": 4096, "train_neg_sample_args": None,
        "seed": seed, "reproducibility": True, "use_gpu": False,
        "show_progress": False, "state": "WARNING", "worker": 0,
    }


@contextlib.contextmanager
def _in_tmpdir():
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="recbole-run-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


def _modules():
    import recbole.model.sequential_recommender  # noqa: F401  (its sine.py switches anomaly detection on)
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.autograd.set_detect_anomaly(False)
    return Config, create_dataset, data_preparation, get_model, get_trainer, init_seed


def _prepare(model: str, cfg: dict):
    Config, create_dataset, data_preparation, get_model, get_trainer, init_seed = _modules()
    with mock.patch.object(sys, "argv", sys.argv[:1]):  # Config also parses the command line (ours)
        config = Config(model=model, dataset=DATASET, config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)  # train, valid, test
    init_seed(config["seed"], config["reproducibility"])  # the model's initialisation does not depend on the data steps
    return config, dataset, loaders, get_model(model), get_trainer(config["MODEL_TYPE"], model)


def recbole_scores(model, test_loader, dataset, data: BenchData) -> np.ndarray:
    """Full-ranking scores of the RecBole model for every test user, [n_users, n_items] in our
    ids; checks on the way that RecBole's test histories and targets are exactly ours."""
    import torch

    uid_tok, iid_tok = dataset.field2id_token["user_id"], dataset.field2id_token["item_id"]
    col = np.zeros(data.n_items, dtype=np.int64)  # our item id -> RecBole's internal id
    for internal in range(1, len(iid_tok)):  # 0 is RecBole's padding item
        col[int(iid_tok[internal])] = internal
    queries = data.rank_queries("sequential", "test")
    targets = data.rank_targets("test")
    out = np.full((data.n_users, data.n_items), np.nan)
    model.eval()
    with torch.no_grad():
        for inter, _hist, _pu, _pi in test_loader:
            scores = model.full_sort_predict(inter).numpy()  # [B, RecBole items]
            users = [int(uid_tok[u]) for u in inter["user_id"].tolist()]
            columns = (inter["item_id_list"].tolist(), inter["item_length"].tolist(), inter["item_id"].tolist())
            for n, (u, seq, length, tgt) in enumerate(zip(users, *columns, strict=True)):
                # RecBole keeps the last MAX_ITEM_LIST_LENGTH items: compare with our history's tail
                hist = [int(iid_tok[i]) for i in seq[:length]]
                if hist != queries[u].history[-len(hist):].tolist() or int(iid_tok[tgt]) != targets[u]:
                    raise RuntimeError(f"RecBole's test sample for user {u} differs from ours")
                out[u] = scores[n, col]
    if np.isnan(out).any():
        raise RuntimeError("RecBole's test split misses some users")
    return out


def _finish(model, trainer, dataset, loaders, data: BenchData, fit_s: float, extra: dict) -> RunResult:
    """Reload the best-validation checkpoint (as our FitLog does) and test through our evaluator."""
    import torch

    ckpt = torch.load(trainer.saved_model_file, map_location="cpu", weights_only=False)  # see module docstring
    model.load_state_dict(ckpt["state_dict"])
    # RecBole's own evaluator on the same model, for the record: it must give our numbers
    # (up to ties), which checks the metric code on one more implementation
    own = trainer.evaluate(loaders[2], load_best_model=False)
    table = ScoreTable(recbole_scores(model, loaders[2], dataset, data))
    extra = extra | {"recbole_own_test": {k: float(v) for k, v in own.items()}}
    return test_result(table, data, "sequential", len(trainer.train_loss_dict), int(ckpt["epoch"]) + 1, fit_s, extra)


def run_model(model_name: str, data: BenchData, cfg: dict, weight_decay: float | None = None) -> RunResult:
    """Train and test a one-stage RecBole sequential model (SASRec, HGN). weight_decay: set on
    the optimizer after the trainer has built it, for HGN: RecBole 1.2.1's optimizer factory
    computes ``weight_decay * config["reg_weight"]`` (a warning about double regularisation),
    which raises TypeError when reg_weight is HGN's list and weight_decay is not 0."""
    with _in_tmpdir() as tmp:
        cfg = cfg | {"checkpoint_dir": str(tmp / "saved")}
        config, dataset, loaders, model_cls, trainer_cls = _prepare(model_name, cfg)
        model = model_cls(config, loaders[0]._dataset)
        trainer = trainer_cls(config, model)
        if weight_decay is not None:
            for group in trainer.optimizer.param_groups:
                group["weight_decay"] = weight_decay
        t0 = time.perf_counter()
        trainer.fit(loaders[0], loaders[1], saved=True, verbose=False, show_progress=False)
        fit_s = time.perf_counter() - t0
        return _finish(model, trainer, dataset, loaders, data, fit_s, {})


def run_s3rec(data: BenchData, cfg: dict, pretrain_batch_size: int) -> RunResult:
    """S3-Rec: RecBole's pre-training stage, then its fine-tuning stage from the saved model."""
    with _in_tmpdir() as tmp:
        cfg = cfg | {
            "checkpoint_dir": str(tmp / "saved"),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "class"]},
            "item_attribute": "class", "save_step": cfg["pretrain_epochs"],  # save once, at the end
        }
        pre_cfg = cfg | {"train_stage": "pretrain", "train_batch_size": pretrain_batch_size}
        config, dataset, loaders, model_cls, trainer_cls = _prepare("S3Rec", pre_cfg)
        model = model_cls(config, loaders[0]._dataset)
        trainer = trainer_cls(config, model)
        t0 = time.perf_counter()
        trainer.fit(loaders[0], saved=True, verbose=False, show_progress=False)
        pretrain_s = time.perf_counter() - t0
        pre_path = trainer.saved_model_file

        ft_cfg = cfg | {"train_stage": "finetune", "pre_model_path": pre_path}
        config, dataset, loaders, model_cls, trainer_cls = _prepare("S3Rec", ft_cfg)
        with mock.patch.dict(os.environ, {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's notice that the variable is set: it is, on purpose
            model = model_cls(config, loaders[0]._dataset)
        trainer = trainer_cls(config, model)
        t0 = time.perf_counter()
        trainer.fit(loaders[0], loaders[1], saved=True, verbose=False, show_progress=False)
        fit_s = time.perf_counter() - t0
        return _finish(model, trainer, dataset, loaders, data, pretrain_s + fit_s, {"pretrain_s": pretrain_s})
