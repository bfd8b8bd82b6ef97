/**
 * What every command checks before it writes anything, so that a careless or hostile argument
 * fails at once with a clear error instead of losing data or hanging after the work:
 * - a planned output that exists is refused unless --force is given;
 * - a planned output that is a file the command reads is refused even with --force, compared by
 *   identity (device + inode), so hard links, symlinks and symlinked directories cannot hide it;
 * - two planned outputs that land on the same file (by real path) are refused;
 * - output directories are created one level at a time (Node's recursive mkdir never returns
 *   under /proc) and proven writable, and every error names the user's path.
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, realpath, stat, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { IMAGE_EXTENSIONS, systemErrorReason } from '../io/node-files.js';
import { UsageError } from './args.js';

const identityOf = (s: Stats): string => `${s.dev}:${s.ino}`;

const statOrUndefined = (path: string): Promise<Stats | undefined> => stat(path).catch(() => undefined);

/** A file a command reads, and a few words naming its part ("its input", "the ground truth"). */
export interface ReadFile {
  path: string;
  role: string;
}

/** The files a command reads, by identity: a planned output is checked against them all. */
export class ReadFiles {
  private readonly byIdentity = new Map<string, ReadFile>();

  /** Records `paths` (files or directories) under `role`; a path that does not exist reads nothing and is skipped. */
  async add(paths: readonly string[], role: string): Promise<void> {
    for (const path of paths) {
      const s = await statOrUndefined(path);
      if (s && !this.byIdentity.has(identityOf(s))) this.byIdentity.set(identityOf(s), { path, role });
    }
  }

  /** The read file that `path` is, under whatever name, if any. */
  async find(path: string): Promise<ReadFile | undefined> {
    const s = await statOrUndefined(path);
    return s && this.byIdentity.get(identityOf(s));
  }
}

/**
 * Refuses an input file that is not a regular file: opening a FIFO blocks until someone writes to
 * it, and a device never ends. A missing file is left to the reader, whose error names it.
 */
export async function checkRegularFile(path: string): Promise<void> {
  const s = await statOrUndefined(path);
  if (s && !s.isFile())
    throw new UsageError(`${path} is not a regular file${s.isDirectory() ? '' : ' (a FIFO or device would block reading)'}`);
}

/** Whether two paths name the same existing file or directory (device + inode). */
export async function isSameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([statOrUndefined(a), statOrUndefined(b)]);
  return sa !== undefined && sb !== undefined && identityOf(sa) === identityOf(sb);
}

/**
 * Where a write to `path` lands: its real path when it exists, otherwise its parent's real
 * location plus its name (a rename over a dangling symlink replaces the link itself).
 */
async function realLocation(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(await realLocation(parent), basename(absolute));
  }
}

/**
 * Makes sure `dir` is a directory this process can write files in, creating missing levels one at
 * a time; errors name `dir` as the user gave it.
 */
export async function prepareDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  let existing = resolve(dir);
  let found: Stats | undefined;
  for (;;) {
    found = await statOrUndefined(existing);
    if (found || dirname(existing) === existing) break;
    missing.unshift(existing);
    existing = dirname(existing);
  }
  if (found && !found.isDirectory()) {
    throw new UsageError(
      missing.length === 0 ? `${dir} is not a directory` : `cannot create directory ${dir}: ${existing} is not a directory`,
    );
  }
  for (const level of missing) {
    await mkdir(level).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw new UsageError(`cannot create directory ${dir} (${systemErrorReason(e)})`);
    });
  }
  // Permissions alone do not say it (read-only mounts, /proc, sysfs): create and remove a file.
  const probe = join(dir, `.deltadiff-${randomBytes(6).toString('hex')}.probe`);
  try {
    await (await open(probe, 'wx')).close();
  } catch (e) {
    throw new UsageError(`cannot write files in ${dir} (${systemErrorReason(e)})`);
  }
  await unlink(probe);
}

/**
 * Refuses `dir` as the home of a new set of files when it is not a directory, or when it holds
 * entries but not `marker`: those are someone else's files, which the command could overwrite.
 */
export async function checkFreshDirectory(dir: string, marker: string, holds: string): Promise<void> {
  const s = await statOrUndefined(dir);
  if (!s) return;
  if (!s.isDirectory()) throw new UsageError(`${dir} is not a directory`);
  const entries = await readdir(dir);
  if (entries.length > 0 && !entries.includes(marker))
    throw new UsageError(`${dir} is not empty and holds no ${holds}: choose a new or empty directory`);
}

/**
 * Checks the files a command is about to write, before any work. Throws a UsageError when an
 * output is a directory, is one of `reads` (even with `force`) or is another output's file. When
 * none of that applies, returns the outputs that already exist if `force` is false (the caller
 * refuses them: see `reportExisting`); otherwise creates the outputs' directories and returns [].
 */
export async function checkOutputs(outputs: readonly string[], reads: ReadFiles, force: boolean): Promise<string[]> {
  const locations = new Map<string, string>();
  const existing: string[] = [];
  for (const output of outputs) {
    const location = await realLocation(output);
    const other = locations.get(location);
    if (other !== undefined) throw new UsageError(`${other} and ${output} are the same output file; rename one`);
    locations.set(location, output);
    const s = await statOrUndefined(output);
    if (!s) continue;
    if (s.isDirectory()) throw new UsageError(`output ${output} is a directory`);
    const read = await reads.find(output);
    if (read)
      throw new UsageError(`${output} would overwrite ${read.role} ${read.path}: refusing to overwrite the input, even with --force`);
    existing.push(output);
  }
  if (existing.length > 0 && !force) return existing;
  for (const dir of new Set(outputs.map((o) => dirname(o)))) await prepareDirectory(dir);
  return [];
}

/** Prints one error per existing output; true when there were any (the command then exits 1). */
export function reportExisting(existing: readonly string[]): boolean {
  for (const path of existing) console.error(`error: ${path} exists (use --force to overwrite)`);
  return existing.length > 0;
}

/**
 * Whether `-o <path>` names an image file rather than a directory: a path with an image extension
 * that is not an existing directory. Any other extension on a path that does not exist is an error,
 * so that `-o out.webp` does not quietly become a directory.
 */
export async function isImageOutputName(path: string): Promise<boolean> {
  const s = await statOrUndefined(path);
  if (s?.isDirectory()) return false;
  const extension = extname(path).toLowerCase();
  if (IMAGE_EXTENSIONS.has(extension)) return true;
  if (s) throw new UsageError(`-o ${path} exists and is not a directory; images are written as .png, .jpg or .jpeg`);
  if (extension !== '') {
    throw new UsageError(
      `-o ${path}: cannot write '${extension}' images (use .png, .jpg or .jpeg); to write into a new directory of that name, create it first`,
    );
  }
  return false;
}

/** Refuses an image output path whose extension names no format deltadiff writes. */
export function checkImageOutputName(flag: string, path: string): void {
  const extension = extname(path).toLowerCase();
  if (IMAGE_EXTENSIONS.has(extension)) return;
  const problem = extension === '' ? 'needs an image file name' : `cannot write '${extension}' images`;
  throw new UsageError(`${flag} ${path}: ${problem} (use .png, .jpg or .jpeg)`);
}
