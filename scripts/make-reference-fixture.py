#!/usr/bin/env python3
"""
The fixture of test/engine/reference/: a ResNet-18 CIFAR MoE with the reference code's layout
(OPTML-Group/Robust-MoE-CNN: gathered MoE convs, one ResNet-20-like image router shared by every MoE conv,
PyTorch padding, no input normalisation), written here from the paper's and the reference's structure, saved
the way the reference's train_moe.py saves a checkpoint, with its logits and routing on fixed inputs beside it.

    python3 scripts/make-reference-fixture.py [--out DIR] [--ratio R]
        writes DIR/reference-n2-r<R>.pth and .json (default R = 0.0625: the committed fixture; --ratio 0.5 is
        the paper's model, ~47 MB)
    python3 scripts/make-reference-fixture.py --check FILE.json    loads an export of ours (the .pth or
        .safetensors named in FILE.json) into the same modules, strictly, and prints its logits and routing on
        the fixture's inputs as JSON (the export test compares them)

Needs torch (CPU is enough). N = 2 experts; ratio 0.0625 (planes 4-8-16-32) keeps the file under 2 MB, while
the network is the reference's in every other respect (the importer's --ratio 0.5 case differs only in widths).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EXPERTS = 2
RATIO = 0.0625
CLASSES = 10
SAMPLES = 8


class GatheredMoEConv(nn.Conv2d):
    """A conv of n_expert·c output channels whose output is the chosen expert's c channels (top-1 by argmax of the
    image router's scores); `router` is registered as a sub-module, as the reference's set_router does."""

    def __init__(self, cin, c, stride, n_expert):
        super().__init__(cin, c * n_expert, kernel_size=3, stride=stride, padding=1, bias=False)
        self.c = c
        self.n_expert = n_expert
        self.scores = None

    def forward(self, x):
        y = super().forward(x)
        b, _, h, w = y.shape
        choice = torch.argmax(self.scores, dim=1)
        return y.view(b, self.n_expert, self.c, h, w)[torch.arange(b), choice]


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride, n_expert):
        super().__init__()
        self.conv1 = GatheredMoEConv(cin, planes, stride, n_expert)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = GatheredMoEConv(planes, planes, 1, n_expert)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class RouterBlock(nn.Module):
    """ResNet-20 basic block with the option-A shortcut: subsample by 2, pad the new channels with zeros."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = None
        if stride != 1 or cin != planes:
            diff = planes - cin
            self.pad = (diff // 2, (diff + 1) // 2)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad[0], self.pad[1]))
        return F.relu(out + short)


class Router(nn.Module):
    def __init__(self, n_expert):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        cin = 16
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for b in range(3):
                blocks.append(RouterBlock(cin, planes, 2 if i > 0 and b == 0 else 1))
                cin = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(64, n_expert)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


class ResNet18MoE(nn.Module):
    def __init__(self, n_expert, ratio, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, planes in enumerate([64, 128, 256, 512]):
            planes = int(ratio * planes)
            blocks = []
            for b in range(2):
                blocks.append(BasicBlock(cin, planes, 2 if i > 0 and b == 0 else 1, n_expert))
                cin = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(int(ratio * 512), classes)
        self.router = None

    def attach_router(self, router):
        self.router = router
        for m in list(self.modules()):
            if isinstance(m, GatheredMoEConv):
                m.router = router

    def forward(self, x):
        scores = self.router(x)
        for m in self.modules():
            if isinstance(m, GatheredMoEConv):
                m.scores = scores
        out = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            out = getattr(self, f"layer{i}")(out)
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1)), scores


def build(n_expert=EXPERTS, ratio=RATIO, classes=CLASSES):
    model = ResNet18MoE(n_expert, ratio, classes)
    router = Router(n_expert)
    return model, router


def inputs_from(fixture):
    """The fixture's uint8 images (NHWC, as the engine takes them) as an NCHW float batch in [0, 1]."""
    x = np.array(fixture["inputs"], dtype=np.uint8).reshape(fixture["inputShape"]).astype(np.float32) / 255.0
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def run(model, x):
    model.eval()
    with torch.no_grad():
        logits, scores = model(x)
    return logits, scores


def make(out_dir, experts=EXPERTS, ratio=RATIO):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model, router = build(experts, ratio)
    # The reference builds the backbone's optimizer before set_router, and the router's with a numpy lr.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.attach_router(router)
    router_optimizer = torch.optim.SGD(router.parameters(), lr=np.float64(0.1), momentum=0.9, weight_decay=5e-4)
    # Non-trivial BatchNorm statistics and affine parameters, so that inference BN matters.
    with torch.no_grad():
        for m in list(model.modules()):
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.2)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
                m.weight.copy_(torch.rand_like(m.weight) + 0.5)
                m.bias.copy_(torch.randn_like(m.bias) * 0.2)
    images = rng.integers(0, 256, size=(SAMPLES, 32, 32, 3), dtype=np.uint8)
    # Brightness and colour differ between samples, so the router's scores do too.
    gain = rng.uniform(0.2, 1.0, size=(SAMPLES, 1, 1, 3))
    images = np.clip(images * gain, 0, 255).astype(np.uint8)
    fixture = {"inputShape": [SAMPLES, 32, 32, 3], "inputs": images.flatten().tolist()}
    x = inputs_from(fixture)
    # A trained router's scores spread far wider than an initial one's: widen them, then centre the decision
    # between the samples (half to each expert) with the widest margin, so that float rounding cannot flip it.
    with torch.no_grad():
        router.fc.weight.mul_(50)
    _, scores = run(model, x)
    d = np.sort((scores[:, 1] - scores[:, 0]).numpy())
    mid = SAMPLES // 2
    with torch.no_grad():
        router.fc.bias[0] += float((d[mid - 1] + d[mid]) / 2)
    logits, scores = run(model, x)
    routing = torch.argmax(scores, dim=1).tolist()
    margin = float((scores[:, 1] - scores[:, 0]).abs().min())
    assert len(set(routing)) == experts, routing
    assert margin > 1e-3, margin
    name = f"reference-n{experts}-r{ratio}"
    ckpt = os.path.join(out_dir, f"{name}.pth")
    # As train_moe.py's save_checkpoint: the state dict holds router.* and one copy under every MoE conv.
    torch.save(
        {
            "epoch": 3,
            "arch": "resnet18_cifar_moe",
            "state_dict": model.state_dict(),
            "router": router.state_dict(),
            "best_acc": torch.tensor(12.5),
            "sa_record": torch.tensor(40.0),
            "optimizer": optimizer.state_dict(),
            "router_optimizer": router_optimizer.state_dict(),
        },
        ckpt,
    )
    fixture.update(
        {
            "checkpoint": os.path.basename(ckpt),
            "experts": experts,
            "ratio": ratio,
            "classes": CLASSES,
            "stateDictKeys": len(model.state_dict()),
            "logits": logits.tolist(),
            "routerScores": scores.tolist(),
            "routing": routing,
            "routingMargin": margin,
            "torch": torch.__version__,
        }
    )
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(fixture, f)
    print(f"wrote {ckpt} ({os.path.getsize(ckpt)} bytes), {len(model.state_dict())} state-dict keys; routing {routing}, margin {margin:.4f}")


def check(fixture_file, export_file):
    """Loads our export strictly into the reference-layout modules; prints logits and routing as JSON."""
    with open(fixture_file) as f:
        fixture = json.load(f)
    model, router = build(fixture["experts"], fixture["ratio"], fixture["classes"])
    model.attach_router(router)
    if export_file.endswith(".safetensors"):
        from safetensors.torch import load_file

        model.load_state_dict(load_file(export_file), strict=True)
    else:
        ck = torch.load(export_file, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["state_dict"], strict=True)
        router.load_state_dict(ck["router"], strict=True)
        # train_moe.py's resume loads both optimizers too.
        routed = {id(p) for p in router.parameters()}
        torch.optim.SGD([p for p in model.parameters() if id(p) not in routed], lr=0.1).load_state_dict(ck["optimizer"])
        torch.optim.SGD(router.parameters(), lr=0.1).load_state_dict(ck["router_optimizer"])
    logits, scores = run(model, inputs_from(fixture))
    json.dump({"logits": logits.tolist(), "routing": torch.argmax(scores, dim=1).tolist()}, sys.stdout)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "engine", "reference", "fixtures"))
    p.add_argument("--check", nargs=2, metavar=("FIXTURE_JSON", "EXPORT_FILE"))
    p.add_argument("--ratio", type=float, default=RATIO)
    a = p.parse_args()
    if a.check:
        check(*a.check)
    else:
        os.makedirs(a.out, exist_ok=True)
        make(a.out, EXPERTS, a.ratio)
