/**
 * How `eval` and `entropy` match files of two folders. A file's key is its name without the
 * extension, then with these trailing suffixes removed, repeatedly and case-insensitively:
 * `_HR`, `_LR`, `_SR`, `_GT`, `_LQ`, `_x2`, `_x3`, `_x4`, `_x8`. The rest of the key is compared
 * exactly (case-sensitively). So `baby.png`, `baby_SR.png`, `baby_x4.png`, `baby_x4_SR.jpg` all
 * pair with `baby_HR.png`, and `img_001_SRF_4_HR.png` pairs with `img_001_SRF_4_LR.png`.
 * Two files of one folder with the same key are ambiguous and paired with nothing.
 */

const PAIRING_SUFFIX = /_(hr|lr|sr|gt|lq|x[2348])$/i;

export function pairingKey(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  let key = dot > 0 ? fileName.slice(0, dot) : fileName;
  // Keep at least one character, so `_x4.png` stays itself.
  for (let m = PAIRING_SUFFIX.exec(key); m && m.index > 0; m = PAIRING_SUFFIX.exec(key)) key = key.slice(0, m.index);
  return key;
}

export interface NamePairing {
  /** In the order of `references`. */
  pairs: { key: string; reference: string; candidate: string }[];
  /** References with no candidate. */
  missing: string[];
  /** Candidates with no reference. */
  unused: string[];
  /** Files sharing their key with another file of the same side (left unpaired). */
  ambiguous: string[];
}

function byKey(names: readonly string[], ambiguous: string[]): Map<string, string> {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const key = pairingKey(name);
    groups.set(key, [...(groups.get(key) ?? []), name]);
  }
  const unique = new Map<string, string>();
  for (const [key, group] of groups) {
    if (group.length === 1) unique.set(key, group[0]);
    else ambiguous.push(...group);
  }
  return unique;
}

/** Pairs reference files (e.g. ground truth) with candidate files (e.g. predictions) by key. */
export function pairFileNames(references: readonly string[], candidates: readonly string[]): NamePairing {
  const ambiguous: string[] = [];
  const referenceKeys = byKey(references, ambiguous);
  const candidateKeys = byKey(candidates, ambiguous);
  const pairs: NamePairing['pairs'] = [];
  const missing: string[] = [];
  for (const [key, reference] of referenceKeys) {
    const candidate = candidateKeys.get(key);
    if (candidate === undefined) missing.push(reference);
    else pairs.push({ key, reference, candidate });
  }
  const unused = [...candidateKeys].filter(([key]) => !referenceKeys.has(key)).map(([, name]) => name);
  return { pairs, missing, unused, ambiguous };
}
