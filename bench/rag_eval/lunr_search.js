// lunr_search.js - the lunr peer of the evaluation: every file of the
// corpus cut in 40-line chunks, indexed by lunr 2.3 (its English stemmer
// and stop words), a file ranked by its best chunk.
// usage: node lunr_search.js CORPUS QRELS > rankings.json
const fs = require('fs');
const path = require('path');
const lunr = require('lunr');

const [corpus, qrelsFile] = process.argv.slice(2);
const files = [];
(function walk(d) {
  for (const f of fs.readdirSync(d).sort()) {
    const p = path.join(d, f);
    if (fs.statSync(p).isDirectory()) walk(p); else files.push(p);
  }
})(corpus);

const chunkFile = [];
const idx = lunr(function () {
  this.ref('id');
  this.field('text');
  for (const p of files) {
    const lines = fs.readFileSync(p, 'utf8').split('\n');
    for (let i = 0; i < lines.length; i += 40) {
      this.add({ id: String(chunkFile.length), text: lines.slice(i, i + 40).join('\n') });
      chunkFile.push(path.relative(corpus, p));
    }
  }
});

const out = {};
for (const q of JSON.parse(fs.readFileSync(qrelsFile, 'utf8'))) {
  // Words only: lunr's query syntax (+ - : ~ ^ *) is not what a user typed.
  const words = q.query.toLowerCase().match(/[a-z0-9]+/g) || [];
  let hits = [];
  try { hits = idx.search(words.join(' ')); } catch (e) { hits = []; }
  const seen = [];
  for (const h of hits) {
    const f = chunkFile[Number(h.ref)];
    if (!seen.includes(f)) seen.push(f);
    if (seen.length === 10) break;
  }
  out[q.id] = seen;
}
process.stdout.write(JSON.stringify(out));
