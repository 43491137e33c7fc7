/** The AuthSteps without data, shared by every flow (frozen: callers only read them). */
import type { AuthStep } from './flow.js';

export const AUTH_FAIL: AuthStep = Object.freeze({ kind: 'fail' });
export const AUTH_DONE: AuthStep = Object.freeze({ kind: 'done', message: null, scramKeys: null });
