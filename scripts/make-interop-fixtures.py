#!/usr/bin/env python3
"""Makes the small checkpoint fixtures of test/engine/interop/fixtures (commit the output).

Needs python3 with torch, numpy and safetensors (pip install torch safetensors). Every fixture comes with its
expected content in expected.json, described the same way test/engine/interop/describe.ts describes what the
TypeScript readers return: dicts as {"dict": [[key, value], ...]}, lists and tuples as {"list": [...]},
numbers as {"num": x} (ints beyond 2^53 as strings, non-finite floats as "nan"/"inf"/"-inf"), tensors as
{"tensor": dtype, "shape": [...], "values": [...]} with values flattened in row-major order.
Usage: python3 scripts/make-interop-fixtures.py [out_dir]
"""
import collections
import io
import json
import math
import os
import pickle
import sys
import zipfile

import numpy as np
import torch
import safetensors.torch

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'engine', 'interop', 'fixtures')
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)

DTYPES = {torch.float64: 'float64', torch.float32: 'float32', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
          torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8',
          torch.bool: 'bool'}


def num(x):
    if isinstance(x, float):
        if math.isnan(x):
            return {'num': 'nan'}
        if math.isinf(x):
            return {'num': 'inf' if x > 0 else '-inf'}
        return {'num': x}
    return {'num': x if abs(x) <= 2 ** 53 else str(x)}


def describe(v):
    if isinstance(v, torch.Tensor):
        flat = v.detach().contiguous().reshape(-1)
        if v.dtype in (torch.float16, torch.bfloat16):
            flat = flat.float()
        vals = [num(x)['num'] if not isinstance(x, bool) else int(x) for x in flat.tolist()]
        return {'tensor': DTYPES[v.dtype], 'shape': list(v.shape), 'values': vals}
    if isinstance(v, dict):
        return {'dict': [[describe(k), describe(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple, torch.Size)):
        return {'list': [describe(x) for x in v]}
    if isinstance(v, (bool, np.bool_)) or v is None or isinstance(v, str):
        return bool(v) if isinstance(v, np.bool_) else v
    if isinstance(v, (int, float, np.integer, np.floating)):
        return num(v.item() if isinstance(v, np.generic) else v)
    raise TypeError(type(v))


expected = {}


def save(name, obj, **kw):
    torch.save(obj, os.path.join(OUT, name), **kw)
    expected[name] = describe(obj)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 3, 3, bias=False)
        self.bn = torch.nn.BatchNorm2d(3)
        self.fc = torch.nn.Linear(3, 2)


# 1. An OrderedDict state dict (with torch's _metadata attribute) plus one tensor of every supported dtype.
net = Net()
sd = net.state_dict()
sd['extra.f64'] = torch.tensor([1.5, -2.25, 1e300], dtype=torch.float64)
sd['extra.f16'] = torch.tensor([0, 1, -2.5, 65504, 6e-8, float('inf'), float('-inf')], dtype=torch.float16)
sd['extra.bf16'] = torch.tensor([1, -3.140625, 1e30, -1e-30], dtype=torch.bfloat16)
sd['extra.i64'] = torch.tensor([0, -5, 2 ** 40 + 1, -(2 ** 62)], dtype=torch.int64)
sd['extra.i32'] = torch.tensor([[7, -8], [2 ** 31 - 1, -(2 ** 31)]], dtype=torch.int32)
sd['extra.i16'] = torch.tensor([-32768, 32767], dtype=torch.int16)
sd['extra.i8'] = torch.tensor([-128, 127], dtype=torch.int8)
sd['extra.u8'] = torch.tensor([0, 255], dtype=torch.uint8)
sd['extra.bool'] = torch.tensor([True, False, True])
sd['extra.scalar'] = torch.tensor(3.5)
sd['extra.empty'] = torch.zeros(0, 4)
save('state-dict.pth', sd)

# 2. A nested dict laid out like the reference code's train_moe.py checkpoint (its router_optimizer's lr is
#    a numpy.float64, which weights_only torch.load refuses).
router = torch.nn.Linear(3, 2)
model_opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
router_opt = torch.optim.SGD(router.parameters(), lr=0.01, momentum=0.9)
for p in net.parameters():
    p.grad = torch.ones_like(p)
for p in router.parameters():
    p.grad = torch.ones_like(p)
model_opt.step()
router_opt.step()
ropt = router_opt.state_dict()
ropt['param_groups'][0]['lr'] = np.float64(0.005)
save('reference.pth', {
    'epoch': 7, 'arch': 'resnet18', 'state_dict': net.state_dict(), 'router': router.state_dict(),
    'best_acc': 43.21, 'sa_record': [torch.tensor(41.5), torch.tensor(43.21)],
    'optimizer': model_opt.state_dict(), 'router_optimizer': ropt,
    'param': torch.nn.Parameter(torch.tensor([[1.0, 2.0]])), 'size': torch.Size([2, 3]), 'big': 2 ** 70,
})

# 3. Views: a transpose, an offset slice, a stride-0 expand, and two tensors sharing one storage.
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
save('views.pth', {
    't': base.t(), 'slice': base[1:3, 2:5], 'expand': torch.tensor([[1.0], [2.0]]).expand(2, 3),
    'step': base[:, ::2], 'row': base[2], 'base': base,
})

# 4. Storages tagged cuda:0, as a checkpoint saved on a GPU (the tag is all that differs on disk).
import torch.serialization as ser
real_tag = ser.location_tag
ser.location_tag = lambda storage: 'cuda:0'
try:
    save('cuda-tagged.pth', collections.OrderedDict(w=torch.tensor([[1.0, -1.0]]), b=torch.tensor([0.5])))
finally:
    ser.location_tag = real_tag
assert b'cuda:0' in zipfile.ZipFile(os.path.join(OUT, 'cuda-tagged.pth')).read('cuda-tagged/data.pkl')

# 5. The legacy (torch < 1.6) format: pickles followed by the raw storages, with a view and a shared storage.
legacy_base = torch.arange(6, dtype=torch.float32).reshape(2, 3)
save('legacy.pth', collections.OrderedDict(w=legacy_base, t=legacy_base.t(), n=torch.tensor([7, -1], dtype=torch.int64),
                                           h=torch.tensor([0.5], dtype=torch.float16), lr=np.float64(0.25)),
     _use_new_zipfile_serialization=False)


# 6. Malicious pickles in an otherwise valid torch zip: os.system via REDUCE (protocol 2, GLOBAL) and
#    builtins.eval via STACK_GLOBAL (protocol 4). Loading them with plain pickle would run the command.
class System:
    def __reduce__(self):
        return (os.system, ('echo advmoe-fixture-was-executed > /tmp/advmoe-pwned',))


class Eval:
    def __reduce__(self):
        return (eval, ('__import__("os").system("echo advmoe-fixture-was-executed > /tmp/advmoe-pwned")',))


def torch_zip(name, payload):
    folder = os.path.splitext(name)[0]
    with zipfile.ZipFile(os.path.join(OUT, name), 'w', zipfile.ZIP_STORED) as z:
        z.writestr(f'{folder}/data.pkl', payload)
        z.writestr(f'{folder}/byteorder', 'little')
        z.writestr(f'{folder}/version', '3\n')


torch_zip('malicious-system.pth', pickle.dumps({'state_dict': System()}, protocol=2))
torch_zip('malicious-eval.pth', pickle.dumps(collections.OrderedDict(w=Eval()), protocol=4))

# 7. safetensors written by the reference library, with metadata.
st = collections.OrderedDict(
    [('conv.weight', torch.randn(3, 2, 3, 3)), ('half', torch.tensor([1.0, -0.5, 65504], dtype=torch.float16)),
     ('bf', torch.tensor([2.5, -1e20], dtype=torch.bfloat16)), ('idx', torch.tensor([3, -4], dtype=torch.int64)),
     ('mask', torch.tensor([True, False])), ('scalar', torch.tensor(1.25, dtype=torch.float64))])
safetensors.torch.save_file(st, os.path.join(OUT, 'tensors.safetensors'), metadata={'format': 'pt', 'arch': 'resnet18'})
expected['tensors.safetensors'] = {'tensors': describe(dict(st)), 'metadata': {'format': 'pt', 'arch': 'resnet18'}}

with open(os.path.join(OUT, 'expected.json'), 'w') as f:
    json.dump(expected, f, indent=1)
    f.write('\n')
print('wrote', sorted(os.listdir(OUT)))
