#!/usr/bin/env python3
"""PyTorch reference of the benchmark's training steps (bench/main.ts runs it beside our engine).

The same architecture, batch, attack and update rule as the engine (engine/models, engine/training):
- MoE conv unit: conv3x3 (no bias) -> BatchNorm -> multiply by the channel mask of the top-k experts (N disjoint
  output-channel blocks); per-layer router = linear on the global average pool of the unit's input; hard top-k
  mask with a straight-through gradient to the softmax probabilities. Normalisation inside the model.
- VGG-16-BN (CIFAR form, stages of convs, 2x2 max-pool with ceil mode after each, global pool, one linear) and
  ResNet-18 (CIFAR form, basic blocks, 1x1 projection shortcuts), presets full/small/tiny, width multiplier.
- PGD (L-inf, random start, `steps` ascent steps of sign(grad), projection to the eps-ball and [0,1]) on the
  per-sample CE with BN on batch statistics and running statistics untouched; like the engine's training
  adversary it evaluates every iterate (steps + 1 forwards, `steps` input gradients) and returns per sample the
  highest-loss point.
- PGD-AT step: attack, then one SGD update (momentum 0.9, weight decay 5e-4 on conv/linear kernels) of all
  parameters on CE of the adversarial batch, BN running statistics updated.
- AdvMoE step (router-first, period 1): attack -> router-only update (running statistics untouched) -> fresh
  attack -> expert-only update. Each group has its own SGD optimizer; gradients are taken only w.r.t. the group
  being updated (torch.autograd.grad), as the engine's tf.variableGrads does.
- Loss and accuracy are read once per step (one host sync), as the engine does.

Protocol: one JSON request per line on stdin, one JSON answer per line on stdout:
  {"op": "info"} -> versions, threads
  {"op": "setup", "key": k, "model": {...}, "method": "pgd-at"|"advmoe", "batch": B, "attack": {...}}
  {"op": "step", "key": k} -> {"ms": wall time of one training step, "cpuMs": this process's CPU time in it}
  {"op": "drop", "key": k}
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
torch.set_num_threads(THREADS)
BN_EPS = 1e-5
BN_MOMENTUM = 0.1

VGG = {"full": ([64, 128, 256, 512, 512], [2, 2, 3, 3, 3]), "small": ([32, 64, 128, 256, 256], [2, 2, 3, 3, 3]),
       "tiny": ([16, 32, 64, 128, 128], [1, 1, 1, 1, 1])}
RESNET = {"full": ([64, 128, 256, 512], [2, 2, 2, 2]), "small": ([32, 64, 128, 256], [2, 2, 2, 2]),
          "tiny": ([16, 32, 64, 128], [1, 1, 1, 1])}


class StraightThroughTopK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, probs, k):
        idx = probs.topk(k, dim=1).indices
        return torch.zeros_like(probs).scatter_(1, idx, 1.0)

    @staticmethod
    def backward(ctx, g):
        return g, None


class Unit(nn.Module):
    """conv + BN, dense or MoE (mask after BN)."""

    def __init__(self, cin, dense_out, moe, stride=1, size=3, is_moe=False):
        super().__init__()
        self.is_moe = is_moe
        self.stride = stride
        if is_moe:
            self.n, self.k = moe["experts"], moe["topK"]
            self.c = max(1, round(moe["expertWidth"] * dense_out))
            out = self.n * self.c
            self.router = nn.Linear(cin, self.n)
        else:
            out = dense_out
        self.out_channels = out
        self.conv = nn.Conv2d(cin, out, size, stride, padding=size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out, eps=BN_EPS, momentum=BN_MOMENTUM)

    def forward(self, x, update_stats):
        y = self.conv(x)
        bn = self.bn
        y = F.batch_norm(y, bn.running_mean if update_stats else None, bn.running_var if update_stats else None,
                         bn.weight, bn.bias, True, BN_MOMENTUM, BN_EPS)
        if not self.is_moe:
            return y
        probs = F.softmax(self.router(x.mean((2, 3))), dim=1)
        mask = StraightThroughTopK.apply(probs, self.k)
        chan = mask.repeat_interleave(self.c, dim=1)
        return y * chan[:, :, None, None]


class Net(nn.Module):
    def __init__(self, data):
        super().__init__()
        self.register_buffer("mean", torch.tensor(data["mean"]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(data["std"]).view(1, -1, 1, 1))

    def forward(self, x, update_stats=False):
        return self.body((x - self.mean) / self.std, update_stats)


class Vgg(Net):
    def __init__(self, cfg, data):
        super().__init__(data)
        widths, convs = VGG[cfg["preset"]]
        widths = [max(1, round(w * cfg["widthMultiplier"])) for w in widths]
        moe = cfg["moe"]
        cin, first, self.stages = data["inputShape"][2], True, nn.ModuleList()
        for stage, count in enumerate(convs):
            units = nn.ModuleList()
            for _ in range(count):
                u = Unit(cin, widths[stage], moe, is_moe=moe["enabled"] and not first)
                first = False
                units.append(u)
                cin = u.out_channels
            self.stages.append(units)
        self.fc = nn.Linear(cin, data["numClasses"])

    def body(self, h, update_stats):
        for units in self.stages:
            for u in units:
                h = F.relu(u(h, update_stats))
            if h.shape[2] > 1 or h.shape[3] > 1:
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
        return self.fc(h.mean((2, 3)))


class ResNet(Net):
    def __init__(self, cfg, data):
        super().__init__(data)
        widths, blocks = RESNET[cfg["preset"]]
        widths = [max(1, round(w * cfg["widthMultiplier"])) for w in widths]
        moe = cfg["moe"]
        self.stem = Unit(data["inputShape"][2], widths[0], moe)
        cin, self.blocks = self.stem.out_channels, nn.ModuleList()
        for stage, count in enumerate(blocks):
            for b in range(count):
                stride = 2 if stage > 0 and b == 0 else 1
                c1 = Unit(cin, widths[stage], moe, stride, is_moe=moe["enabled"])
                c2 = Unit(c1.out_channels, widths[stage], moe, is_moe=moe["enabled"])
                sc = Unit(cin, c2.out_channels, moe, stride, size=1) if stride != 1 or cin != c2.out_channels else None
                self.blocks.append(nn.ModuleList([c1, c2] + ([sc] if sc else [])))
                cin = c2.out_channels
        self.fc = nn.Linear(cin, data["numClasses"])

    def body(self, h, update_stats):
        h = F.relu(self.stem(h, update_stats))
        for blk in self.blocks:
            out = blk[1](F.relu(blk[0](h, update_stats)), update_stats)
            skip = blk[2](h, update_stats) if len(blk) > 2 else h
            h = F.relu(out + skip)
        return self.fc(h.mean((2, 3)))


def build(cfg, data):
    return {"vgg16": Vgg, "resnet18": ResNet}[cfg["backbone"]](cfg, data)


def groups(model):
    router = [p for n, p in model.named_parameters() if ".router." in n]
    expert = [p for n, p in model.named_parameters() if ".router." not in n]
    return router, expert


def sgd(params):
    decay = [p for p in params if p.dim() > 1]
    rest = [p for p in params if p.dim() <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0.0}],
                           lr=0.05, momentum=0.9)


def pgd(model, x, y, a):
    eps, alpha, steps = a["eps"], a["stepSize"], a["steps"]
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp_(0, 1) if a["randomStart"] else x.clone()
    best_x, best_loss = xa.clone(), torch.full((x.shape[0],), -math.inf)
    for i in range(steps + 1):
        last = i == steps
        xa.requires_grad_(not last)
        with torch.set_grad_enabled(not last):
            loss = F.cross_entropy(model(xa), y, reduction="none")
            grad = None if last else torch.autograd.grad(loss.sum(), xa)[0]
        with torch.no_grad():
            better = loss.detach() > best_loss
            best_loss = torch.where(better, loss.detach(), best_loss)
            best_x = torch.where(better[:, None, None, None], xa.detach(), best_x)
            if not last:
                xa = torch.min(torch.max(xa.detach() + alpha * grad.sign(), x - eps), x + eps).clamp_(0, 1)
    return best_x


def update(model, opt, params, x, y, update_stats):
    logits = model(x, update_stats)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, params)
    for p, g in zip(params, grads):
        p.grad = g
    opt.step()
    return loss.detach(), (logits.argmax(1) == y).float().mean()


class Setup:
    def __init__(self, req):
        torch.manual_seed(0)
        cfg, data = req["model"], req["data"]
        self.model = build(cfg, data).train()
        self.method, self.attack = req["method"], req["attack"]
        b = req["batch"]
        h, w, c = data["inputShape"]
        self.x = torch.rand(b, c, h, w)
        self.y = torch.randint(0, data["numClasses"], (b,))
        self.router, self.expert = groups(self.model)
        self.all = self.router + self.expert
        if self.method == "advmoe":
            self.opt_router, self.opt_expert = sgd(self.router), sgd(self.expert)
        else:
            self.opt_all = sgd(self.all)

    def step(self):
        if self.method == "pgd-at":
            xa = pgd(self.model, self.x, self.y, self.attack)
            loss, acc = update(self.model, self.opt_all, self.all, xa, self.y, True)
        else:
            xa = pgd(self.model, self.x, self.y, self.attack)
            update(self.model, self.opt_router, self.router, xa, self.y, False)
            xa = pgd(self.model, self.x, self.y, self.attack)
            loss, acc = update(self.model, self.opt_expert, self.expert, xa, self.y, True)
        return torch.stack([loss, acc]).tolist()  # one host read per step


def main():
    setups = {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            op = req["op"]
            if op == "info":
                out = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                       "mkldnn": torch.backends.mkldnn.is_available()}
            elif op == "setup":
                s = setups[req["key"]] = Setup(req)
                s.step()  # warm-up
                out = {"ok": True}
            elif op == "step":
                t0, c0 = time.perf_counter(), time.process_time()
                setups[req["key"]].step()
                out = {"ms": (time.perf_counter() - t0) * 1e3, "cpuMs": (time.process_time() - c0) * 1e3}
            elif op == "drop":
                setups.pop(req["key"], None)
                out = {"ok": True}
            else:
                out = {"error": f"unknown op {op}"}
        except Exception as e:  # report, keep serving
            out = {"error": repr(e)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
