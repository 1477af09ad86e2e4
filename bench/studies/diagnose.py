"""`bench diagnose`: does a model know more than popularity? (candidate-ranking tasks, e.g. direct)

A model below pop is a defect to explain. For each model this trains it as `bench run` would
(VIP5/P5 reuse their cached multitask training) and has it order every user's whole candidate
list, then compares with popularity (training interactions) on the same lists:

- test: the stored test lists (target + sampled never-interacted items): HR@10 and AUC (the share
  of negatives ranked below the target);
- pop agreement: Spearman's rho between the model's order and popularity's order of each list,
  averaged over users (1: the model ranks by popularity alone);
- training item: the same negatives with one of the user's own *training* items as the target.
  A model that learned the user's preferences ranks it far above the negatives (BPR-MF does); one
  that learned only popularity ranks it like pop does.

On a dataset the synthetic generator wrote, a second table probes the models' learned id vectors
for the preferences the generator planted (bench/studies/taste_probe.py): where a model stops.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from tabulate import tabulate

from bench.data.synthetic import hidden_world
from bench.errors import UsageError
from bench.model import has_hook
from bench.studies.taste_probe import PROBED, chance, cooccurrence_vectors, probe_row, truth
from bench.tasks import DIRECT

TOP = 10


def positions(order: list[list[int]], targets: np.ndarray, n: int) -> np.ndarray:
    """0-based place of each target in the model's ordering of its list; a target the model left
    out counts as last."""
    out = np.empty(len(targets), dtype=np.int64)
    for u, (got, t) in enumerate(zip(order, targets, strict=True)):
        got = [int(i) for i in got]
        out[u] = got.index(int(t)) if int(t) in got else n - 1
    return out


def summary(pos: np.ndarray, n: int) -> dict[str, float]:
    """HR@10 and AUC from the target's place among `n` candidates."""
    return {"hr@10": float(np.mean(pos < TOP)), "auc": float(np.mean(1.0 - pos / (n - 1)))}


def pop_order(lists: np.ndarray, pop: np.ndarray) -> list[list[int]]:
    """Each list by training popularity, most popular first (ties keep the list's order)."""
    return [[int(x) for x in lst[np.argsort(-pop[lst], kind="stable")]] for lst in lists]


def agreement(order: list[list[int]], by_pop: list[list[int]]) -> float:
    """Mean Spearman rho between two orderings of the same lists."""
    rhos = []
    for a, b in zip(order, by_pop, strict=True):
        place = {item: i for i, item in enumerate(b)}
        rho = spearmanr(np.arange(len(a)), [place[i] for i in a]).statistic
        rhos.append(0.0 if np.isnan(rho) else rho)
    return float(np.mean(rhos))


def candidate_lists(data, task: str, rng: np.random.Generator,
                    users: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{kind: (lists [users, n], targets [users])}: the stored test candidates in their stored order
    ("test"), and the same lists with the test target replaced, in its place, by one random training
    item of the user ("own"). Lists keep the stored order so that no model's tie-breaking favours
    the target."""
    keep = np.arange(data.n_users) if users is None else users
    every = data.rank_queries(task, "test")
    queries = [every[u] for u in keep]
    targets = data.rank_targets("test")[keep]
    train = data.train_sequences()
    test = np.array([q.candidates for q in queries], dtype=np.int64)
    own_targets = np.array([train[q.user][rng.integers(len(train[q.user]))] for q in queries], dtype=np.int64)
    own = np.where(test == targets[:, None], own_targets[:, None], test)
    return {"test": (test, targets), "own": (own, own_targets)}


def diagnose(model, data, task: str, variant: str | None, lists: dict, pop: np.ndarray, users: np.ndarray) -> dict:
    """One model's row: on each kind of list, its HR@10 and AUC; on the test lists its agreement with pop."""
    from dataclasses import replace

    every = data.rank_queries(task, "test")
    queries = [every[u] for u in users]
    row = {}
    for kind, (lst, targets) in lists.items():
        qs = [replace(q, candidates=lst[u]) for u, q in enumerate(queries)]
        kw = {"variant": variant} if variant else {}
        order = model.rank(qs, lst.shape[1], **kw)
        row[kind] = summary(positions(order, targets, lst.shape[1]), lst.shape[1])
        if kind == "test":
            row["agreement"] = agreement(order, pop_order(lst, pop))
    return row


def trained(name: str, plan, data, task: str, seed: int):
    """-> (model, its evaluation prompts, e.g. ["B-5", "B-8"], or [None]), trained as a `bench run` job
    would (VIP5/P5: their cached multitask training is reused)."""
    from bench.evaluate import evaluate
    from bench.model import variants_of
    from bench.registry import get_model
    from bench.run.plan import job_config
    from bench.tasks import get_task
    from bench.train import FitLog, resolve_device, seed_everything

    seed_everything(seed)
    cfg = job_config(plan, task, name)
    model = get_model(name).cls(cfg, data, task=task, device=resolve_device(plan.device), seed=seed)
    variants = variants_of(model, task)
    limit = getattr(cfg, "val_queries", None)  # generative models validate on a fixed subset, as in bench run
    log = FitLog(lambda: evaluate(model, data, task, "val", variants[0], limit=limit).metrics,
                 get_task(task).monitor, name=name)
    model.fit(log)
    return model, variants


def run_diagnose(*, task: str, dataset: str, models: list[str], seed: int, sets: dict[str, str], device: str,
                 data_root: str | None, users: int | None = None) -> str:
    from bench.data import load_dataset
    from bench.run.plan import plan_run
    from bench.tasks import get_task

    if not get_task(task).candidates:
        raise UsageError(f"--task {task}: bench diagnose needs a task with candidate lists (e.g. direct)")
    plan = plan_run(task=task, dataset=dataset, models=models, seeds=[seed], overrides=sets, device=device,
                    data_root_=data_root)
    data = load_dataset(dataset, data_root)
    pop = np.bincount(np.concatenate([np.asarray(s, dtype=np.int64) for s in data.train_sequences()]),
                      minlength=data.n_items).astype(float)
    rng = np.random.default_rng(seed)
    # a random subset of the users on a large dataset (every list costs a model a full scoring pass)
    keep = np.sort(rng.permutation(data.n_users)[:users]) if users else np.arange(data.n_users)
    lists = candidate_lists(data, task, rng, keep)
    by_pop = {kind: summary(positions(pop_order(lst, pop), t, lst.shape[1]), lst.shape[1])
              for kind, (lst, t) in lists.items()}
    rows = [["pop", *_cells(by_pop | {"agreement": 1.0})]]
    world = hidden_world(data.manifest)
    labels = truth(world, data) if world is not None else None
    probes = [["co-occurrence (SVD of the training interactions)", *probe_row(cooccurrence_vectors(data), labels)],
              ["chance (the most common class)", *(chance(labels[label]) for _, label, _ in PROBED)]] if labels else []
    # pop is the reference row already; each prompt of a prompted model gets its own row (B-5 names
    # the user by name, B-8 by id: they can differ, and that says how the model knows the user)
    for name in [m for m in models if m != "pop"]:
        model, variants = trained(name, plan, data, task, seed)
        for variant in variants:
            label = name + (f" ({variant})" if variant else "")
            rows.append([label, *_cells(diagnose(model, data, task, variant, lists, pop, keep))])
        if labels and has_hook(model, "id_embeddings"):
            probes.insert(-1, [name, *probe_row(model.id_embeddings(), labels)])
    headers = ["model", "test HR@10", "test AUC", "pop agreement (rho)", "own training item HR@10",
               "own training item AUC"]
    n_users, n = lists["test"][0].shape
    return (f"bench diagnose: {task} on {dataset}, seed {seed}, {n_users} of {data.n_users} users, "
            f"{n} candidates per list\n\n"
            + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
            + "\n\n- test: the stored test lists; AUC = share of the list's negatives ranked below the target."
            + "\n- pop agreement: Spearman's rho between the model's and popularity's order of each test list."
            + "\n- own training item: the same negatives behind one of the user's training items; a model that"
              " learned the user's preferences ranks it far above pop's level.\n"
            + (_probe_page(probes) if probes else ""))


def _probe_page(rows: list[list]) -> str:
    headers = ["id vectors", *(f"{name} accuracy" for _, _, name in PROBED)]
    cells = [[r[0], *("–" if v is None else f"{v:.3f}" for v in r[1:])] for r in rows]
    return ("\nHidden-taste probe: how well a linear classifier (ridge, 5-fold cross-validated) reads the"
            " generator's hidden labels from each model's learned id vectors\n\n"
            + tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)
            + "\n\n- user style: the visual style a user prefers (the planted signal that only item photos reveal);"
              " item style and genre: each item's own.\n"
            + "- a model whose vectors stay near chance has not learned what drives the choices: it can rank by"
              " popularity, not by the user's taste.\n")


def _cells(row: dict) -> list[str]:
    return [f"{row['test']['hr@10']:.4f}", f"{row['test']['auc']:.4f}", f"{row['agreement']:.3f}",
            f"{row['own']['hr@10']:.4f}", f"{row['own']['auc']:.4f}"]


def cmd_diagnose(args) -> int:
    from bench.config import parse_sets

    if args.users is not None and args.users < 1:
        raise UsageError(f"--users {args.users}: must be a positive number of users")
    page = run_diagnose(task=args.task, dataset=args.dataset, models=args.models, seed=args.seed,
                        sets=parse_sets(args.sets), device=args.device, data_root=args.data_root, users=args.users)
    print(page)
    if args.out:
        from bench.io import atomic_write_text

        atomic_write_text(args.out, page)
        print(f"written: {args.out}")
    return 0


def add_parser(sub, csv, add_data_root) -> None:
    p = sub.add_parser("diagnose", help="does a model know more than popularity? (candidate lists: direct task)")
    p.add_argument("--task", default=DIRECT, help=f"a task with candidate lists (default: {DIRECT})")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--models", type=csv, required=True, help="comma-separated model names")
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="config override; repeatable")
    p.add_argument("--device", default="auto")
    p.add_argument("--users", type=int, default=None, help="a random subset of this many users (default: all)")
    p.add_argument("--out", default=None, help="also write the page (Markdown) here")
    add_data_root(p)
