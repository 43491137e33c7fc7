#!/usr/bin/env node
// Builds the regression-suite corpus (scripts/pg-regress.sh runs it) from PostgreSQL's regression suite: the .sql
// files of src/test/regress/sql/ of a PostgreSQL source tree, split into statements the way psql runs them.
//
//   node scripts/pg-regress-corpus.mjs <postgresql>/src/test/regress/sql REL_15_18 .pgproxy/pg-regress/statements.json.gz
//
// The files are psql scripts. Statements are split with PostgreSQL's own scanner (libpg-query scanSync): at a `;`
// outside parentheses and outside the BEGIN ... END of a CREATE FUNCTION / PROCEDURE body, and at a psql
// meta-command that sends the query buffer (\g, \gset, \gx, \gexec, \gdesc, \crosstabview, \watch, \;). Other
// meta-commands (a line starting with a backslash, or the rest of a line from a backslash outside quotes) are
// dropped, and so are the data lines of COPY ... FROM STDIN (up to `\.`). A statement PostgreSQL's parser rejects
// (a test of an error, or a psql :variable) is skipped and counted.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadModule, parseSync, scanSync } from 'libpg-query';

const [dir, tag, out = '.pgproxy/pg-regress/statements.json.gz'] = process.argv.slice(2);
if (!dir || !tag) {
  console.error('usage: node scripts/pg-regress-corpus.mjs <dir of regress .sql files> <release tag> [out.json.gz]');
  process.exit(2);
}
await loadModule();

/** Meta-commands that send the query buffer (psql's \g family and friends). */
const SENDS = /^\\(g|gx|gset|gexec|gdesc|crosstabview|watch|;)(\s|$|[^a-z])/;

/** Tokens of text, with start and end as string indexes (the scanner gives UTF-8 byte offsets). */
function scan(text) {
  try {
    const tokens = scanSync(text).tokens;
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length === text.length) return tokens;
    const at = (b) => bytes.toString('utf8', 0, b).length;
    return tokens.map((t) => ({ ...t, start: at(t.start), end: at(t.end) }));
  } catch (err) {
    // an unterminated string, identifier or comment: the statement goes on on the next line; any other scanner
    // error (an invalid escape): the statement is one PostgreSQL rejects
    return /unterminat/.test(String(err?.message)) ? null : 'error';
  }
}

/** Statements of one psql script: [line, sql][], and how many the parser rejected. */
function split(source) {
  const lines = source.split('\n');
  const statements = [];
  let rejected = 0;
  let buf = '';
  let startLine = 0;
  let copyData = false;
  const emit = (sql) => {
    const text = sql.trim();
    if (text === '') return;
    let tree;
    try {
      tree = parseSync(text);
    } catch {
      rejected++;
      return;
    }
    if ((tree.stmts ?? []).length === 0) return; // comments only
    statements.push([startLine, text]);
    const copy = tree.stmts[0].stmt.CopyStmt;
    if (tree.stmts.length === 1 && copy !== undefined && copy.is_from === true && copy.filename === undefined) copyData = true;
  };
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln];
    if (copyData) {
      if (line === '\\.') copyData = false;
      continue;
    }
    if (buf.trim() === '') {
      buf = '';
      startLine = ln + 1;
      if (line.trimStart().startsWith('\\')) continue; // a meta-command line between statements
    }
    buf += (buf === '' ? '' : '\n') + line;
    for (;;) {
      const tokens = scan(buf);
      if (tokens === null) break;
      if (tokens === 'error') {
        // resynchronise at a line that ends with `;` (the statement is counted as rejected)
        if (line.trimEnd().endsWith(';')) {
          emit(buf);
          buf = '';
        }
        break;
      }
      const cut = splitPoint(buf, tokens);
      if (cut === null) break;
      emit(buf.slice(0, cut.end));
      if (cut.meta) buf = ''; // the rest of the line is the meta-command's
      else buf = buf.slice(cut.next);
      if (copyData) {
        buf = '';
        break;
      }
      if (buf.trim() === '') {
        buf = '';
        startLine = ln + 2;
        break;
      }
      startLine = ln + 1;
    }
    // a meta-command that does not send the buffer: drop it, keep the buffer
    if (buf !== '') {
      const tokens = scan(buf);
      const bs = Array.isArray(tokens) ? tokens.find((t) => t.text === '\\') : undefined;
      if (bs !== undefined) buf = buf.slice(0, bs.start);
    }
  }
  emit(buf);
  return { statements, rejected };
}

/** Where the first statement of buf ends: { end, next, meta } or null when it does not end yet. */
function splitPoint(buf, tokens) {
  let depth = 0;
  let atomic = 0;
  const head = tokens.slice(0, 4).map((t) => t.text.toLowerCase());
  const routine = head[0] === 'create' && (head[1] === 'function' || head[1] === 'procedure' || (head[1] === 'or' && head[2] === 'replace' && (head[3] === 'function' || head[3] === 'procedure')));
  for (const t of tokens) {
    const word = t.text.toLowerCase();
    if (t.text === '(') depth++;
    else if (t.text === ')') depth = Math.max(0, depth - 1);
    else if (routine && (word === 'begin' || word === 'case')) atomic++;
    else if (routine && word === 'end' && atomic > 0) atomic--;
    else if (t.text === ';' && depth === 0 && atomic === 0) return { end: t.start, next: t.end, meta: false };
    else if (t.text === '\\') {
      const rest = buf.slice(t.start);
      if (SENDS.test(rest)) return { end: t.start, next: buf.length, meta: true };
    }
  }
  return null;
}

const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
const statements = [];
const seen = new Set();
const perFile = {};
let rejected = 0;
let total = 0;
for (const [i, file] of files.entries()) {
  const r = split(readFileSync(path.join(dir, file), 'utf8'));
  total += r.statements.length;
  for (const [line, sql] of r.statements) {
    if (seen.has(sql)) continue; // the same text again (the first place it occurs is kept)
    seen.add(sql);
    statements.push([i, line, sql]);
  }
  perFile[file] = { statements: r.statements.length, rejected: r.rejected };
  rejected += r.rejected;
}
const corpus = {
  origin: 'PostgreSQL regression suite, src/test/regress/sql/*.sql',
  tag,
  licence: 'PostgreSQL Licence (https://www.postgresql.org/about/licence/)',
  files,
  /** Statements the files hold (parsed), before duplicates are dropped. */
  total,
  /** Statements the parser rejected when the corpus was built (skipped). */
  rejected,
  perFile,
  /** [file index, line, sql], each text once */
  statements,
};
writeFileSync(out, gzipSync(JSON.stringify(corpus), { level: 9 }));
console.log(`${files.length} files, ${total} statements (${statements.length} distinct), ${rejected} rejected by the parser -> ${out}`);
