// The IMDb archive (aclImdb_v1 layout, file names `{id}_{rating}.txt`), read in place
// for the tests that need real reviews: $IMDB_ARCHIVE, else the dev machine's shared copy.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
export const ARCHIVE = process.env.IMDB_ARCHIVE || resolve(here, '../../../shared/datasets/aclImdb_v1-labeled.tar.gz');

/// The reviews of `split` ('train' or 'test') in archive order:
/// { id: 'test/pos/0_10', text, label: 'positive' | 'negative', rating: 1..10 }.
export function imdbReviews(archive, split) {
  const tar = gunzipSync(readFileSync(archive));
  const out = [];
  const field = (at, len) => tar.toString('utf8', at, at + len).replace(/\0.*$/s, '');
  const pattern = new RegExp(`(?:^|/)aclImdb/${split}/(pos|neg)/(\\d+)_(\\d+)\\.txt$`);
  for (let at = 0; at + 512 <= tar.length;) {
    const name = field(at + 345, 155) ? `${field(at + 345, 155)}/${field(at, 100)}` : field(at, 100);
    if (!name) break;
    const size = parseInt(field(at + 124, 12).trim() || '0', 8);
    const m = name.match(pattern);
    if (m) {
      const text = tar.toString('utf8', at + 512, at + 512 + size);
      out.push({ id: `${split}/${m[1]}/${m[2]}_${m[3]}`, text, label: m[1] === 'pos' ? 'positive' : 'negative', rating: Number(m[3]) });
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
