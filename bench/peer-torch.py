# The PyTorch CPU peer of `npm run bench` (bench/run.ts starts it when `python3 -c "import torch"` works).
#
# A line protocol on stdin/stdout, so the harness can interleave each of our rows with its peer row:
#   out, first:  {"peer": "PyTorch <version> CPU", "threads": N, "blas": <path of the BLAS library loaded> | null}
#   in:          {"name": <row name>, "op": ..., <the problem>, "plan": {warmup, minReps, maxReps, targetRepMs, rowBudgetMs}}
#   out:         {"name", "ms", "wall_ms", "reps", "batch"}   or   {"name", "error"}
# An empty line or end of input ends it. Every figure is wall time (the CPU is the device here), timed with
# bench/measure.ts's procedure: warm-up runs, `batch` runs per repetition growing until one lasts about
# targetRepMs, the median per run over the repetitions.
#
# Ops (shapes as in bench/kernels.ts and bench/models.ts; FLOP are counted by the harness, not here):
#   conv2d {batch, inChannels, height, width, outChannels, kernelSize, stride, padding: [top, right, bottom, left]}
#   matmul {m, k, n}
#   unet {config (a ModelConfig), batch, latent}                 one UNet forward, timestep T−1
#   vq-encode {config, size} / vq-decode {config, size}           the VQ-f4 autoencoder, image size `size`
#   sample {config, tiles, tile: [h, w], batch}                   the whole ×4 job on `tiles` LR tiles of
#         h×w, `batch` at a time: bicubic ×4, first-stage encode, the T-step sampler, decode, clamp
#   train {config, batch, latent}                                 forward + backward + AdamW (clipped, EMA)
#
# Networks: the UNet is the float32 transcription of the upstream UNetModelSwin in
# test/fixtures/tools/unet_small_grads_all.py (checked against the golden fixtures); the VQ-f4
# autoencoder is written here from ../shared/docs/MODEL_SPEC.md §3. Random weights drawn like
# bench/models.ts draws ours (N(0, 1/fan_in), biases N(0, 0.05²), norm scales 1 + N(0, 0.1²), ...).
# Float32, autograd off except in `train`, torch.set_num_threads(os.cpu_count()) as our adapter
# uses every core. Debian's python3-torch; never a runtime or CI dependency. Debian builds it with
# BLAS_INFO=generic: Linear, matmul and bmm run on whatever libblas.so.3 the system (or LD_LIBRARY_PATH)
# provides, the reference BLAS unless OpenBLAS is installed; the hello line names the library loaded.
import json, math, os, statistics, sys, time

sys.dont_write_bytecode = True  # no __pycache__ beside the fixture tool
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'test', 'fixtures', 'tools'))
import torch as th  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import unet_small_grads_all as ref  # noqa: E402

MAX_BATCH = 64


# ---- the VQ-f4 autoencoder (MODEL_SPEC.md §3); GroupNorm eps 1e-6 -------------------------------------
def vq_norm(c): return nn.GroupNorm(32, c, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(s, cin, cout):
        super().__init__()
        s.norm1, s.conv1 = vq_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        s.norm2, s.conv2 = vq_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        s.nin_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(s, x):
        h = s.conv1(F.silu(s.norm1(x)))
        return s.nin_shortcut(x) + s.conv2(F.silu(s.norm2(h)))


class AttnBlock(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.norm = vq_norm(c)
        s.q, s.k, s.v, s.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(s, x):
        B, C, H, W = x.shape
        h = s.norm(x)
        q, k, v = (m(h).reshape(B, C, H * W) for m in (s.q, s.k, s.v))
        w = th.softmax(th.bmm(q.transpose(1, 2), k) * C ** -0.5, dim=2)  # [B, i, j]
        o = th.bmm(v, w.transpose(1, 2)).reshape(B, C, H, W)
        return x + s.proj_out(o)


class Downsample(nn.Module):
    def __init__(s, c): super().__init__(); s.conv = nn.Conv2d(c, c, 3, stride=2)
    def forward(s, x): return s.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(s, c): super().__init__(); s.conv = nn.Conv2d(c, c, 3, padding=1)
    def forward(s, x): return s.conv(F.interpolate(x, scale_factor=2, mode='nearest'))


class VQModel(nn.Module):
    def __init__(s, ae):
        super().__init__()
        dd = ae['ddconfig']; ch, mult, nrb = dd['ch'], dd['ch_mult'], dd['num_res_blocks']
        enc = [nn.Conv2d(dd['in_channels'], ch, 3, padding=1)]
        cin = ch
        for i, m in enumerate(mult):
            for _ in range(nrb): enc.append(ResnetBlock(cin, ch * m)); cin = ch * m
            if i < len(mult) - 1: enc.append(Downsample(cin))
        enc += [ResnetBlock(cin, cin), AttnBlock(cin), ResnetBlock(cin, cin), vq_norm(cin), nn.SiLU(),
                nn.Conv2d(cin, dd['z_channels'], 3, padding=1), nn.Conv2d(dd['z_channels'], ae['embed_dim'], 1)]
        s.encoder = nn.Sequential(*enc)
        s.codebook = nn.Parameter(th.empty(ae['n_embed'], ae['embed_dim']))
        cin = ch * mult[-1]
        dec = [nn.Conv2d(ae['embed_dim'], dd['z_channels'], 1), nn.Conv2d(dd['z_channels'], cin, 3, padding=1),
               ResnetBlock(cin, cin), AttnBlock(cin), ResnetBlock(cin, cin)]
        for i in reversed(range(len(mult))):
            for _ in range(nrb + 1): dec.append(ResnetBlock(cin, ch * mult[i])); cin = ch * mult[i]
            if i > 0: dec.append(Upsample(cin))
        dec += [vq_norm(cin), nn.SiLU(), nn.Conv2d(cin, dd['out_ch'], 3, padding=1)]
        s.decoder = nn.Sequential(*dec)
        s.factor = 2 ** (len(mult) - 1)

    def encode(s, x): return s.encoder(x)

    def decode(s, z):
        B, C, H, W = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, C)
        e = s.codebook
        d = (flat ** 2).sum(1, keepdim=True) + (e ** 2).sum(1)[None] - 2 * flat @ e.t()
        zq = e[d.argmin(1)].reshape(B, H, W, C).permute(0, 3, 1, 2)
        return s.decoder(zq)


class PixelUnshuffleStage:
    def __init__(s, factor): s.factor = factor
    def encode(s, x): return F.pixel_unshuffle(x, s.factor)
    def decode(s, z): return F.pixel_shuffle(z, s.factor)


def init_like_ours(model, gen):
    """bench/models.ts's draws, by the official parameter names."""
    with th.no_grad():
        for name, p in model.named_parameters():
            if name == 'codebook': std, mean = 0.7, 0.0
            elif name.endswith('relative_position_bias_table'): std, mean = 0.5, 0.0
            elif name.endswith('.bias'): std, mean = 0.05, 0.0
            elif p.dim() == 1: std, mean = 0.1, 1.0
            else: std, mean = (0.1 if name == 'out.2.weight' else 1.0) / math.sqrt(p[0].numel()), 0.0
            p.copy_(th.randn(p.shape, generator=gen) * std + mean)
    return model


# ---- networks, built once per config and kept ----------------------------------------------------------
_models = {}


def unet_of(config):
    key = ('unet', json.dumps(config['unet'], sort_keys=True))
    if key not in _models: _models[key] = init_like_ours(ref.UNet(config['unet']), th.Generator().manual_seed(1)).eval()
    return _models[key]


def first_stage_of(config):
    ae = config['autoencoder']
    if ae['type'] == 'pixel-unshuffle': return PixelUnshuffleStage(config['scale'])
    key = ('vq', json.dumps(ae, sort_keys=True))
    if key not in _models: _models[key] = init_like_ours(VQModel(ae), th.Generator().manual_seed(2)).eval()
    return _models[key]


def etas(d):
    """MODEL_SPEC.md §1.3."""
    T, kappa, s1 = d['steps'], d['kappa'], d['min_noise_level']
    if kappa > 0: s1 = min(s1 / kappa, s1)
    r = math.exp(math.log(d['etas_end'] / s1) / (T - 1))
    return [(r ** ((t / (T - 1)) ** d['power'] * (T - 1)) * s1) ** 2 for t in range(T)]


def sample(config, lr):
    """The ×4 job on a batch of LR tiles in [−1, 1]: MODEL_SPEC.md §1 with κ = 0 (no noise), as upscaleTiles."""
    d = config['diffusion']
    if d['kappa'] != 0: raise ValueError('the torch peer samples κ = 0 models only')
    unet, stage = unet_of(config), first_stage_of(config)
    y = stage.encode(F.interpolate(lr, scale_factor=config['scale'], mode='bicubic', align_corners=False)) * d['scale_factor']
    eta = etas(d); x = y
    for t in reversed(range(d['steps'])):
        out = unet(x, th.full((lr.shape[0],), t, dtype=th.long), lr)
        x0 = y - out if d['predict'] == 'residual' else out
        prev = eta[t - 1] if t > 0 else 0.0
        x = (prev / eta[t]) * x + ((eta[t] - prev) / eta[t]) * x0
    return stage.decode(x / d['scale_factor']).clamp(-1, 1)


# ---- the problems --------------------------------------------------------------------------------------
def prepare(p):
    """Returns run(): one run of the row's work."""
    g = th.Generator().manual_seed(3)
    rand = lambda *shape, std=1.0: th.randn(shape, generator=g) * std
    op = p['op']
    if op == 'conv2d':
        cin, k = p['inChannels'], p['kernelSize']
        x = rand(p['batch'], cin, p['height'], p['width'])
        w = rand(p['outChannels'], cin, k, k, std=1 / math.sqrt(cin * k * k)); b = rand(p['outChannels'], std=0.05)
        top, right, bottom, left = p['padding']
        if top == bottom and left == right:
            return lambda: F.conv2d(x, w, b, stride=p['stride'], padding=(top, left))
        return lambda: F.conv2d(F.pad(x, (left, right, top, bottom)), w, b, stride=p['stride'])
    if op == 'matmul':
        a = rand(p['m'], p['k']); b = rand(p['k'], p['n'], std=1 / math.sqrt(p['k']))
        return lambda: a @ b
    config = p['config']
    if op == 'unet':
        unet, c, n = unet_of(config), config['unet'], p['latent']
        x = rand(p['batch'], c['in_channels'], n, n); lq = rand(p['batch'], 3, n, n, std=0.5)
        t = th.full((p['batch'],), config['diffusion']['steps'] - 1, dtype=th.long)
        return lambda: unet(x, t, lq)
    if op in ('vq-encode', 'vq-decode'):
        vq = first_stage_of(config)
        if op == 'vq-encode':
            x = rand(1, 3, p['size'], p['size'], std=0.5)
            return lambda: vq.encode(x)
        z = rand(1, config['autoencoder']['embed_dim'], p['size'] // vq.factor, p['size'] // vq.factor)
        return lambda: vq.decode(z)
    if op == 'sample':
        lr = th.rand((p['tiles'], 3, *p['tile']), generator=g) * 2 - 1
        size = p['batch']
        return lambda: [sample(config, lr[i:i + size]) for i in range(0, p['tiles'], size)]
    if op == 'train':
        return prepare_train(config, p['batch'], p['latent'], rand)
    raise ValueError(f'unknown op {op!r}')


def prepare_train(config, batch, latent, rand):
    """What trainStep does: MSE loss, backward, gradient clipping to norm 1, AdamW, EMA of the weights."""
    unet = init_like_ours(ref.UNet(config['unet']), th.Generator().manual_seed(4)).train()
    c = config['unet']
    x = rand(batch, c['in_channels'], latent, latent); lq = rand(batch, 3, latent, latent, std=0.5)
    target = rand(batch, c['out_channels'], latent, latent)
    t = th.arange(batch) % config['diffusion']['steps']
    params = list(unet.parameters())
    ema = [q.detach().clone() for q in params]
    optimizer = th.optim.AdamW(params, lr=1e-4, weight_decay=0.0)

    def run():
        with th.enable_grad():
            optimizer.zero_grad(set_to_none=True)
            loss = F.mse_loss(unet(x, t, lq), target)
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            with th.no_grad():
                th._foreach_mul_(ema, 0.999)
                th._foreach_add_(ema, [q.detach() for q in params], alpha=0.001)
        return loss
    return run


def measure(run, plan):
    """bench/measure.ts's procedure on the wall clock."""
    estimate = 0.0
    for _ in range(plan['warmup']):
        start = time.perf_counter(); run(); estimate = (time.perf_counter() - start) * 1000
    batch = min(MAX_BATCH, max(1, math.ceil(plan['targetRepMs'] / estimate))) if estimate > 0 else 1
    reps = min(plan['maxReps'], max(plan['minReps'], math.floor(plan['rowBudgetMs'] / (estimate * batch)))) if estimate > 0 else plan['minReps']
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(batch): run()
        times.append((time.perf_counter() - start) * 1000 / batch)
    ms = statistics.median(times)
    return {'ms': ms, 'wall_ms': ms, 'reps': reps, 'batch': batch}


def loaded_blas():
    """The BLAS shared library mapped into this process (after a matmul has loaded it)."""
    th.ones(2, 2) @ th.ones(2, 2)
    try:
        maps = open('/proc/self/maps').read().split('\n')
    except OSError:
        return None
    libs = sorted({os.path.realpath(line.split()[-1]) for line in maps if 'blas' in line.lower() and '/' in line})
    return next((lib for lib in libs if 'openblas' in os.path.basename(lib)), libs[0] if libs else None)


def main():
    th.set_num_threads(os.cpu_count())
    th.set_grad_enabled(False)
    print(json.dumps({'peer': f'PyTorch {th.__version__} CPU', 'threads': th.get_num_threads(), 'blas': loaded_blas()}), flush=True)
    for line in sys.stdin:
        if not line.strip(): break
        p = json.loads(line)
        try:
            answer = {'name': p['name'], **measure(prepare(p), p['plan'])}
        except Exception as e:  # the harness reports it beside the row and goes on
            answer = {'name': p['name'], 'error': f'{type(e).__name__}: {e}'}
        print(json.dumps(answer), flush=True)


if __name__ == '__main__':
    main()
