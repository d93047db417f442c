"""A job function for sweep-pool tests, importable by spawned workers: setting 'b' kills its worker."""

import os

from ebgan.experiments.sweep import Setting


class Fixed(Setting):
    """A setting whose id is its first parameter's value, so the tests can name them."""

    @property
    def id(self):
        return self.params[0][1]


def run_or_die(job):
    setting = job[0]
    if setting.id == "b":
        os._exit(9)  # what an out-of-memory kill looks like to the pool
    return {"id": setting.id, "objective": setting.objective, "status": "ok", "i_prime": 1.0, "seconds": 0.0}
