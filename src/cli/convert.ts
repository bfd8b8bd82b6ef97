import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { parseArgs } from 'node:util';
import { openStateDict } from '../io/checkpoint.js';
import { IoError } from '../io/errors.js';
import { type HostTensor, TensorHandle, isFloatDType, toFloat32 } from '../io/host-tensor.js';
import { withFileSource, writeFileAtomic } from '../io/node-files.js';
import { streamSafetensors } from '../io/safetensors.js';
import { toFloat16Array } from '../tensor/f16.js';
import { UsageError } from './args.js';
import { checkOutputs, checkRegularFile, ReadFiles, reportExisting } from './output-safety.js';

export const CONVERT_USAGE = `usage: deltadiff convert <in.pth|in.safetensors> <out.safetensors> [--fp16] [--config <model.json>] [--force]

Rewrites a checkpoint (torch.save zip or legacy, or safetensors) as safetensors with plain
state-dict keys (wrappers such as {"state_dict": …} and module./_orig_mod. prefixes removed).
  --fp16             store floating-point tensors as float16 (integer buffers stay as they are)
  --config <file>    embed this model config JSON in the file's metadata
  --force            replace <out.safetensors> if it exists (never the input or the config)`;

/**
 * `deltadiff convert …`; `argv` holds the arguments after "convert". Returns the exit code:
 * 0 done, 1 the conversion failed (message on stderr), 2 bad arguments.
 */
const parseConvertArgs = (argv: string[]) =>
  parseArgs({
    args: argv,
    allowPositionals: true,
    options: { fp16: { type: 'boolean' }, config: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });

export async function convertCommand(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseConvertArgs>;
  try {
    parsed = parseConvertArgs(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${CONVERT_USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(CONVERT_USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    console.error(CONVERT_USAGE);
    return 2;
  }
  const [input, output] = positionals;
  try {
    for (const path of [input, values.config]) if (path !== undefined) await checkRegularFile(path);
    const reads = new ReadFiles();
    await reads.add([input], 'the input');
    if (values.config !== undefined) await reads.add([values.config], 'the config');
    if (reportExisting(await checkOutputs([output], reads, values.force ?? false))) return 1;
    if (extname(output).toLowerCase() !== '.safetensors')
      throw new UsageError(`the output ${output} is written as safetensors: name it *.safetensors`);
    const summary = await convert(input, output, values.fp16 ?? false, values.config);
    for (const warning of summary.warnings) console.error(`warning: ${warning}`);
    console.log(`wrote ${summary.tensorCount} tensors (${(summary.bytes / 1e6).toFixed(1)} MB) to ${output}`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`deltadiff convert: ${error.message}`);
      return 2;
    }
    if (error instanceof IoError || isFileSystemError(error)) {
      console.error(`deltadiff convert: ${(error as Error).message}`);
      return 1;
    }
    throw error;
  }
}

interface ConvertSummary {
  tensorCount: number;
  bytes: number;
  warnings: string[];
}

async function convert(input: string, output: string, fp16: boolean, configPath: string | undefined): Promise<ConvertSummary> {
  const config = configPath === undefined ? undefined : await readConfig(configPath);
  return withFileSource(input, async (source) => {
    const stateDict = await openStateDict(source);
    const warnings = [...stateDict.warnings];
    // format: 'pt' is the marker Hugging Face tools expect in safetensors metadata.
    const metadata: Record<string, string> = { ...stateDict.metadata, format: 'pt', source: basename(input) };
    if (config !== undefined) metadata.config = config;
    let overflowed = 0;
    const tensors = new Map<string, TensorHandle>();
    for (const [name, handle] of stateDict.tensors) {
      const cast = fp16 && isFloatDType(handle.dtype) && handle.dtype !== 'f16';
      tensors.set(
        name,
        cast
          ? new TensorHandle('f16', handle.shape, async () => {
              const { tensor, overflowCount } = toFloat16Tensor(await handle.read());
              overflowed += overflowCount;
              return tensor;
            })
          : handle,
      );
    }
    await writeFileAtomic(output, streamSafetensors(tensors, metadata));
    if (overflowed > 0) warnings.push(`${overflowed} values exceed the float16 range (±65504) and became ±Infinity`);
    let bytes = 0;
    for (const handle of tensors.values()) bytes += handle.byteLength;
    return { tensorCount: tensors.size, bytes, warnings };
  });
}

/** f16 bits of the float32 values (f64 tensors pass through float32 first) and how many overflowed. */
function toFloat16Tensor(tensor: HostTensor): { tensor: HostTensor; overflowCount: number } {
  const values = toFloat32(tensor);
  const bits = toFloat16Array(values);
  let overflowCount = 0;
  for (let i = 0; i < bits.length; i++) {
    if ((bits[i] & 0x7fff) === 0x7c00 && Number.isFinite(values[i])) overflowCount++;
  }
  return { tensor: { dtype: 'f16', shape: tensor.shape, data: bits }, overflowCount };
}

/** The config file's JSON, re-serialised compactly (and so validated). */
async function readConfig(path: string): Promise<string> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    throw new UsageError(`config ${path} is not valid JSON`);
  }
}

function isFileSystemError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { code, syscall } = error as NodeJS.ErrnoException;
  return typeof code === 'string' && syscall !== undefined;
}
