#!/usr/bin/python3
"""The workloads of bench_layers.cpp in PyTorch, timed the same way (median over repetitions of a
timed block), printed as JSON: {"torch/cnn/forward": seconds, ...}.

CNN energy on 28x28x1 at batch 64 (conv 3x3 32 - SiLU - avgpool 2 - conv 3x3 64 - SiLU - avgpool 2
- linear 128 - SiLU - linear 10, E = -logsumexp), and the R-GCN energy at batch 128 (9 nodes, 4
relations, 5 features, 3 layers of 64 with torch.nn.utils.spectral_norm on every weight, SiLU,
sum readout, linear head), written the way PyTorch code for them is usually written (GraphEBM's
DIG code: one spectrally normalised Linear per relation, torch.matmul with A[:, r]).
PyTorch runs in its default setting here (its intra-op thread count is recorded), and, for the
CNN, also with mkldnn (oneDNN) convolutions switched off, so both of its CPU paths are reported.
"""
import argparse
import json
import sys
import time

import torch

from torch_bench import time_it  # the same timing as the MLP workloads

BATCH, CLASSES, CHAIN_STEPS = 64, 10, 20


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.SiLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.SiLU(), torch.nn.AvgPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.SiLU(), torch.nn.Linear(128, CLASSES))


def cnn_workloads():
    torch.manual_seed(0)
    f = cnn()
    energy = lambda x: -torch.logsumexp(f(x), 1)
    x_pos = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    x_neg = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    y = torch.arange(BATCH) % CLASSES
    opt = torch.optim.Adam(f.parameters(), lr=1e-4)
    eps = 1e-3

    def forward():
        with torch.no_grad():
            energy(x_pos).sum()

    def grad_x():
        x = x_pos.clone().requires_grad_(True)
        torch.autograd.grad(energy(x).sum(), x)

    def langevin20():
        x = x_neg.clone()
        for _ in range(CHAIN_STEPS):
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(energy(x).sum(), x)
            x = x - eps * g + (2 * eps) ** 0.5 * torch.randn_like(x)

    def train_step():
        logits = f(x_pos)
        ce = torch.nn.functional.cross_entropy(logits, y)
        loss = ce + (-torch.logsumexp(logits, 1)).mean() - energy(x_neg).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"forward": forward, "grad_x": grad_x, "langevin20": langevin20, "train_step": train_step}


class RGCNLayer(torch.nn.Module):
    def __init__(self, fin, fout, relations):
        super().__init__()
        sn = torch.nn.utils.spectral_norm
        self.rel = torch.nn.ModuleList([sn(torch.nn.Linear(fin, fout, bias=False)) for _ in range(relations)])
        self.self_loop = sn(torch.nn.Linear(fin, fout))

    def forward(self, a, h):
        out = self.self_loop(h)
        for r, lin in enumerate(self.rel):
            out = out + torch.matmul(a[:, r], lin(h))
        return out


def rgcn_workloads():
    torch.manual_seed(0)
    B, N, R, F, H = 128, 9, 4, 5, 64
    layers = torch.nn.ModuleList([RGCNLayer(F, H, R), RGCNLayer(H, H, R), RGCNLayer(H, H, R)])
    head = torch.nn.Linear(H, 1)
    params = list(layers.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)

    def energy(a, x):
        h = x
        for layer in layers:
            h = torch.nn.functional.silu(layer(a, h))
        return head(h.sum(1)).squeeze(-1)

    a_pos, x_pos = torch.rand(B, R, N, N), torch.rand(B, N, F)
    state = {"a": torch.rand(B, R, N, N), "x": torch.rand(B, N, F)}
    eps = 1e-3

    def langevin_step():
        layers.eval()  # spectral norm: no power iteration while sampling
        a = state["a"].requires_grad_(True)
        x = state["x"].requires_grad_(True)
        ga, gx = torch.autograd.grad(energy(a, x).sum(), (a, x))
        with torch.no_grad():
            state["a"] = a - eps * ga + (2 * eps) ** 0.5 * torch.randn_like(a)
            state["x"] = x - eps * gx + (2 * eps) ** 0.5 * torch.randn_like(x)

    def train_step():
        layers.train()  # one power iteration per weight per forward
        e_pos, e_neg = energy(a_pos, x_pos), energy(state["a"].detach(), state["x"].detach())
        loss = e_pos.mean() - e_neg.mean() + (e_pos ** 2).mean() + (e_neg ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return {"langevin_step": langevin_step, "train_step": train_step}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: PyTorch's default)")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    out = {"_settings": {"torch": torch.__version__, "intra_op_threads": torch.get_num_threads(),
                         "mkldnn": torch.backends.mkldnn.is_available()}}
    for name, fn in cnn_workloads().items():
        out[f"torch/cnn/{name}"] = time_it(fn, args.repetitions, args.min_time)
    with torch.backends.mkldnn.flags(enabled=False):
        for name, fn in cnn_workloads().items():
            out[f"torch-nomkldnn/cnn/{name}"] = time_it(fn, args.repetitions, args.min_time)
    for name, fn in rgcn_workloads().items():
        out[f"torch/rgcn/{name}"] = time_it(fn, args.repetitions, args.min_time)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
