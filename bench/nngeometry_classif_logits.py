"""NNGeometry 0.3's FIM passes for 'classif_logits' on Conv2d and Linear layers, in plain PyTorch.

NNGeometry is not installable here (no network but npm and apt), so this module reproduces, step
for step, what `FIM(model, loader, PMatKFAC | PMatDiag | PMatEKFAC, n_output=10,
variant='classif_logits')` and `PMatEKFAC.update_diag(loader)` execute in NNGeometry 0.3
(github.com/tfjgeorge/nngeometry, setup.py version '0.3', torch >= 2.0), restricted to the two
layer kinds of the bench's CNNs. The files followed:

  - nngeometry/metrics.py (FIM): the function differentiated is log_softmax(logits) · √p with
    p = exp(log_softmax).detach(), one output per class (n_output = 10);
  - nngeometry/generator/jacobian/__init__.py (Jacobian): per batch of the DataLoader, the input
    gets requires_grad = True, one forward of `function(*d).view(bs, n_output).sum(dim=0)`, then
    for each output o one `torch.autograd.grad(output[o], [inputs], retain_graph=o < n_output - 1)`
    (so every backward runs down to the input, through the first convolution's input gradient,
    and computes no weight gradient); the statistics are taken in hooks: a forward hook on each
    Conv2d / Linear keeps its input x and registers a tensor hook on its output that receives
    gy = ∂output[o]/∂(layer output) (`_add_hooks`, `_hook_savex`); get_kfac_blocks computes
    kfac_xx only when o = 0, then divides A by n/√O and G by √O·n; get_covariance_diag and
    get_kfe_diag divide by n;
  - nngeometry/generator/jacobian/grads.py (LinearJacobianFactory, Conv2dJacobianFactory,
    JacobianFactory.diag): Linear kfac_xx = [x, 1]ᵀ[x, 1], kfac_gg = gyᵀgy, diag =
    (gyᵀ)² (x²) and Σ gy², kfe_diag = ((gy U_G)ᵀ)² ([x, 1] U_A)²; Conv2d kfac_xx = ÃᵀÃ with Ã
    the F.unfold patches (bs·S rows) and a ones column for the bias, kfac_gg = DSᵀDS / S over
    the bs·S rows of gy, diag through the generic JacobianFactory.diag (a zeroed [bs, numel]
    buffer filled by flat_grad, squared, summed over the batch), kfe_diag = Σ_i (G̃_iᵀ Ã_i)²
    after projecting the unfolded patches on U_A and gy on U_G (torch.bmm per example);
  - nngeometry/generator/jacobian/grads_conv.py (conv2d_backward, the default
    conv2d_backward_using_unfold): per-example conv weight gradients as
    bmm(gy.view(bs, C_out, S), unfold(x).view(bs, C_in·kh·kw, S).permute(0, 2, 1));
  - nngeometry/object/pspace.py (PMatKFAC, PMatDiag, PMatEKFAC): the matrices hold exactly what
    get_kfac_blocks / get_covariance_diag return; PMatEKFAC takes the eigenvectors of the KFAC
    blocks (torch.linalg.eigh) and update_diag calls get_kfe_diag with them.

Layouts are NNGeometry's (weights [out, in, kh, kw] flattened, then the bias; the KFE diagonal
as [G index, A index]); bench/pytorch_reference.py times these passes (--nngeometry-cnn32).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _unfold_rows(mod, x):
    """Conv2d patches as bs·S rows of C_in·kh·kw (Conv2dJacobianFactory.kfac_xx / kfe_diag)."""
    ks = (mod.weight.size(2), mod.weight.size(3))
    a = F.unfold(x, kernel_size=ks, stride=mod.stride, padding=mod.padding, dilation=mod.dilation)
    return a.permute(0, 2, 1).contiguous().view(-1, a.size(1))


def _with_ones(rows):
    return torch.cat([rows, torch.ones_like(rows[:, :1])], dim=1)


def _conv_flat_grad(buffer, mod, x, gy):
    """Conv2dJacobianFactory.flat_grad with conv2d_backward_using_unfold (NNGeometry's default)."""
    bs = x.size(0)
    ks = (mod.weight.size(2), mod.weight.size(3))
    w_numel = mod.weight.numel()
    x_unfold = F.unfold(x, kernel_size=ks, stride=mod.stride, padding=mod.padding, dilation=mod.dilation)
    indiv_gw = torch.bmm(gy.view(bs, gy.size(1), -1), x_unfold.view(bs, x_unfold.size(1), -1).permute(0, 2, 1))
    buffer[:, :w_numel].add_(indiv_gw.view(bs, -1))
    if mod.bias is not None:
        buffer[:, w_numel:].add_(gy.sum(dim=(2, 3)))


def kfac_xx(buffer, mod, x):
    if isinstance(mod, nn.Linear):
        rows = x
    else:
        rows = _unfold_rows(mod, x)
    if mod.bias is not None:
        rows = _with_ones(rows)
    buffer.add_(torch.mm(rows.t(), rows))


def kfac_gg(buffer, mod, gy):
    if isinstance(mod, nn.Linear):
        buffer.add_(torch.mm(gy.t(), gy))
    else:
        spatial_locations = gy.size(2) * gy.size(3)
        ds = gy.permute(0, 2, 3, 1).contiguous().view(-1, gy.size(1))
        buffer.add_(torch.mm(ds.t(), ds) / spatial_locations)


def diag(buffer, mod, x, gy):
    if isinstance(mod, nn.Linear):
        w_numel = mod.weight.numel()
        buffer[:w_numel].add_(torch.mm(gy.t() ** 2, x ** 2).view(-1))
        if mod.bias is not None:
            buffer[w_numel:].add_((gy ** 2).sum(dim=0))
    else:
        numel = mod.weight.numel() + (mod.bias.numel() if mod.bias is not None else 0)
        buffer_flat = torch.zeros(x.size(0), numel)
        _conv_flat_grad(buffer_flat, mod, x, gy)
        buffer.add_((buffer_flat ** 2).sum(dim=0))


def kfe_diag(buffer, mod, x, gy, evecs_a, evecs_g):
    if isinstance(mod, nn.Linear):
        if mod.bias is not None:
            x = _with_ones(x)
        gy_kfe = torch.mm(gy, evecs_g)
        x_kfe = torch.mm(x, evecs_a)
        buffer.add_(torch.mm(gy_kfe.t() ** 2, x_kfe ** 2).view(-1))
        return
    gy_s = gy.size()
    bs = gy_s[0]
    x_unfold = _unfold_rows(mod, x)
    if mod.bias is not None:
        x_unfold = _with_ones(x_unfold)
    x_kfe = torch.mm(x_unfold, evecs_a)
    g = gy.view(bs, gy_s[1], -1).permute(0, 2, 1).contiguous()
    gy_kfe = torch.mm(g.view(-1, gy_s[1]), evecs_g)
    gy_kfe = gy_kfe.view(bs, -1, gy_s[1]).permute(0, 2, 1).contiguous()
    indiv_gw = torch.bmm(gy_kfe.view(bs, gy_s[1], -1), x_kfe.view(bs, -1, x_kfe.size(1)))
    buffer.add_((indiv_gw ** 2).sum(dim=0).view(-1))


def factor_sizes(mod):
    """(sA, sG) of get_kfac_blocks / get_kfe_diag."""
    if isinstance(mod, nn.Linear):
        s_a, s_g = mod.in_features, mod.out_features
    else:
        s_a, s_g = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1], mod.out_channels
    return s_a + (1 if mod.bias is not None else 0), s_g


class ClassifLogitsJacobian:
    """NNGeometry 0.3's Jacobian generator with FIM's classif_logits function, Conv2d and Linear only."""

    def __init__(self, model, n_output=10):
        self.model = model
        self.n_output = n_output
        self.mods = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        self.numel = {m: m.weight.numel() + (m.bias.numel() if m.bias is not None else 0) for m in self.mods}
        self.p_pos, start = {}, 0
        for m in self.mods:
            self.p_pos[m] = start
            start += self.numel[m]
        self.n_parameters = start
        self.i_output = 0

    def function(self, *d):
        """metrics.FIM, variant 'classif_logits' (0.3): log p · √p, p detached."""
        log_probs = torch.log_softmax(self.model(d[0]), dim=1)
        probs = torch.exp(log_probs).detach()
        return log_probs * probs ** .5

    def _run(self, loader, hook_gy):
        """The loop every get_* method of the generator runs; returns the example count."""
        xs = {}

        def hook_x(mod, i, o):
            xs[mod] = i[0]
            o.register_hook(lambda g_o: hook_gy(mod, xs[mod], g_o))  # hook_gy returns None: gradient unchanged

        handles = [m.register_forward_hook(hook_x) for m in self.mods]
        n_examples = 0
        try:
            for d in loader:
                inputs = d[0]
                inputs.requires_grad = True
                bs = inputs.size(0)
                output = self.function(*d).view(bs, self.n_output).sum(dim=0)
                for self.i_output in range(self.n_output):
                    torch.autograd.grad(output[self.i_output], [inputs], retain_graph=self.i_output < self.n_output - 1, only_inputs=True)
                n_examples += bs
        finally:
            for h in handles:
                h.remove()
        return n_examples

    def get_kfac_blocks(self, loader):
        blocks = {m: tuple(torch.zeros((s, s)) for s in factor_sizes(m)) for m in self.mods}

        def hook(mod, x, gy):
            kfac_gg(blocks[mod][1], mod, gy)
            if self.i_output == 0:
                kfac_xx(blocks[mod][0], mod, x)

        n_examples = self._run(loader, hook)
        for a, g in blocks.values():
            a.div_(n_examples / self.n_output ** .5)
            g.div_(self.n_output ** .5 * n_examples)
        return blocks

    def get_covariance_diag(self, loader):
        diag_m = torch.zeros((self.n_parameters,))

        def hook(mod, x, gy):
            start = self.p_pos[mod]
            diag(diag_m[start:start + self.numel[mod]], mod, x, gy)

        return diag_m / self._run(loader, hook)

    def kfe(self, blocks):
        """PMatEKFAC.__init__: the eigenvectors of each KFAC factor."""
        return {m: (torch.linalg.eigh(a)[1], torch.linalg.eigh(g)[1]) for m, (a, g) in blocks.items()}

    def get_kfe_diag(self, kfe, loader):
        diags = {}
        for m in self.mods:
            s_a, s_g = factor_sizes(m)
            diags[m] = torch.zeros((s_g * s_a,))

        def hook(mod, x, gy):
            evecs_a, evecs_g = kfe[mod]
            kfe_diag(diags[mod], mod, x, gy, evecs_a, evecs_g)

        n_examples = self._run(loader, hook)
        return {m: d / n_examples for m, d in diags.items()}
