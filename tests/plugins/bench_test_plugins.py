"""Models that exist only for tests, loaded through BENCH_PLUGINS (the hook users have for their own models)."""

from dataclasses import dataclass

from bench.registry import register_model


@dataclass
class CrashConfig:
    epochs: int = 1


@register_model("crashy", tasks={"sequential", "direct"}, config=CrashConfig)
class Crashy:
    """Raises during fit, to check that one model's crash does not lose the others' results."""

    def __init__(self, cfg, data, *, task, device="cpu", seed=0):
        pass

    def fit(self, log):
        raise RuntimeError("deliberate crash for the test")


@register_model("sleepy", tasks={"sequential"}, config=CrashConfig)
class Sleepy:
    """Appends its process id to $SLEEPY_PID_FILE, then sleeps in fit (to test that stopping the runner stops it)."""

    def __init__(self, cfg, data, *, task, device="cpu", seed=0):
        pass

    def fit(self, log):
        import os
        import time

        with open(os.environ["SLEEPY_PID_FILE"], "a") as f:  # one line per process (several with --jobs)
            f.write(f"{os.getpid()}\n")
        time.sleep(300)
