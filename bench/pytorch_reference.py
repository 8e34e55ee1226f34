#!/usr/bin/env python3
"""PyTorch reference for `npm run bench` and `npm run bench:pytorch` (bench/pytorch.ts).

Times, on the same machine and with the same architectures and example counts as
bench/workloads.ts (batches of 128, N(0, 1) inputs, labels uniform in 0..9, mean
cross-entropy on the logits):
  - one plain gradient step = forward + backward over all the batches (no optimiser update),
    the "unit" the TypeScript bench divides by;
  - torch.linalg.eigh in float64 at the sizes given (default 1024, 2048, 5409: the bench
    CNN's widest Kronecker factor is 5,409 wide), on the matrix of bench/linalg.ts
    (A = GᵀG/n + 0.01·I, G uniform in (−0.5, 0.5)), with ‖AV − VΛ‖_F / ‖A‖_F.
Prints one JSON object on stdout; progress on stderr.

Layouts: torch is channels-first, tfjs channels-last; the arithmetic is the same. TF's 'same'
padding with stride 2 on an even input pads only bottom/right, reproduced with F.pad.
BatchNormalization runs in inference mode (moving statistics), as tfjs's model.apply does.

Threads: torch.set_num_threads(BENCH_TORCH_THREADS, default: all CPUs). Install Debian's
libopenblas0-pthread so that torch's LAPACK/BLAS is OpenBLAS, not the reference BLAS (the
JSON reports the BLAS the process mapped).

  - with --kfac-mlp WIDTH,HIDDEN,EXAMPLES: the plain step and NNGeometry's exact KFAC pass
    ('classif_logits': one forward, then one backward per output of log_softmax·√p with p held
    fixed, to the pre-activations of every Linear; A += [x, 1]ᵀ[x, 1], G += gᵀg in float32) on
    the MLP 784 → WIDTH×HIDDEN → 10 of bench/scale.ts, so that the KFAC ÷ plain-step multiple of
    the scale rows has PyTorch's beside it.

  - with --nngeometry-cnn32: on the CNN 32x32x3 (cnn32() below, the same 1,024 examples as its
    workload, batches of 128), the plain step and NNGeometry 0.3's FIM passes for
    'classif_logits' — PMatKFAC (get_kfac_blocks), PMatDiag (get_covariance_diag) and
    PMatEKFAC.update_diag (get_kfe_diag, given the eigenvectors of the KFAC factors computed
    before the timed region) — as NNGeometry runs them: a DataLoader, one forward per batch, one
    backward per output o of log_softmax·√p (p detached) to the input, the statistics taken in
    hooks on Conv2d and Linear, Conv2d through F.unfold. NNGeometry is not installed (no network
    but npm/apt), so bench/nngeometry_classif_logits.py reproduces it from its source: files
    nngeometry/metrics.py (FIM), nngeometry/generator/jacobian/__init__.py (Jacobian:
    get_kfac_blocks, get_covariance_diag, get_kfe_diag, _add_hooks),
    nngeometry/generator/jacobian/grads.py (LinearJacobianFactory, Conv2dJacobianFactory,
    JacobianFactory.diag), nngeometry/generator/jacobian/grads_conv.py
    (conv2d_backward_using_unfold) and nngeometry/object/pspace.py (PMatKFAC, PMatDiag,
    PMatEKFAC) of github.com/tfjgeorge/nngeometry at version 0.3. Each operation is warmed up
    once, then timed `--reps` times (median), the reps of the four interleaved. --dump FILE also
    writes the weights, inputs and results for a cross-check against our library (with
    --examples N for a small case).

Usage: /usr/bin/python3 bench/pytorch_reference.py [--quick] [--eigh 1024,2048,5409] [--reps 3]
       /usr/bin/python3 bench/pytorch_reference.py --kfac-mlp 4096,7,256 [--reps 1]
       /usr/bin/python3 bench/pytorch_reference.py --nngeometry-cnn32 [--reps 3] [--examples 1024] [--dump FILE]
"""
import argparse
import json
import os
import platform
import sys
import time


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def mapped_blas():
    """The BLAS/LAPACK shared objects this process has mapped (Linux), e.g. openblas-pthread."""
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f if 'blas' in line.lower() or 'lapack' in line.lower()}
        return sorted(os.path.realpath(p) for p in libs if p.startswith('/'))
    except OSError:
        return []


def malloc_settings():
    """glibc's allocator settings from the environment (bench/pytorch.ts sets them so that freed
    memory is kept: on a VM with expensive page faults the defaults cost PyTorch's CNN step 5x)."""
    return {k: os.environ.get(k) for k in ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')}


def dump_nngeometry_cnn32(path, model, data, generator, loader):
    """Writes what a cross-check against our library needs (torch layouts, float32 values as lists):
    each Conv2d/Linear's weight and bias, the inputs (NCHW), and NNGeometry's KFAC blocks, FIM
    diagonal and KFE diagonal (with the eigenvalues of the KFAC factors, ascending)."""
    import torch
    blocks = generator.get_kfac_blocks(loader)
    kfe = generator.kfe(blocks)
    kfe_diag = generator.get_kfe_diag(kfe, loader)
    fim_diag = generator.get_covariance_diag(loader)
    layers = []
    for m in generator.mods:
        a, g = blocks[m]
        layers.append({
            'kind': type(m).__name__, 'weight_shape': list(m.weight.shape), 'weight': m.weight.detach().reshape(-1).tolist(),
            'bias': m.bias.detach().tolist() if m.bias is not None else None,
            'A': a.reshape(-1).tolist(), 'G': g.reshape(-1).tolist(), 'size_A': a.size(0), 'size_G': g.size(0),
            'evals_A': torch.linalg.eigvalsh(a).tolist(), 'evals_G': torch.linalg.eigvalsh(g).tolist(),
            'kfe_diag': kfe_diag[m].tolist(),
        })
    xs = torch.cat([x for x, _ in data])
    with open(path, 'w') as f:
        json.dump({'x_shape': list(xs.shape), 'x': xs.reshape(-1).tolist(), 'layers': layers, 'diag': fim_diag.tolist()}, f)
    log(f'  wrote {path}')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true', help='256 examples per workload, eigh at 256 and 512')
    parser.add_argument('--eigh', default=None, help='comma-separated sizes (default 1024,2048,5409)')
    parser.add_argument('--reps', type=int, default=3)
    parser.add_argument('--skip-eigh', action='store_true')
    parser.add_argument('--kfac-mlp', default=None, help='WIDTH,HIDDEN,EXAMPLES: plain step and exact KFAC pass of that MLP only')
    parser.add_argument('--nngeometry-cnn32', action='store_true',
                        help="plain step and NNGeometry 0.3's FIM PMatKFAC, PMatDiag and PMatEKFAC.update_diag passes on the CNN 32x32x3 only")
    parser.add_argument('--examples', type=int, default=1024, help='with --nngeometry-cnn32: examples (default 1024)')
    parser.add_argument('--dump', default=None, help='with --nngeometry-cnn32: write weights, inputs and the three results to this JSON file')
    args = parser.parse_args()

    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    threads = int(os.environ.get('BENCH_TORCH_THREADS', os.cpu_count() or 1))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch = 128

    class SamePadStride2(nn.Module):
        """TF 'same' for a 3×3 stride-2 convolution on an even input: pad 0 before, 1 after."""

        def forward(self, x):
            return F.pad(x, (0, 1, 0, 1))

    def mlp():
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))

    def cnn():
        # 28x28x1 → conv3x3x16 same relu → conv3x3x32 stride 2 valid relu (13x13) → flatten → dense 10
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 13 * 13, 10),
        )

    class GlobalAveragePool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    def cnn32():
        # 32x32x3 → conv3x3x16 same relu → conv3x3x32 s2 valid relu (15x15) → conv3x3x64 s2 valid
        # relu (7x7) → global average pooling → dense 10: the CNN, whose NNGeometry times
        # (KFAC, Diag, EKFAC.updateDiag) anchor the bench's CNN rows.
        return nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(),
            GlobalAveragePool(), nn.Linear(64, 10),
        )

    class ResidualCnn(nn.Module):
        # conv3x3x16 s2 same (no bias) + BN + relu → [conv + BN + relu → conv + BN] + skip → relu
        # → conv3x3x32 s2 same relu → global average pooling → dense 10
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(SamePadStride2(), nn.Conv2d(3, 16, 3, stride=2, bias=False), nn.BatchNorm2d(16, eps=1e-3), nn.ReLU())
            self.r1 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16, eps=1e-3), nn.ReLU())
            self.r2 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16, eps=1e-3))
            self.down = nn.Sequential(SamePadStride2(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU())
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            s = self.stem(x)
            h = F.relu(s + self.r2(self.r1(s)))
            h = self.down(h)
            return self.head(h.mean(dim=(2, 3)))

    def workload(name, model, shape, examples):
        g = torch.Generator().manual_seed(len(name))
        data = []
        for k in range((examples + batch - 1) // batch):
            b = min(batch, examples - k * batch)
            data.append((torch.randn((b, *shape), generator=g), torch.randint(0, 10, (b,), generator=g)))
        return name, model, data, examples

    def plain_step(model, data):
        for xs, ys in data:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(xs), ys).backward()

    if args.kfac_mlp:
        width, hidden, examples = (int(v) for v in args.kfac_mlp.split(','))
        layers = [nn.Linear(784, width), nn.ReLU()]
        for _ in range(hidden - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        model = nn.Sequential(*layers, nn.Linear(width, 10))
        _, _, data, _ = workload('MLP', model, (784,), examples)
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]

        def plain_step_mlp():
            for xs, ys in data:
                model.zero_grad(set_to_none=True)
                F.cross_entropy(model(xs), ys).backward()

        def kfac_pass():
            A = [torch.zeros(m.in_features + 1, m.in_features + 1) for m in linears]
            G = [torch.zeros(m.out_features, m.out_features) for m in linears]
            for xs, _ in data:
                inputs, outputs = [], []

                def keep(mod, i, o):  # returns None: the output stays as it is
                    inputs.append(i[0].detach())
                    outputs.append(o)

                hooks = [m.register_forward_hook(keep) for m in linears]
                try:
                    logits = model(xs)
                finally:
                    for h in hooks:
                        h.remove()
                f = F.log_softmax(logits, dim=1) * F.softmax(logits, dim=1).detach().sqrt()
                for i, x in enumerate(inputs):
                    x1 = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
                    A[i].addmm_(x1.T, x1)
                for o in range(f.shape[1]):
                    grads = torch.autograd.grad(f[:, o].sum(), outputs, retain_graph=o + 1 < f.shape[1])
                    for i, g in enumerate(grads):
                        G[i].addmm_(g.T, g)
            return [a / examples for a in A], [g / examples for g in G]

        rows = []
        for what, fn in (('plain forward+backward', plain_step_mlp), ('KFAC factors (NNGeometry classif_logits)', kfac_pass)):
            fn()  # warm-up
            samples = []
            for _ in range(max(args.reps, 1)):
                t0 = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            rows.append({'workload': f'MLP 784-{width}x{hidden}-10, {examples} examples', 'what': what, 'examples': examples,
                         'params': sum(p.numel() for p in model.parameters()), 'ms': samples[len(samples) // 2], 'samples': samples})
            log(f'  PyTorch MLP 784-{width}x{hidden}-10: {what} {samples[len(samples) // 2]:.0f} ms')
        print(json.dumps({'schema': 1, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': mapped_blas(), 'malloc': malloc_settings(), 'rows': rows,
                          'kfac_over_plain': rows[1]['ms'] / rows[0]['ms']}))
        return

    if args.nngeometry_cnn32:
        from nngeometry_classif_logits import ClassifLogitsJacobian
        from torch.utils.data import DataLoader, TensorDataset

        examples = args.examples
        name, model, data, _ = workload('CNN 32x32x3', cnn32(), (3, 32, 32), examples)
        model.eval()
        params = sum(p.numel() for p in model.parameters())
        # NNGeometry iterates a DataLoader (metrics.FIM's `loader`); same examples, same batches of 128.
        loader = DataLoader(TensorDataset(torch.cat([x for x, _ in data]), torch.cat([y for _, y in data])), batch_size=batch)
        generator = ClassifLogitsJacobian(model, n_output=10)
        # PMatEKFAC's eigenvectors, computed before the timed region as the EKFAC constructor does.
        kfe = generator.kfe(generator.get_kfac_blocks(loader))
        ops = (
            ('plain forward+backward', lambda: plain_step(model, data)),
            ('NNGeometry FIM PMatKFAC', lambda: generator.get_kfac_blocks(loader)),
            ('NNGeometry FIM PMatDiag', lambda: generator.get_covariance_diag(loader)),
            ('NNGeometry PMatEKFAC.update_diag', lambda: generator.get_kfe_diag(kfe, loader)),
        )
        # Each operation warmed up once, then the reps interleaved (plain, KFAC, Diag, update_diag,
        # plain, ...): on a shared machine every operation's samples then span the same period,
        # so that the multiples of the plain step are not the ratio of two different loads.
        for _, fn in ops:
            fn()
        samples = [[] for _ in ops]
        for _ in range(max(args.reps, 1)):
            for k, (_, fn) in enumerate(ops):
                t0 = time.perf_counter()
                fn()
                samples[k].append((time.perf_counter() - t0) * 1000)
        rows = []
        for (what, _), s in zip(ops, samples):
            s.sort()
            rows.append({'workload': name, 'what': what, 'examples': examples, 'params': params, 'ms': s[len(s) // 2], 'samples': s})
            log(f'  PyTorch {name}: {what} {s[len(s) // 2]:.0f} ms (×{s[len(s) // 2] / rows[0]["ms"]:.1f} plain step)')
        if args.dump:
            dump_nngeometry_cnn32(args.dump, model, data, generator, loader)
        print(json.dumps({'schema': 1, 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': mapped_blas(), 'malloc': malloc_settings(), 'rows': rows,
                          'over_plain': {'kfac': rows[1]['ms'] / rows[0]['ms'], 'diag': rows[2]['ms'] / rows[0]['ms'], 'update_diag': rows[3]['ms'] / rows[0]['ms']}}))
        return

    quick = args.quick
    n = (lambda full: 256 if quick else full)
    workloads = [
        workload('MLP 784-512-512-10', mlp(), (784,), n(2048)),
        workload('CNN 28x28x1-c16-c32s2-10', cnn(), (1, 28, 28), n(1024)),
        workload('ResNet 32x32x3-BN', ResidualCnn(), (3, 32, 32), n(512)),
        workload('CNN 32x32x3', cnn32(), (3, 32, 32), n(1024)),
    ]

    rows = []
    for name, model, data, examples in workloads:
        model.eval()  # BN on moving statistics; no dropout anywhere
        plain_step(model, data)  # warm-up (allocator, oneDNN primitives)
        samples = []
        for _ in range(max(args.reps, 1)):
            t0 = time.perf_counter()
            plain_step(model, data)
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        params = sum(p.numel() for p in model.parameters())
        rows.append({'workload': name, 'what': 'plain forward+backward', 'examples': examples, 'params': params,
                     'ms': samples[len(samples) // 2], 'samples': samples})
        log(f'  PyTorch {name}: plain forward+backward {samples[len(samples) // 2]:.0f} ms')

    eigh_rows = []
    if not args.skip_eigh:
        sizes = [int(s) for s in args.eigh.split(',')] if args.eigh else ([256, 512] if quick else [1024, 2048, 5409])
        for size in sizes:
            g = torch.Generator().manual_seed(size)
            G = torch.rand((size, size), generator=g, dtype=torch.float64) - 0.5
            A = G.T @ G / size + 0.01 * torch.eye(size, dtype=torch.float64)
            samples = []
            for rep in range(max(1, args.reps if size <= 2048 else 1)):
                t0 = time.perf_counter()
                w, v = torch.linalg.eigh(A)
                samples.append((time.perf_counter() - t0) * 1000)
            samples.sort()
            residual = float(torch.linalg.norm(A @ v - v * w) / torch.linalg.norm(A))
            eigh_rows.append({'n': size, 'ms': samples[len(samples) // 2], 'samples': samples, 'residual': residual})
            log(f'  PyTorch eigh float64 n={size}: {samples[len(samples) // 2]:.0f} ms (residual {residual:.1e})')

    print(json.dumps({
        'schema': 1,
        'torch': torch.__version__,
        'python': platform.python_version(),
        'executable': sys.executable,
        'threads': torch.get_num_threads(),
        'blas': mapped_blas(), 'malloc': malloc_settings(),
        'quick': quick,
        'rows': rows,
        'eigh': eigh_rows,
    }))


if __name__ == '__main__':
    main()
