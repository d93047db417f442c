"""The paper's fully connected networks (section 4.1, the MNIST grid search).

G: ``n_layer_g`` linear layers, the hidden ones of width ``size_g`` with BatchNorm and
ReLU, the last to the image and tanh. D: an autoencoder of ``n_layer_d`` linear layers,
the encoder ``n_layer_d - 1`` layers of width ``size_d`` (its output is the embedding),
the decoder one layer back to the image; BatchNorm everywhere except at D's input,
optional dropout in D (``dropout_d``), and D without BatchNorm (``batchnorm_d: false``), where
real and generated batches are otherwise normalised by different batch statistics.
Initialisation (paper's appendix): N(0, 0.02) for G, N(0, 0.002) for D.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ebgan.nets.layers import check_sizes, init_normal_

ARGS = {
    "n_layer_g": 5,
    "size_g": 800,
    "n_layer_d": 2,
    "size_d": 1024,
    "dropout_d": False,
    "batchnorm_d": True,  # the paper's; False: D's energy of a sample never depends on the rest of its batch
    "init_std_g": 0.02,
    "init_std_d": 0.002,
}


class Generator(nn.Module):
    def __init__(self, latent_dim, image_shape, n_layer_g=5, size_g=800, init_std_g=0.02, **_):
        super().__init__()
        check_sizes(n_layer_g=n_layer_g, size_g=size_g)
        self.latent_dim, self.image_shape = latent_dim, tuple(image_shape)
        out_dim = math.prod(image_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for _hidden in range(n_layer_g - 1):
            layers += [nn.Linear(width, size_g), nn.BatchNorm1d(size_g), nn.ReLU()]
            width = size_g
        layers += [nn.Linear(width, out_dim), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal_(self, init_std_g, "init_std_g")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(z.shape[0], *self.image_shape)


class AutoencoderDiscriminator(nn.Module):
    def __init__(self, image_shape, n_layer_d=2, size_d=1024, dropout_d=False, batchnorm_d=True, init_std_d=0.002, **_):
        super().__init__()
        if n_layer_d < 2:
            raise ValueError(f"n_layer_d counts encoder and decoder layers and must be at least 2, got {n_layer_d}")
        check_sizes(size_d=size_d)
        self.image_shape = tuple(image_shape)
        in_dim = math.prod(image_shape)
        layers: list[nn.Module] = []
        width = in_dim
        for _hidden in range(n_layer_d - 1):
            if dropout_d:
                layers.append(nn.Dropout(0.5))
            layers.append(nn.Linear(width, size_d))
            # No BatchNorm at D's input (paper); after it, BN on every hidden layer.
            layers += [nn.BatchNorm1d(size_d), nn.ReLU()] if batchnorm_d else [nn.ReLU()]
            width = size_d
        self.encoder = nn.Sequential(*layers)
        self.decoder = nn.Sequential(*([nn.Dropout(0.5)] if dropout_d else []), nn.Linear(size_d, in_dim))
        init_normal_(self, init_std_d, "init_std_d")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.encoder(x.flatten(1))
        return self.decoder(embedding).view_as(x), embedding


class Critic(nn.Module):
    """The vanilla GAN's fully connected D (Goodfellow et al. 2014): x -> one logit per sample.

    ``n_layer_d - 1`` hidden layers of width ``size_d`` with LeakyReLU 0.2 and, with
    ``dropout_d``, dropout 0.5 after each hidden activation; no BatchNorm, so it also serves
    as a WGAN-GP critic. The pixels themselves are never dropped: with half of them zeroed, a real
    image looks speckled to D, which then hardly penalises G's speckle (fmnist-gan as it was then,
    Adam 2e-4 for both nets, 2000 steps, mean of seeds 0 and 1: Frechet 217.2 with dropout on the
    input, 166.1 after the activations).
    """

    def __init__(self, image_shape, n_layer_d=2, size_d=1024, dropout_d=False, init_std_d=0.002, **_):
        super().__init__()
        if n_layer_d < 2:
            raise ValueError(f"n_layer_d counts hidden and output layers and must be at least 2, got {n_layer_d}")
        check_sizes(size_d=size_d)
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        width = math.prod(image_shape)
        for _hidden in range(n_layer_d - 1):
            layers += [nn.Linear(width, size_d), nn.LeakyReLU(0.2)]
            if dropout_d:
                layers.append(nn.Dropout(0.5))
            width = size_d
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        init_normal_(self, init_std_d, "init_std_d")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)
