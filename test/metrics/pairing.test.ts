import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pairFileNames, pairingKey } from '../../src/metrics/pairing.js';

test('keys drop the extension and the documented suffixes, repeatedly and case-insensitively', () => {
  const cases: [string, string][] = [
    ['baby.png', 'baby'],
    ['baby_HR.png', 'baby'],
    ['baby_x4_SR.jpg', 'baby'],
    ['baby_sr_X4.jpeg', 'baby'],
    ['img_001_SRF_4_LR.png', 'img_001_SRF_4'],
    ['butterfly_GT.png', 'butterfly'],
    ['zebra_lq.png', 'zebra'],
    ['Baby.png', 'Baby'],
    ['_x4.png', '_x4'],
    ['photo_x5.png', 'photo_x5'],
    ['a.b.png', 'a.b'],
    ['noextension', 'noextension'],
  ];
  for (const [name, key] of cases) assert.is(pairingKey(name), key, name);
});

test('pairs by key, reports missing, unused and ambiguous files', () => {
  const p = pairFileNames(
    ['1.png', '2.png', 'baby_HR.png', 'dup.png', 'gone.png'],
    ['2_SR.png', '1.png', 'baby_x4.png', 'dup_SR.png', 'dup_x4.png', 'extra.png'],
  );
  assert.equal(
    p.pairs.map((x) => [x.reference, x.candidate]),
    [
      ['1.png', '1.png'],
      ['2.png', '2_SR.png'],
      ['baby_HR.png', 'baby_x4.png'],
    ],
  );
  assert.equal(p.missing, ['dup.png', 'gone.png']);
  assert.equal(p.unused, ['extra.png']);
  assert.equal(p.ambiguous, ['dup_SR.png', 'dup_x4.png']);
});

test.run();
