# How far does PyTorch fp16 autocast (what the official ResShift inference runs on CUDA:
# torch.cuda.amp.autocast) move the small fixture UNet's output from float32?  CPU emulation.
#
# Usage (Debian python3-torch 1.13, CPU; never a runtime or CI dependency):
#   /usr/bin/python3 bench/fp16-autocast.py [test/fixtures]
#
# The UNet is the float32 transcription of the upstream UNetModelSwin forward in
# test/fixtures/tools/unet_small_grads_all.py (checked against the golden fixtures).
#
# Emulating CUDA autocast (fp16) on CPU: activations really are torch.float16 tensors where autocast
# would make them so, and dtype promotion does the rest, as on CUDA:
#  - autocast's fp16 list (conv2d, linear, matmul/bmm): inputs, weights and bias rounded to fp16, the
#    op computed in fp32 (= fp32 accumulation), output rounded to fp16. conv2d adds its bias after
#    rounding (at::convolution adds it to the fp16 cuDNN output: two roundings); linear rounds once
#    (addmm, bias inside the GEMM epilogue).
#  - autocast's fp32 list (group_norm, softmax, ...): run in fp32 (the GN class upcasts anyway, as
#    upstream's GroupNorm32 does, and casts back to the input's dtype).
#  - everything else runs in the input dtype: an fp16 elementwise op (add, mul, SiLU, GELU) is
#    computed in fp32 and rounded to fp16 once (CUDA's opmath; CPU Half add/mul do the same, and
#    SiLU/GELU/nearest-upsample, which lack CPU Half kernels, are computed in fp32 and rounded);
#    fp16 + fp32 tensor (the relative-position bias, the shift mask) promotes to fp32.
#  - upstream casts h back to the input dtype (fp32) before `out` (guided-diffusion's
#    `h = h.type(x.dtype)`); a pre-hook on `out` does the same here.
# Not emulated: the accumulation order and any reduced-precision reduction inside cuDNN / cuBLAS
# kernels (tensor cores, split-K), algorithm choice (Winograd/FFT) — see the report.
import contextlib, json, os, sys
import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the fixture tool
sys.path.insert(0, os.path.join(HERE, '..', 'test', 'fixtures', 'tools'))
import unet_small_grads_all as ref  # noqa: E402

th.set_grad_enabled(False)
FX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, '..', 'test', 'fixtures')

r16 = lambda t: None if t is None else t.half().float()   # round to fp16, keep fp32 for the op


def load(dtype=th.float32):
    cfg = json.load(open(f'{FX}/configs.json'))['unet_small']
    model = ref.UNet(cfg)
    w, _ = ref.read_st(f'{FX}/unet_small.safetensors')
    sd = model.state_dict()
    model.load_state_dict({k: th.from_numpy(w[k].astype(np.int64 if w[k].dtype == np.int64 else np.float32)) for k in sd}, strict=True)
    model = model.to(dtype).eval()
    if dtype == th.float64:  # a float64 reference: no fp32 casts inside (GN's x.float(), the fp32 time embedding)
        for m in model.modules():
            if isinstance(m, ref.GN): m.forward = nn.GroupNorm.forward.__get__(m)
        model.time_embed.register_forward_pre_hook(lambda m, inp: (inp[0].double(),))
    return model


@contextlib.contextmanager
def autocast_fp16_emulated(model):
    orig = dict(conv=nn.Conv2d.forward, lin=nn.Linear.forward, mm=th.Tensor.__matmul__, silu=nn.SiLU.forward,
                gelu=nn.GELU.forward, interp=F.interpolate, softmax=th.softmax)

    def conv(self, x):
        y = F.conv2d(r16(x), r16(self.weight), None, self.stride, self.padding, self.dilation, self.groups).half()
        return y if self.bias is None else y + self.bias.half()[None, :, None, None]

    def lin(self, x):
        return F.linear(r16(x), r16(self.weight), r16(self.bias)).half()

    def mm(a, b):
        return th.matmul(r16(a), r16(b)).half()

    def same_dtype(fn):
        return lambda *a, **k: fn(a[0].float(), *a[1:], **k).to(a[0].dtype)

    def softmax(x, *a, **k):  # fp32 list
        return orig['softmax'](x.float(), *a, **k)

    nn.Conv2d.forward = conv; nn.Linear.forward = lin; th.Tensor.__matmul__ = mm
    nn.SiLU.forward = lambda self, x: same_dtype(F.silu)(x)
    nn.GELU.forward = lambda self, x: same_dtype(F.gelu)(x)
    F.interpolate = same_dtype(orig['interp']); th.softmax = softmax
    hook = model.out.register_forward_pre_hook(lambda m, inp: (inp[0].float(),))
    try:
        yield
    finally:
        nn.Conv2d.forward = orig['conv']; nn.Linear.forward = orig['lin']; th.Tensor.__matmul__ = orig['mm']
        nn.SiLU.forward = orig['silu']; nn.GELU.forward = orig['gelu']
        F.interpolate = orig['interp']; th.softmax = orig['softmax']
        hook.remove()


def err(a, b):
    """(max |a-b| / max |b|, RMS(a-b) / RMS(b)), in float64."""
    a = np.asarray(a, np.float64); b = np.asarray(b, np.float64)
    return np.abs(a - b).max() / np.abs(b).max(), np.sqrt(((a - b) ** 2).mean() / (b ** 2).mean())


def main():
    # CPU Half elementwise ops round once from the exact fp32 result (what CUDA's opmath does).
    g = th.Generator().manual_seed(0)
    a, b = th.randn(1 << 16, generator=g).half(), th.randn(1 << 16, generator=g).half()
    assert th.equal(a + b, (a.float() + b.float()).half()) and th.equal(a * b, (a.float() * b.float()).half())

    io, _ = ref.read_st(f'{FX}/unet_small_io.safetensors')
    T = lambda k: th.from_numpy(np.array(io[k]))
    m32, m64 = load(), load(th.float64)
    cases = [(c, T(f'{c}.x'), T(f'{c}.t'), T(f'{c}.lq'), io[f'{c}.out']) for c in 'abc']
    cases.append(('batch', th.cat([T('a.x'), T('b.x')]), T('batch.t'), th.cat([T('a.lq'), T('b.lq')]), io['batch.out']))

    rows = []
    for name, x, t, lq, fixture in cases:
        o32 = m32(x, t, lq)
        o64 = m64(x.double(), t, lq.double())
        with autocast_fp16_emulated(m32):
            o16 = m32(x, t, lq)
        assert o16.dtype == th.float16 or o16.dtype == th.float32
        o16 = o16.float()
        assert th.isfinite(o16).all()
        rows.append((f'{name} {tuple(x.shape[2:])} t={t.tolist()}', err(o32, fixture), err(o64, fixture), err(o16, o32)))

    # One full 4-step DeltaDiff sampler pass in latent space (kappa = 0: x_T = z_y, no noise, input scale 1).
    p, _ = ref.read_st(f'{FX}/pipeline_small-deltadiff.safetensors')
    s = json.load(open(f'{FX}/schedules.json'))['deltadiff_x4']
    kappa = s.get('kappa', 0.0); assert kappa == 0.0
    lq = th.from_numpy(np.array(p['lr'])); zy = th.from_numpy(np.array(p['z_y']))

    def sample(emulate, model, dt=th.float32):
        x = zy.to(dt); out = {}
        for k, t in enumerate(range(s['T'] - 1, -1, -1)):
            scale = 1 / np.sqrt(s['etas'][t] * kappa ** 2 + 1)
            ctx = autocast_fp16_emulated(model) if emulate else contextlib.nullcontext()
            with ctx:
                pred = model(x * scale, th.tensor([t]), lq.to(dt))
            # upstream: fp32 coefficients * fp16 prediction -> fp32 sample
            x = s['posterior_mean_coef1'][t] * x + s['posterior_mean_coef2'][t] * pred.to(dt)
            out[f'step{k}.pred_xstart'] = pred.float(); out[f'step{k}.sample'] = x.float()
        return out

    s32, s64, s16 = sample(False, m32), sample(False, m64, th.float64), sample(True, m32)
    steps = [(f'sampler {k}', err(s32[k], p[k]), err(s64[k], p[k]), err(s16[k], s32[k]))
             for k in (f'step{i}.{w}' for i in range(s['T']) for w in ('pred_xstart', 'sample'))]

    print('relative error: max = max|a-b|/max|b|, rms = RMS(a-b)/RMS(b)')
    print(f'{"case":34} {"f32 vs fixture":>19} {"f64 vs fixture":>19} {"fp16-autocast vs f32":>21}')
    print(f'{"":34} {"max":>9} {"rms":>9} {"max":>9} {"rms":>9} {"max":>10} {"rms":>10}')
    worst32 = 0
    for label, e32, e64, e16 in rows + steps:
        print(f'{label:34} {e32[0]:9.1e} {e32[1]:9.1e} {e64[0]:9.1e} {e64[1]:9.1e} {e16[0]:10.1e} {e16[1]:10.1e}')
    for label, e32, _, _ in rows:
        worst32 = max(worst32, e32[0])
    worst_steps = max(e32[0] for _, e32, _, _ in steps)
    print(f'float32 reproduces the fixture UNet outputs within {worst32:.1e} of their largest magnitude '
          f'({"OK" if worst32 < 1e-4 else "FAIL"}, tolerance 1e-4); sampler steps within {worst_steps:.1e} '
          f'({"OK" if worst_steps < 5e-4 else "FAIL"}, tolerance 5e-4)')
    if worst32 >= 1e-4 or worst_steps >= 5e-4: sys.exit(1)


if __name__ == '__main__':
    main()
