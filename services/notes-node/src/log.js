// Structured logs: one JSON object a line on stdout, like the Go services'
// `-log-format json`. Callers pass attributes, never tokens, passwords or
// database URLs with credentials.

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * @typedef {{debug: Function, info: Function, warn: Function, error: Function, with: (attrs: object) => Logger}} Logger
 */

/**
 * Returns a logger writing records at level and above to write.
 * @param {string} level
 * @param {(line: string) => void} [write]
 * @returns {Logger}
 */
export function newLogger(level, write = (line) => process.stdout.write(line)) {
  const min = LEVELS[level] ?? LEVELS.info;
  const make = (base) => {
    const emit = (lvl) => (msg, attrs = {}) => {
      if (LEVELS[lvl] < min) {
        return;
      }
      const record = { time: new Date().toISOString(), level: lvl.toUpperCase(), msg, ...base };
      for (const [k, v] of Object.entries(attrs)) {
        record[k] = v instanceof Error ? describeError(v) : v;
      }
      write(JSON.stringify(record) + '\n');
    };
    return {
      debug: emit('debug'),
      info: emit('info'),
      warn: emit('warn'),
      error: emit('error'),
      with: (attrs) => make({ ...base, ...attrs }),
    };
  };
  return make({});
}

/** An error and its causes on one line, for the log only. */
export function describeError(err) {
  const parts = [];
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 5; e = e.cause, depth++) {
    const code = typeof e.code === 'string' ? ` [${e.code}]` : '';
    parts.push(`${e.message ?? String(e)}${code}`);
  }
  return parts.join(': ');
}
