"""Using the discriminator's energy: scoring images or points, energy surfaces of 2-D
toys, histograms, anomaly detection.

    from ebgan.energy import load_energy_model, energies
    e = energies("runs/fmnist", images)     # per-sample energies, low on the data
"""

from ebgan.energy.model import (
    EnergyModel,
    energies,
    load_energy_model,
    model_from_modules,
    recalibrate_batchnorm,
)
from ebgan.energy.surface import EnergyFrames, energy_grid, plot_frames, plot_surface

__all__ = [
    "EnergyFrames",
    "EnergyModel",
    "energies",
    "energy_grid",
    "load_energy_model",
    "model_from_modules",
    "plot_frames",
    "plot_surface",
    "recalibrate_batchnorm",
]
