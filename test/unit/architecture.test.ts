// The dependency order of docs/architecture.md, checked on the imports of src/ (`import type` included):
// each layer imports only from layers before it (and from itself), and no module imports itself in a cycle.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Layers from the bottom up: a folder of src/, or a single file of src/ (by its name without extension). */
const ORDER = ['lib', 'config', 'wire', 'errors', 'nodes', 'router', 'pool', 'context', 'admin', 'session', 'server', 'workers', 'index', 'cli'];
/** The local cluster for the demo and the tests stands apart: it uses only the configuration (and lib). */
const DEVCLUSTER_MAY_IMPORT = new Set(['lib', 'config', 'devcluster']);
/** ...and only the command line uses it. */
const DEVCLUSTER_USERS = new Set(['cli', 'devcluster']);

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Module specifiers of every import, export-from, `import type` and `import('…')` in a file (comments removed). */
export function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const specs: string[] = [];
  const patterns = [/\bimport\s+(?:type\s+)?[^'"();]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bexport\s+(?:type\s+)?[^'"();]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[1]!);
  return specs;
}

function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? rel[0]!.replace(/\.ts$/, '') : rel[0]!;
}

interface Edge {
  from: string;
  to: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sourceFiles(SRC)) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      out.push({ from: file, to: target });
    }
  }
  return out;
}

function rel(file: string): string {
  return path.relative(SRC, file);
}

describe('architecture', () => {
  const all = edges();

  it('the import scanner sees every form of import', () => {
    const text = `import a from './a.js';\nimport type { B } from '../b.js';\nimport {\n  c,\n  type D,\n} from './c.js';\nexport { e } from './e.js';\nexport type { F } from './f.js';\nimport './g.js';\ntype H = import('./h.js').H;\n// import x from './commented.js';\n/* import y from './block.js'; */`;
    expect(importsOf(text).sort()).toEqual(['../b.js', './a.js', './c.js', './e.js', './f.js', './g.js', './h.js'].sort());
  });

  it('every source file belongs to a known layer', () => {
    const unknown = sourceFiles(SRC)
      .map(layerOf)
      .filter((l) => !ORDER.includes(l) && l !== 'devcluster');
    expect([...new Set(unknown)]).toEqual([]);
  });

  it('each layer imports only from layers before it', () => {
    const violations: string[] = [];
    for (const { from, to } of all) {
      const a = layerOf(from);
      const b = layerOf(to);
      if (a === b) continue;
      if (a === 'devcluster') {
        if (!DEVCLUSTER_MAY_IMPORT.has(b)) violations.push(`${rel(from)} -> ${rel(to)} (devcluster uses config and lib only)`);
        continue;
      }
      if (b === 'devcluster') {
        if (!DEVCLUSTER_USERS.has(a)) violations.push(`${rel(from)} -> ${rel(to)} (only cli uses devcluster)`);
        continue;
      }
      if (ORDER.indexOf(b) > ORDER.indexOf(a)) violations.push(`${rel(from)} -> ${rel(to)} (${a} may not import ${b})`);
    }
    expect(violations).toEqual([]);
  });

  it('no import cycles between modules', () => {
    const graph = new Map<string, string[]>();
    for (const { from, to } of all) {
      const list = graph.get(from) ?? [];
      list.push(to);
      graph.set(from, list);
    }
    const cycles: string[] = [];
    const state = new Map<string, 1 | 2>();
    const stack: string[] = [];
    const visit = (n: string): void => {
      state.set(n, 1);
      stack.push(n);
      for (const m of graph.get(n) ?? []) {
        const s = state.get(m);
        if (s === 1) cycles.push([...stack.slice(stack.indexOf(m)), m].map(rel).join(' -> '));
        else if (s === undefined) visit(m);
      }
      stack.pop();
      state.set(n, 2);
    };
    for (const n of graph.keys()) if (!state.has(n)) visit(n);
    expect(cycles).toEqual([]);
  });
});
