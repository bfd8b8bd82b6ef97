#!/usr/bin/env node
/** The `deltadiff` command line: a thin edge over the library. */
import { ConfigError } from '../nn/config.js';
import { UsageError } from './args.js';
import { convertCommand } from './convert.js';
import { degradeCommand } from './degrade.js';
import { entropyCommand } from './entropy.js';
import { evalCommand } from './eval.js';
import { infoCommand } from './info.js';
import { trainCommand } from './train.js';
import { upscaleCommand } from './upscale.js';

const USAGE = `deltadiff — DeltaDiff / ResShift ×4 super-resolution on WebGPU

usage:
  deltadiff info [--json] [--model <preset|config.json>]
  deltadiff upscale <input...> -o <file|dir> [--model <preset|config.json> --unet <ckpt> [--autoencoder <ckpt>]]
                    [--weights-key state_dict|ema|params_ema] [--reference]
                    [--steps N] [--kappa K] [--eta-end E] [--min-noise-level M] [--power P] [--seed S]
                    [--tile N] [--overlap N] [--batch N] [--estimate-after K] [--save-steps <png>] [--quiet] [--json] [--force]
  deltadiff eval --gt <dir> (--pred <dir> | --lr <dir> [-o <dir>] [--bicubic | upscale options]) [--crop-border N] [--rgb] [--csv <file>] [--json] [--force]
  deltadiff entropy <hr-dir|image>... [--lr-dir <dir>] [--json]
  deltadiff degrade <input...> -o <dir> [--scale 4] [--round-once] [--force]
  deltadiff train --model <config.json> [--data <hr-dir>...] --out <run-dir> [--steps N] [--batch B] [--crop C]
                  [--lr L] [--resume] [--kappa K] [--seed S] [--autoencoder <ckpt>] [--t-weights w0,…] [--unrolled]
                  (see docs in README)
  deltadiff convert <in.pth|in.safetensors> <out.safetensors> [--fp16] [--config <model.json>] [--force]

No command writes over an existing file without --force, nor ever over a file it reads. Options are
checked before any work: --steps 2…1000, --eta-end and --min-noise-level in (0, 1), 0 ≤ --overlap < --tile,
--batch ≥ 1, degrade --scale 1…32.

Set DELTADIFF_DAWN_TOGGLES (comma separated) to pass options to Dawn.`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  info: infoCommand,
  convert: convertCommand,
  upscale: upscaleCommand,
  eval: evalCommand,
  entropy: entropyCommand,
  degrade: degradeCommand,
  train: trainCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const run = COMMANDS[command];
  if (!run) {
    console.error(`deltadiff: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    const err = e as Error;
    console.error(`deltadiff ${command}: ${err.message}`);
    if (err instanceof UsageError) console.error(`\n${USAGE}`);
    if (process.env.DELTADIFF_DEBUG && err.stack) console.error(err.stack);
    // A bad flag or model config is the user's to fix: exit 2, like a usage error.
    return err instanceof UsageError || err instanceof ConfigError ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
