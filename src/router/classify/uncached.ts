/**
 * Classification without the cache: lex, split into statements, analyse each, summarize the unit. A statement the
 * classifier does not understand, but whose text is complete (terminated, balanced), goes to PostgreSQL's parser
 * (parser.ts) and gets the facts of its tree when the parser reads it.
 */
import { StmtFlag } from '../lexer.js';
import { E, S, freezeFacts, load, lx, newFacts, nextStatement, setLim, src, textRead, unknown, unload } from './cursor.js';
import { analyze } from './dispatch.js';
import type { Classification, StatementFacts } from './facts.js';
import { ParseOutcome, lastOutcome, lastParsedTextSensitive, parsedStatement } from './parser.js';
import { summarize } from './summary.js';

function classification(statements: readonly StatementFacts[]): Classification {
  return Object.freeze({ statements: Object.freeze(statements), summary: summarize(statements) });
}

const NOT_UNDERSTOOD: Classification = (() => {
  const f = newFacts();
  unknown(f);
  return classification([freezeFacts(f)]);
})();

/**
 * After the last classifyUncached(): whether its facts depend on more than the text's shape (a literal's
 * value, raw text, or an internal error), so that it must not be shared with texts of the same shape.
 */
export let lastTextSensitive = false;
/**
 * After the last classifyUncached(): a statement needed the parser before it was loaded, so the answer (not
 * understood) is provisional and must not be cached.
 */
export let lastParserPending = false;

/** Facts of the parser fallback in the classification under way that depend on more than the shape. */
let parsedTextSensitive = false;

/** Classify without the cache. Never throws: on an internal error the answer is one unknown statement. */
export function classifyUncached(sql: string): Classification {
  parsedTextSensitive = false;
  lastParserPending = false;
  try {
    const c = classifyText(sql);
    lastTextSensitive = textRead || parsedTextSensitive;
    return c;
  } catch {
    lastTextSensitive = true;
    return NOT_UNDERSTOOD;
  } finally {
    unload();
  }
}

function classifyText(sql: string): Classification {
  load(sql);
  const n = lx.stmtCount;
  const out: StatementFacts[] = [];
  for (let st = 0; st < n; st++) {
    const a = lx.stmtFirst[st] as number;
    const b = lx.stmtEnd[st] as number;
    const flags = lx.stmtFlags[st] as number;
    const f = newFacts();
    nextStatement();
    setLim(b);
    analyze(f, a, b);
    const hint = (flags & StmtFlag.HintPrimary) !== 0;
    if (hint) f.hint = 'primary';
    if ((flags & (StmtFlag.Unterminated | StmtFlag.Unbalanced)) !== 0) f.understood = false;
    else if (!f.understood && b > a) {
      const p = fallback(a, b, hint);
      if (p !== null) {
        out.push(p);
        continue;
      }
    }
    out.push(freezeFacts(f));
  }
  return classification(out);
}

/** The parser's facts of the statement in tokens [a, b), or null when it cannot give them (now). */
function fallback(a: number, b: number, hint: boolean): StatementFacts | null {
  const p = parsedStatement(src.slice(S[a], E[b - 1]));
  if (lastOutcome === ParseOutcome.Pending) lastParserPending = true;
  if (p === null) return null;
  if (lastParsedTextSensitive) parsedTextSensitive = true;
  return hint ? Object.freeze({ ...p, hint: 'primary' as const }) : p;
}
