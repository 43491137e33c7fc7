/** Classification without the cache: lex, split into statements, analyse each, summarize the unit. */
import { StmtFlag } from '../lexer.js';
import { freezeFacts, load, lx, newFacts, nextStatement, setLim, textRead, unknown, unload } from './cursor.js';
import { analyze } from './dispatch.js';
import type { Classification, StatementFacts } from './facts.js';
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

/** Classify without the cache. Never throws: on an internal error the answer is one unknown statement. */
export function classifyUncached(sql: string): Classification {
  try {
    const c = classifyText(sql);
    lastTextSensitive = textRead;
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
    if ((flags & (StmtFlag.Unterminated | StmtFlag.Unbalanced)) !== 0) f.understood = false;
    if ((flags & StmtFlag.HintPrimary) !== 0) f.hint = 'primary';
    out.push(freezeFacts(f));
  }
  return classification(out);
}
