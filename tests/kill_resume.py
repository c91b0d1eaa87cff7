"""Simulated kills of a training loop (the resume tests of the OASIS trainers)."""
import pytest

from gan_core.train.loop import run_training


class Killed(Exception):
    """Raised by a trainer's step to simulate a job killed mid-run."""


def train_until_killed(trainer, out, loop, kill_at: int) -> None:
    """Run ``run_training`` on ``trainer`` and kill it when it reaches iteration ``kill_at``."""
    step = trainer.train_step

    def dying(it):
        if it == kill_at:
            raise Killed
        return step(it)

    trainer.train_step = dying
    with pytest.raises(Killed):
        run_training(trainer, out, loop)
